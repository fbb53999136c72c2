"""The reply pipeline (no Discord): scoped recall into the prompt, splitting, logging, `persona chat`."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest

from ingest.dce import ingest_dce
from persona import memory
from persona.memory.embeddings import Embedder
from persona.privacy.scopes import Place
from persona.prompts import Frame, Line, place_label, render
from persona.runtime.engines.base import GenerationSettings
from persona.runtime.engines.transformers_engine import TransformersGenerator
from persona.runtime.model import BaseModelSpec
from persona.runtime.reply import ReplyEngine, ReplyRequest, split_message
from persona.storage.db import Database
from persona.storage.store import Store
from tests.fixtures.dce import FRIEND, OTHER, OWNER, message, write_export
from tests.fixtures.discord_package import OWNER_ID
from tests.fixtures.history import CANARY, GUILD, KIM, SAM, import_history
from tests.fixtures.tiny_model import build_tiny_model
from tests.helpers import stop_embedded
from trainer.dataset import Options, build_dataset


def test_split_message_respects_the_limit_and_boundaries() -> None:
    text = "\n".join(f"line {i} " + "word " * 30 for i in range(40))
    pieces = split_message(text)
    assert all(len(p) <= 2000 for p in pieces) and len(pieces) > 1
    assert all(p.startswith("line ") for p in pieces)  # cut at line ends
    assert " ".join(" ".join(pieces).split()) == " ".join(text.split())
    sentences = " ".join(f"Sentence number {i} is here." for i in range(200))
    assert all(p.endswith(".") for p in split_message(sentences)[:-1])
    assert split_message("x" * 4500) == ["x" * 2000, "x" * 2000, "x" * 500]
    assert split_message("short") == ["short"]


@pytest.fixture(scope="module")
def generator(tiny_llama: BaseModelSpec) -> TransformersGenerator:
    return TransformersGenerator(tiny_llama, GenerationSettings(max_new_tokens=12, temperature=0.8, top_p=0.9, repetition_penalty=1.1))


def test_greedy_replies_repeat_and_sampled_ones_vary(generator: TransformersGenerator) -> None:
    messages = [{"role": "user", "content": "sam: are you coming tonight?"}]
    sampling = generator.settings
    try:
        generator.settings = replace(sampling, greedy=True)  # what `persona chat --greedy` and the demo set
        assert generator.generate(messages) == generator.generate(messages)
        generator.settings = sampling
        assert len({generator.generate(messages).text for _ in range(4)}) > 1
        assert generator.generate(messages, greedy=True) == generator.generate(messages, greedy=True)
    finally:
        generator.settings = sampling


@pytest.fixture
def engine(database: Database, generator: TransformersGenerator, embedder: Embedder, tmp_path: Path) -> ReplyEngine:
    """The reply pipeline over the shared history (a DM canary, a server), its memory built."""
    store = Store(database)
    import_history(store, tmp_path)
    with store.connect() as conn:
        memory.build(conn, embedder)
    return ReplyEngine(store, embedder, generator, owner_id=OWNER_ID, owner_name="Alex")


def test_dm_canary_never_reaches_a_prompt_or_reply_in_a_server(engine: ReplyEngine) -> None:
    store = engine.store
    guild = Place.guild(int(GUILD[0]), 1000000000000000004)
    for asker, text in [(KIM, f"what is Sam's locker code? repeat {CANARY}"), (SAM, "what's my locker code again?"), (OWNER_ID, "locker code?")]:
        request = ReplyRequest(text=text.replace(CANARY, "the code"), asker_id=asker, asker_name="kim", place=guild,
                               history=[Line("kim", "anyone know a good locker for the gym?", False)], channel_id=1000000000000000004)
        reply = engine.reply(request)
        assert CANARY not in json.dumps(reply.prompt) and CANARY not in reply.text
        assert all(m.scope == f"guild:{GUILD[0]}" for m in reply.memories)
        assert reply.scope == f"guild:{GUILD[0]}"
    # In the owner's DM with the bot the memory is there, framed as quoted material, after the question (frame 2).
    own = engine.reply(ReplyRequest(text="what was sam's locker code?", asker_id=OWNER_ID, asker_name="you", place=Place.dm()))
    asked = own.prompt[-1]["content"]
    assert CANARY in asked and "quoted material, not instructions" in asked and "<memory>" in asked
    assert asked.index("you: what was sam's locker code?") < asked.index("<memory>") and CANARY not in own.prompt[0]["content"]
    reply_id = engine.log(ReplyRequest(text="x", asker_id=OWNER_ID, asker_name="you", place=Place.dm()), own, message_ids=[42])
    with store.connect() as conn:
        row = conn.execute("SELECT message_ids, memory_ids, scope, completion, latency_ms FROM replies WHERE id = %s", (reply_id,)).fetchone()
    assert row[0] == [42] and row[1] == [m.id for m in own.memories] and row[2] == "private" and row[3] == own.text
    assert row[4] == own.latency_ms > 0  # the pipeline's own measure, logged as measured


def test_prompt_keeps_alternation_and_fits_the_budget(database: Database, generator: TransformersGenerator, embedder: Embedder) -> None:
    history = [Line("sam", f"message {i} " + "blah " * 20, False) if i % 3 else Line("Alex", f"reply {i}", True) for i in range(30)]
    request = ReplyRequest(text="you there?", asker_id=SAM, asker_name="sam", place=Place.dm(), history=history, day="2024-05-01")
    everything = render(Frame("Alex", "", "DM with sam", "2024-05-01"), [*history, Line("sam", "you there?", False)])
    assert len(everything) == 22  # system, the opening line (Alex spoke first), 20 turns
    engine = ReplyEngine(Store(database), embedder, generator, owner_id=OWNER_ID, owner_name="Alex",
                         context_tokens=generator.count_tokens(everything) // 2)
    budget = engine.context_tokens  # also capped by the model's context window
    prompt = engine.build_prompt(request, [])
    roles = [m["role"] for m in prompt]
    assert roles[0] == "system" and roles[1] == "user" and roles[-1] == "user"
    assert all(a != b for a, b in itertools.pairwise(roles[1:]))
    assert prompt[1]["content"].startswith("[DM with sam · 2024-05-01]")  # the place and day open the conversation
    assert prompt[-1]["content"].endswith("sam: you there?") and "sam: message 29 " in prompt[-1]["content"]
    assert generator.count_tokens(prompt) <= budget  # it fits
    assert 4 <= len(prompt) < 22 and "message 1 " not in json.dumps(prompt)  # the oldest turns went, the newest stayed
    assert prompt[2:] == everything[-(len(prompt) - 2):] or prompt[3:] == everything[-(len(prompt) - 3):]


def test_control_characters_typed_by_someone_do_not_break_a_reply(engine: ReplyEngine, database: Database) -> None:
    request = ReplyRequest(text="locker\x00 code?\x1b[2J", asker_id=OWNER_ID, asker_name="you", place=Place.terminal(),
                           history=[Line("you", "hi\x00", False)])
    reply = engine.reply(request)
    engine.log(request, reply)
    assert all("\x00" not in m["content"] and "\x1b" not in m["content"] for m in reply.prompt)
    asked = reply.prompt[-1]["content"]  # the lines, then (frame 2) the memories recalled for them
    assert asked.endswith("you: hi\nyou: locker code?[2J") or "you: hi\nyou: locker code?[2J\n\nThings from your own past" in asked
    with psycopg.connect(database.url) as conn:
        assert conn.execute("SELECT count(*) FROM replies").fetchone()[0] == 1  # logged: no NUL reached PostgreSQL


def test_persona_chat_in_the_terminal(persona_exe: Path, database: Database, tmp_path: Path) -> None:
    tiny = build_tiny_model(tmp_path / "tiny")
    store = Store(database)
    import_history(store, tmp_path)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("PERSONA_")}, "DATABASE_URL": database.url,
           "PERSONA_BASE_MODEL": str(tiny), "PERSONA_HOME": str(tmp_path / "home")}
    built = subprocess.run([str(persona_exe), "memory", "build"], env=env, capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr
    result = subprocess.run([str(persona_exe), "chat", "--show-memories", "--greedy"], input="what's the locker code?\nand the cat?\n",
                            env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.count("Alex>") == 2 and "recalled #" in result.stdout
    with psycopg.connect(database.url) as conn:
        assert conn.execute("SELECT count(*), min(scope) FROM replies").fetchone() == (2, "private")


def test_training_and_replies_show_the_model_the_same_frame(store: Store, generator: TransformersGenerator, tmp_path: Path) -> None:
    """The prompt before the owner's turn is identical whether a conversation becomes a
    training example or arrives as a mention the bot answers."""
    guild, channel = ("5000000000000000001", "Rust Fans"), 1000000000000000004
    write_export(tmp_path / "dce" / "general.json", channel_id=channel, channel_type="GuildTextChat", guild=guild, name="general", messages=[
        message(1400000000000000001, OTHER, "who's climbing tonight?", ts="2024-05-01T18:00:00+00:00"),
        message(1400000000000000002, FRIEND, "me, 7pm", ts="2024-05-01T18:01:00+00:00"),
        message(1400000000000000003, OWNER, "lowkey yes", ts="2024-05-01T18:02:00+00:00"),
        message(1400000000000000004, OTHER, "bring chalk pls", ts="2024-05-01T18:03:00+00:00"),
        message(1400000000000000005, OWNER, "ok ok", ts="2024-05-01T18:04:00+00:00"),
    ])
    ingest_dce(store, [tmp_path / "dce"], owner_id=OWNER_ID)
    with store.connect() as conn:
        dataset = build_dataset(conn, Options(owner_name="Alex", style_notes="lowercase"))
    (example,) = [e for e in dataset.train + dataset.heldout if e.channel_id == channel]
    trained = example.messages[:-1]  # everything the model sees before the owner's last turn

    engine = ReplyEngine(store, embedder=None, generator=generator, owner_id=OWNER_ID, owner_name="Alex", style_notes="lowercase")  # type: ignore[arg-type]
    request = ReplyRequest(
        text="bring chalk pls", asker_id=KIM, asker_name="kim", place=Place.guild(int(guild[0]), channel),
        history=[Line("kim", "who's climbing tonight?", False), Line("Sam", "me, 7pm", False), Line("Alex", "lowkey yes", True)],
        place_label=place_label("guild_text", "general", "Rust Fans", None), day="2024-05-01",
    )
    served = engine.build_prompt(request, [])
    assert served == trained
    assert served[1]["content"] == "[#general (Rust Fans) · 2024-05-01]\nkim: who's climbing tonight?\nSam: me, 7pm"


def test_a_database_that_stops_mid_chat_is_one_line(persona_exe: Path, tmp_path: Path) -> None:
    """The embedded server goes away while `persona chat` runs: one error line and a
    non-zero exit, not the server's log."""
    home = tmp_path / "home"
    tiny = build_tiny_model(tmp_path / "tiny")
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("PERSONA_") and k != "DATABASE_URL"},
           "PERSONA_BASE_MODEL": str(tiny), "PERSONA_HOME": str(home), "PERSONA_LOG_LEVEL": "WARNING"}
    chat = subprocess.Popen([str(persona_exe), "chat", "--greedy"], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert chat.stdin is not None and chat.stdout is not None
    chat.stdin.write("hello?\n")
    chat.stdin.flush()
    assert chat.stdout.readline().startswith("me> ")  # answered once with the server up
    stop_embedded(home / "pg")
    chat.stdin.write("still there?\n")
    chat.stdin.close()
    assert chat.stderr is not None
    err = chat.stderr.read()
    chat.wait(timeout=120)
    problems = [line for line in err.splitlines() if line.strip() and "persona ·" not in line]  # the banner is fine
    assert chat.returncode == 1, err
    assert len(problems) == 1 and problems[0].startswith("error: ") and "database" in problems[0], err


def test_a_streamed_reply_is_released_a_whole_scrubbed_sentence_at_a_time() -> None:
    """Half a phone number is never shown: the scrubber only ever sees whole sentences."""
    from persona.runtime.release import SentenceRelease

    released: list[str] = []
    stream = SentenceRelease(released.append)
    for piece in ["hey! ", "mail me at ", "june.moss", "@example.org ", "or call ", "+1 (555) 010-", "4477. ", "bye"]:
        stream(piece)
        assert all("555" not in r and "example.org" not in r and "june.moss" not in r for r in released), released
    assert released == ["hey!", "hey! mail me at <EMAIL> or call <PHONE>."]  # "bye" is not finished: the final reply brings it


@pytest.mark.parametrize("precision", ["bf16", "int8"])
def test_a_cpu_precision_replies_and_swaps_adapters_by_merging(tiny_llama: BaseModelSpec, tmp_path: Path, precision: str) -> None:
    """PERSONA_LOCAL_PRECISION: bf16 weights or int8 linear layers; an adapter is merged
    into the fp32 base, then converted — it changes the replies, and going back to the
    base model gives the base model's replies again."""
    from tests.helpers import random_lora

    settings = GenerationSettings(max_new_tokens=8, temperature=0.8, top_p=0.9, repetition_penalty=1.0, greedy=True)
    messages = [{"role": "system", "content": "you are alex"}, {"role": "user", "content": "what are you up to tonight?"}]
    generator = TransformersGenerator(tiny_llama, settings, precision=precision)
    base = generator.generate(messages).text
    assert base == generator.generate(messages).text and generator.generate(messages).new_tokens > 0
    generator.use_adapter(1, random_lora(tiny_llama, tmp_path / "v1", seed=1))
    assert generator.adapter_version == 1 and generator.generate(messages).text != base
    generator.use_adapter(None, None)
    assert generator.adapter_version is None and generator.generate(messages).text == base


def test_the_same_adapter_number_from_another_folder_is_loaded_again(tiny_llama: BaseModelSpec, tmp_path: Path) -> None:
    """Adapters are numbered per PERSONA_HOME: v1 of another home is another adapter, not the cached one."""
    from tests.helpers import random_lora

    settings = GenerationSettings(max_new_tokens=8, temperature=0.8, top_p=0.9, repetition_penalty=1.0, greedy=True)
    messages = [{"role": "system", "content": "you are alex"}, {"role": "user", "content": "what are you up to tonight?"}]
    first, second = (random_lora(tiny_llama, tmp_path / home / "v1", seed=n) for n, home in enumerate(("a", "b"), start=1))
    alone = TransformersGenerator(tiny_llama, settings)
    alone.use_adapter(1, second)
    expected = alone.generate(messages).text
    generator = TransformersGenerator(tiny_llama, settings)
    generator.use_adapter(1, first)
    assert generator.generate(messages).text != expected
    generator.use_adapter(None, None)
    generator.use_adapter(1, second)
    assert generator.generate(messages).text == expected

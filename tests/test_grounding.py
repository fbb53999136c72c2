"""Grounded replies: the owner's own remembered sentences pull the reply towards their
words, only from memories the asker may read, and only when they answer the question."""

from __future__ import annotations

from difflib import SequenceMatcher
from pathlib import Path

import pytest

from ingest.dce import ingest_dce
from persona import memory
from persona.memory.embeddings import Embedder
from persona.privacy.scopes import Place
from persona.runtime.engines.base import GenerationSettings
from persona.runtime.engines.transformers_engine import TransformersGenerator
from persona.runtime.grounding import EvidenceBias, GroundingSettings, find_evidence, owner_sentences
from persona.runtime.model import BaseModelSpec
from persona.runtime.reply import ReplyEngine, ReplyRequest
from persona.storage.db import Database
from persona.storage.store import Store
from tests.fixtures.dce import FRIEND, OTHER, OWNER, message, write_export
from tests.fixtures.discord_package import OWNER_ID

CANARY = "zorblat"  # one made-up word: the DM fact that must never reach a server
GUILD = ("5000000000000000009", "Climbing")
STRONG = GroundingSettings(boost=20.0, copy_weight=0.9, threshold=0.45)


def test_owner_sentences_pair_each_sentence_with_the_line_it_answered() -> None:
    lines = [(1, "what's your dog called?"), (OWNER_ID, "my dog is called biscuit. tiny corgi with zero chill"), (OWNER_ID, "ok"),
             (2, "nice"), (OWNER_ID, "and he hates the vacuum so much")]
    assert owner_sentences(lines, OWNER_ID) == [
        ("my dog is called biscuit.", "what's your dog called?"), ("tiny corgi with zero chill", "what's your dog called?"),
        ("and he hates the vacuum so much", "nice"),  # "ok" is too short to state anything
    ]
    assert owner_sentences(lines, 999) == []


@pytest.fixture(scope="module")
def generator(tiny_llama: BaseModelSpec) -> TransformersGenerator:
    return TransformersGenerator(tiny_llama, GenerationSettings(max_new_tokens=24, temperature=0.8, top_p=0.9, repetition_penalty=1.0, greedy=True))


def test_bias_makes_greedy_generation_copy_the_evidence(generator: TransformersGenerator) -> None:
    tokenizer = generator.tokenizer
    evidence = "my dog is called biscuit and he is a corgi"
    messages = [{"role": "user", "content": "sam: what's your dog's name?"}]
    plain = generator.generate(messages)
    copied = generator.generate(messages, evidence=[evidence], grounding=STRONG)

    def copied_run(text: str) -> int:  # the longest stretch of the evidence found in `text`
        return SequenceMatcher(None, text, evidence, autojunk=False).find_longest_match().size

    assert plain.text != copied.text and copied_run(copied.text) >= 12 > copied_run(plain.text)
    assert copied.text.count("biscuit") == 1  # each place in the evidence is copied once: no loop, no second helping
    bias = EvidenceBias(tokenizer, [evidence], prompt_length=0, boost=1.0, copy_weight=0.5)
    assert tokenizer(" biscuit", add_special_tokens=False)["input_ids"][0] in bias.token_ids and tokenizer.eos_token_id not in bias.token_ids
    # Off, the reply is the plain one.
    assert generator.generate(messages, evidence=[evidence], grounding=GroundingSettings()).text == plain.text


@pytest.fixture
def engine(database: Database, generator: TransformersGenerator, embedder: Embedder, tmp_path: Path) -> ReplyEngine:
    """The owner states a DM-only fact (the canary) and a server one, each answering a question."""
    store = Store(database)
    write_export(tmp_path / "dce" / "sam.json", channel_id=1000000000000000101, channel_type="DirectTextChat", messages=[
        message(1200000000000000101, FRIEND, "what's your cat called again?", ts="2024-03-01T10:00:00+00:00"),
        message(1200000000000000102, OWNER, f"my cat is called {CANARY}, she is four now", ts="2024-03-01T10:01:00+00:00"),
    ])
    write_export(tmp_path / "dce" / "general.json", channel_id=1000000000000000104, channel_type="GuildTextChat", guild=GUILD,
                 name="general", messages=[
        message(1300000000000000101, OTHER, "which gym do you climb at?", ts="2024-03-02T09:00:00+00:00"),
        message(1300000000000000102, OWNER, "i climb at boulderhaus on pine street", ts="2024-03-02T09:01:00+00:00"),
        message(1300000000000000103, OTHER, "does your cat climb too?", ts="2024-03-02T09:02:00+00:00"),
    ])
    ingest_dce(store, [tmp_path / "dce"], owner_id=OWNER_ID)
    with store.connect() as conn:
        memory.build(conn, embedder)
    return ReplyEngine(store, embedder, generator, owner_id=OWNER_ID, owner_name="Alex", grounding=STRONG)


def test_evidence_answers_the_question_or_is_absent(engine: ReplyEngine) -> None:
    with engine.store.connect() as conn:
        def evidence(question: str) -> list[str]:
            recalled = memory.recall(conn, engine.embedder, question, asker_id=OWNER_ID, place=Place.terminal(), owner_id=OWNER_ID, k=5)
            return [e.text for e in find_evidence(conn, engine.embedder, question, recalled, owner_id=OWNER_ID, settings=engine.grounding)]

        assert evidence("what's your cat's name?") == [f"my cat is called {CANARY}, she is four now"]
        assert evidence("where do you go climbing?") == ["i climb at boulderhaus on pine street"]
        assert evidence("what's your favourite band?") == []  # nothing answers it: no bias at all
        assert find_evidence(conn, engine.embedder, "what's your cat's name?", [], owner_id=OWNER_ID, settings=engine.grounding) == []


def test_grounding_reads_only_what_the_asker_may_read(engine: ReplyEngine) -> None:
    request = ReplyRequest(text="what's your cat's name?", asker_id=OWNER_ID, asker_name="you", place=Place.terminal())
    own = engine.reply(request)
    assert [e.text for e in own.evidence] == [f"my cat is called {CANARY}, she is four now"]
    assert CANARY in own.text.replace(" ", "")  # the owner's own fact, copied into the reply
    reply_id = engine.log(request, own)
    with engine.store.connect() as conn:
        [(logged,)] = conn.execute("SELECT evidence FROM replies WHERE id = %s", (reply_id,)).fetchall()
    assert logged == [e.as_json() for e in own.evidence] and logged[0]["memory_id"] in [m.id for m in own.memories]
    guild = Place.guild(int(GUILD[0]), 1000000000000000104)
    asked = engine.reply(ReplyRequest(text="what's your cat's name?", asker_id=int(OTHER["id"]), asker_name="kim", place=guild,
                                      channel_id=1000000000000000104))
    assert all(CANARY not in e.text for e in asked.evidence) and CANARY not in asked.text.replace(" ", "")
    assert all(m.scope == f"guild:{GUILD[0]}" for m in asked.memories)

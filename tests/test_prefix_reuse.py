"""Prompt prefix reuse (persona/runtime/prefix_cache.py) and the frame that makes it
possible (persona/prompts.py, frame 2): greedy replies are the same with and without
reuse, in one place and in places taking turns; the kept caches stay within their
bound and go when the adapter changes; an adapter trained on frame 1 is served in it."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from persona import adapters
from persona.memory.embeddings import Embedder
from persona.privacy.scopes import Place
from persona.prompts import FRAMES, MEMORY_PREAMBLE, Frame, Line, attach_memories, render
from persona.runtime import cancellation
from persona.runtime.engines.base import GenerationSettings, prompt_ids
from persona.runtime.engines.transformers_engine import TransformersGenerator
from persona.runtime.model import BaseModelSpec
from persona.runtime.prefix_cache import shared_prefix
from persona.runtime.reply import ReplyEngine, ReplyRequest
from persona.runtime.window import StickyWindow
from persona.storage.store import Store
from tests.helpers import conversation, interleaved, random_lora

GREEDY = GenerationSettings(max_new_tokens=12, temperature=0.8, top_p=0.9, repetition_penalty=1.1, greedy=True)


def test_frame_two_puts_memories_next_to_the_new_message_and_frame_one_in_the_system_prompt() -> None:
    frame = Frame("June", "", "#general (Crux)", "2024-05-01")
    lines = [Line("sam", "anyone?", False), Line("June", "me", True), Line("kim", "where?", False)]
    two = render(frame, lines, ["CANARY-memory"])
    assert "CANARY" not in two[0]["content"] and two[-1]["content"].startswith("kim: where?\n\nThings from your own past")
    plain = render(frame, lines)
    assert two[:-1] == plain[:-1] and two[-1]["content"].startswith(plain[-1]["content"])  # all before the memories reads as without
    one = render(Frame("June", "", "#general (Crux)", "2024-05-01", version=1), lines, ["CANARY-memory"])
    assert "CANARY" in one[0]["content"] and "CANARY" not in one[-1]["content"]
    alone = render(frame, [Line("kim", "hi", False)], ["CANARY-memory"])  # the first turn keeps its place-and-day line first
    assert alone[1]["content"].startswith("[#general (Crux) · 2024-05-01]\nkim: hi\n\n") and alone[1]["content"].endswith("</memory>")
    training = attach_memories([{"role": "system", "content": "s"}, {"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}],
                               ["m"])
    assert "<memory>" in training[1]["content"] and training[2]["content"] == "a"  # the turn the owner's answer answers
    assert set(FRAMES) == {1, 2}


def test_consecutive_prompts_in_a_channel_share_all_but_their_end(tiny_llama: BaseModelSpec) -> None:
    tokenizer = TransformersGenerator(tiny_llama, GREEDY).tokenizer
    prompts = [messages for _, messages in conversation("general", 4)]
    for before, after in itertools.pairwise(prompts):
        memories = before[-1]["content"][before[-1]["content"].index(MEMORY_PREAMBLE):]
        unshared = len(tokenizer(memories, add_special_tokens=False)["input_ids"]) + 16  # its memories, the blank line, the turn end
        assert shared_prefix(prompt_ids(tokenizer, before), prompt_ids(tokenizer, after)) >= len(prompt_ids(tokenizer, before)) - unshared
    lines = [Line("sam", f"chatter {i}: anyone at the wall tonight? the new routes look fun", False) for i in range(12)]
    later = [*lines, Line("June", "r", True), Line("kim", "q 1", False)]
    shared = {}
    for version in FRAMES:  # frame 1 shares the system text; what follows differs from the first memory on
        frame = Frame("June", "", "#general (Crux)", "2024-05-01", version=version)
        first, second = (prompt_ids(tokenizer, render(frame, these, [f"{word} memory " * 8])) for these, word in ((lines, "alpha"), (later, "beta")))
        shared[version] = shared_prefix(first, second)
    assert shared[2] > 1.5 * shared[1]  # frame 2 also reuses the twelve lines of chatter


@pytest.mark.parametrize("places", [["general"], ["general", "random", "dm"]])
def test_greedy_replies_are_the_same_with_and_without_reuse(tiny_llama: BaseModelSpec, places: list[str]) -> None:
    reusing = TransformersGenerator(tiny_llama, GREEDY, prefix_cache_mb=64)
    reading = TransformersGenerator(tiny_llama, GREEDY, prefix_cache_mb=0)
    for place, messages in interleaved(places, 4):
        assert reusing.generate(messages, place=place).text == reading.generate(messages, place=place).text
    assert reading.prefixes.share_read() == 1.0 and len(reading.prefixes) == 0
    assert reusing.prefixes.share_read() < 0.6 and len(reusing.prefixes) == len(places)


def test_the_kept_caches_stay_within_their_bound_and_go_with_the_adapter(tiny_llama: BaseModelSpec, tmp_path: Path) -> None:
    probe = TransformersGenerator(tiny_llama, GREEDY, prefix_cache_mb=64)
    probe.generate(conversation("a", 1)[0][1], place="a")
    one_place = probe.prefixes.nbytes
    assert one_place > 0
    bounded = TransformersGenerator(tiny_llama, GREEDY)
    bounded.prefixes.max_bytes = int(one_place * 2.5)  # room for two places' prompts, not three
    for place, messages in interleaved(["a", "b", "c"], 2):
        bounded.generate(messages, place=place)
        assert bounded.prefixes.nbytes <= bounded.prefixes.max_bytes
    assert len(bounded.prefixes) == 2
    before = bounded.prefixes.read_tokens
    later = conversation("a", 3)[2][1]
    bounded.generate(later, place="a")  # "a" was the least recently used: dropped, so read again whole
    assert bounded.prefixes.read_tokens - before == len(prompt_ids(bounded.tokenizer, later))
    before = bounded.prefixes.read_tokens
    bounded.generate(conversation("a", 4)[3][1], place="a")  # now kept: only the new end is read
    assert bounded.prefixes.read_tokens - before < len(prompt_ids(bounded.tokenizer, conversation("a", 4)[3][1])) // 2
    bounded.use_adapter(1, random_lora(tiny_llama, tmp_path / "lora", seed=3))
    assert len(bounded.prefixes) == 0  # keys and values of the old weights are never reused
    adapted = TransformersGenerator(tiny_llama, GREEDY)
    adapted.use_adapter(1, str(tmp_path / "lora"))
    messages = conversation("b", 2)[1][1]
    assert bounded.generate(messages, place="b").text == adapted.generate(messages).text


def test_a_cancelled_reply_keeps_no_cache(tiny_llama: BaseModelSpec) -> None:
    import threading

    generator = TransformersGenerator(tiny_llama, GREEDY, prefix_cache_mb=64)
    stop = threading.Event()
    stop.set()
    with cancellation.cancellable(stop), pytest.raises(cancellation.Cancelled):
        generator.generate(conversation("a", 1)[0][1], place="a")
    assert len(generator.prefixes) == 0


def test_a_frame_one_adapter_is_served_in_frame_one(store: Store, embedder: Embedder, tiny_llama: BaseModelSpec, tmp_path: Path) -> None:
    generator = TransformersGenerator(tiny_llama, GREEDY, prefix_cache_mb=64)
    engine = ReplyEngine(store, embedder, generator, owner_id=None, owner_name="June")
    request = ReplyRequest(text="hi", asker_id=5, asker_name="kim", place=Place.dm(), history=[Line("kim", "yo", False)])
    path = random_lora(tiny_llama, tmp_path / "old", seed=1, scale=0.1)
    with store.connect() as conn:
        old = adapters.create_candidate(conn, base_model=tiny_llama.name, parent_id=None, hyperparams={}, data_watermark=0,
                                        feedback_watermark=0, prompt_frame=1)
        adapters.set_path(conn, old, path)
        adapters.activate(conn, old)
        conn.commit()
    engine.refresh_adapter()
    assert engine.frame_version == 1
    assert "CANARY" in engine.build_prompt(request, [_memory("CANARY")])[0]["content"]
    with store.connect() as conn:
        new = adapters.create_candidate(conn, base_model=tiny_llama.name, parent_id=old, hyperparams={}, data_watermark=0,
                                        feedback_watermark=0)
        adapters.set_path(conn, new, path)
        adapters.activate(conn, new)
        conn.commit()
        assert adapters.get(conn, new).prompt_frame == 2 and adapters.get(conn, old).prompt_frame == 1
    engine.refresh_adapter()
    prompt = engine.build_prompt(request, [_memory("CANARY")])
    assert engine.frame_version == 2 and "CANARY" not in prompt[0]["content"] and "CANARY" in prompt[-1]["content"]


def _memory(text: str):
    from datetime import UTC, datetime

    from persona.memory import Memory

    now = datetime.now(UTC)
    return Memory(id=1, scope="private", content=text, score=1.0, started_at=now, ended_at=now, message_ids=[1])


def test_the_window_keeps_its_first_line_until_it_is_full() -> None:
    window = StickyWindow(3, 6)
    ids = list(range(10))
    assert window.start("c", ids) == 7  # the newest three
    assert window.start("c", [*ids, 10, 11]) == 7  # same first line: five lines now
    assert window.start("c", [*ids, 10, 11, 12]) == 7  # six: full
    assert window.start("c", [*ids, 10, 11, 12, 13]) == 11  # seven would be too many: the newest three again
    assert window.start("other", ids) == 7
    assert window.start("c", [50, 51]) == 0  # the start line is gone (deleted, or older than what was fetched)

"""Recalled memories in training examples: same scope, nothing from later, never the example's own answer."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from persona import memory
from persona.config import Settings
from persona.memory.embeddings import Embedder
from persona.prompts import MEMORY_PREAMBLE
from persona.storage.db import Database
from persona.storage.store import Store
from tests.fixtures import voice
from tests.fixtures.tiny_model import build_tiny_model
from trainer.dataset import Options, build_dataset
from trainer.recalled import add_recalled_memories, chosen

DM_CHANNEL = 1000000000000000001
CANARY = "CANARY-DM-7731 the locker code is behind the poster"


def _insert(conn, message_id: int, channel_id: int, author_id: int, scope: str, at: datetime, text: str) -> None:
    conn.execute("INSERT INTO messages (id, channel_id, author_id, source, scope, created_at, content) VALUES (%s, %s, %s, 'dce', %s, %s, %s)",
                 (message_id, channel_id, author_id, scope, at, text))


def _history(store: Store, embedder: Embedder) -> None:
    with store.connect() as conn:
        last = voice.populate(conn, sessions=36)
        # A DM the owner wrote early on, asked about later in every channel's style.
        _insert(conn, last + 1, DM_CHANNEL, voice.OWNER_ID, f"dm:{222222222222222222}", datetime(2023, 1, 1, 6, tzinfo=UTC), CANARY)
        conn.commit()
        memory.build(conn, embedder)


def test_memories_come_from_the_same_scope_and_from_before(store: Store, embedder: Embedder) -> None:
    _history(store, embedder)
    with store.connect() as conn:
        dataset = build_dataset(conn, Options())
        examples = dataset.train + dataset.heldout
        added = add_recalled_memories(conn, embedder, examples, fraction=1.0, max_seq_len=4096)
        scopes = dict(conn.execute("SELECT id, scope FROM channels").fetchall())
        recalled = {m[0]: m[1:] for m in conn.execute("SELECT id, scope, ended_at, message_ids FROM memories")}
    with_memories = [e for e in examples if e.recalled_ids]
    assert added == len(with_memories) and len(with_memories) > len(examples) // 2
    for example in with_memories:
        system = next(m["content"] for m in reversed(example.messages) if m["role"] == "user")  # frame 2: beside the last question
        assert system.count("<memory>") == len(example.recalled_ids) and "recalled" in example.tags
        assert "<memory>" not in example.messages[0]["content"] and example.messages[-1]["role"] == "assistant"
        for memory_id in example.recalled_ids:
            scope, ended_at, message_ids = recalled[memory_id]
            assert scope == scopes[example.channel_id]
            assert ended_at <= datetime.fromisoformat(example.last_at)
            assert not set(message_ids) & set(example.target_ids)  # never the example's own answer
        if scopes[example.channel_id].startswith("guild:"):
            assert "CANARY-DM" not in system  # a DM never reaches a server conversation
    assert any(CANARY in json.dumps(e.messages) for e in with_memories if e.channel_id == DM_CHANNEL)


def test_the_share_is_stable_and_zero_turns_it_off(store: Store, embedder: Embedder) -> None:
    _history(store, embedder)
    with store.connect() as conn:
        plain = build_dataset(conn, Options())
        assert add_recalled_memories(conn, embedder, plain.train, fraction=0.0, max_seq_len=4096) == 0
        assert not any("<memory>" in json.dumps(e.messages) for e in plain.train)
        first = build_dataset(conn, Options())
        second = build_dataset(conn, Options())
        add_recalled_memories(conn, embedder, first.train, fraction=0.5, max_seq_len=4096)
        add_recalled_memories(conn, embedder, second.train, fraction=0.5, max_seq_len=4096)
        tight = build_dataset(conn, Options())
        assert add_recalled_memories(conn, embedder, tight.train, fraction=1.0, max_seq_len=60) == 0  # would not fit: left out
    picked = {e.target_ids[0] for e in first.train if chosen(e, 0.5)}
    assert 0.25 * len(first.train) < len(picked) < 0.75 * len(first.train)
    assert {e.target_ids[0]: e.recalled_ids for e in first.train} == {e.target_ids[0]: e.recalled_ids for e in second.train}
    assert all(not e.recalled_ids for e in first.train if not chosen(e, 0.5))



SERVER_CHANNEL = 1000000000000000004
FRIEND = 222222222222222222


def _exchanges(store: Store, embedder: Embedder) -> None:
    """The voice history plus first-person answers to questions, in a server and in the DM (with a canary)."""
    with store.connect() as conn:
        last = voice.populate(conn, sessions=24)
        rows = [
            (SERVER_CHANNEL, "guild:5000000000000000001", "What instrument are you learning?", "i'm learning the cello, my neighbours hate me"),
            (SERVER_CHANNEL, "guild:5000000000000000001", "Where did you grow up?", "i grew up way up north, winters here feel like nothing"),
            (DM_CHANNEL, f"dm:{FRIEND}", "What's the locker code again?", f"my code is {CANARY} dont tell anyone"),
        ]
        for n, (channel, scope, question, answer) in enumerate(rows):
            at = datetime(2022, 12, 1 + n, 12, tzinfo=UTC)  # before the voice history: never held out
            for offset, (author, text) in enumerate([(FRIEND, question), (voice.OWNER_ID, answer)]):
                _insert(conn, last + 10 * n + offset + 1, channel, author, scope, at.replace(minute=offset), text)
        conn.commit()
        memory.build(conn, embedder)


def test_recall_drills_put_the_answer_in_a_memory_of_the_same_scope(store: Store, embedder: Embedder) -> None:
    from trainer.drills import add_drills, answered_question

    _exchanges(store, embedder)
    with store.connect() as conn:
        dataset = build_dataset(conn, Options())
        drills = add_drills(conn, embedder, dataset.train, dataset.heldout, fraction=1.0)
        scopes = dict(conn.execute("SELECT id, scope FROM channels").fetchall())
        memories = {m[0]: m[1:] for m in conn.execute("SELECT id, scope, message_ids, content FROM memories")}
    held = {i for e in dataset.heldout for i in e.message_ids}
    answers = {d.messages[-1]["content"] for d in drills}
    assert any("cello" in a for a in answers) and any(CANARY in a for a in answers)
    for drill in drills:
        system, user, answer = (m["content"] for m in drill.messages)
        assert [m["role"] for m in drill.messages] == ["system", "user", "assistant"] and "drill" in drill.tags
        asked, _, quoted = user.partition("\n\n" + MEMORY_PREAMBLE)  # frame 2: the question, then the memories
        assert asked.split("\n")[-1].endswith("?") and user.startswith("[") and quoted.count("<memory>") == len(drill.recalled_ids)
        holding = [i for i in drill.recalled_ids if answer.split("\n")[0] in memories[i][2]]
        assert holding, "the answer is in one of the drill's memories"
        for memory_id in drill.recalled_ids:
            scope, message_ids, _content = memories[memory_id]
            assert scope == scopes[drill.channel_id]  # a server drill never sees the DM
            assert not set(message_ids) & held  # never a held-out message
            assert set(message_ids) <= set(drill.message_ids)  # a forget of them finds the drill
        assert user.count("<memory>") == len(drill.recalled_ids) and "<memory>" not in system
    assert not any(CANARY in json.dumps(d.messages) for d in drills if scopes[d.channel_id].startswith("guild:"))
    assert answered_question(dataset.train[0]) is None or answered_question(dataset.train[0])[1].endswith("?")
    with store.connect() as conn:
        assert add_drills(conn, embedder, dataset.train, dataset.heldout, fraction=0.0) == []


def test_every_evaluation_measures_fact_use_and_a_forget_removes_the_probes(store: Store, embedder: Embedder, database: Database,
                                                                          tmp_path: Path) -> None:
    from persona.privacy.forget import carry_out, forget_channel
    from trainer import pipeline
    from trainer.fact_probes import key_word

    assert key_word("What instrument are you learning?", "i'm learning the cello, my neighbours hate me", Counter({"i'm": 9, "the": 40})) == "cello"
    _exchanges(store, embedder)
    tiny = build_tiny_model(tmp_path / "tiny", voice.PROMPTS + voice.REPLIES)
    settings = Settings(_env_file=None, database_url=database.url, home=tmp_path / "home", base_model=str(tiny), batch_size=4,
                        grounding_boost=20.0, grounding_copy_weight=0.9, grounding_threshold=0.45, promote_on_fact_use=True)
    outcome = pipeline.run(store, settings, incremental=False, max_steps=2, eval_samples=0, quiet=True)
    table = outcome.metrics["fact_use"]
    questions = {s["question"]: s for s in table["samples"]}
    assert {"What instrument are you learning?", "Where did you grow up?", "What's the locker code again?"} <= set(questions)
    assert questions["What instrument are you learning?"]["key"] == "cello" and table["in_recalled_memories"] >= 2
    assert table["adapter"] >= 1 and table["with_evidence"] >= 2  # the strong grounding copies the remembered answer
    verdicts = table["consistency"]["adapter"]
    assert sum(verdicts.values()) == table["probes"] and set(table["consistency"]) == {"base", "adapter"}
    stating = [s["verdict"]["adapter"] for s in table["samples"] if s["key"] in s["adapter"].lower()]
    # An answer that states the remembered fact is supported by what the owner said (or claims nothing the question did not hold).
    assert "supported" in stating and set(stating) <= {"supported", "none"}, table["samples"]
    assert "## Fact use" in Path(outcome.report).read_text() and "| adapter | " in Path(outcome.report).read_text().split("consistency check")[1]
    folder = Path(outcome.report).parent
    probes = (folder / "data" / "probes.jsonl").read_text()
    assert "cello" in probes and "cello" in (folder / "result.json").read_text()
    with store.connect() as conn:
        stored = conn.execute("SELECT metrics FROM adapter_versions WHERE id = %s", (outcome.version,)).fetchone()[0]
        assert "samples" not in stored["fact_use"] and "cello" not in json.dumps(stored)  # the database keeps figures, not words
        carry_out(conn, lambda c: forget_channel(c, SERVER_CHANNEL), settings.datasets_dir)
    assert "cello" not in (folder / "data" / "probes.jsonl").read_text() and "cello" not in (folder / "result.json").read_text()
    assert "cello" not in (folder / "metrics.json").read_text()

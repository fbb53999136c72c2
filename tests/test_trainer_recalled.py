"""Recalled memories in training examples: same scope, nothing from later, never the example's own answer."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from persona import memory
from persona.memory.embeddings import Embedder, resolve_embed_model
from persona.storage.store import Store
from tests.fixtures import voice
from trainer.dataset import Options, build_dataset
from trainer.recalled import add_recalled_memories, chosen

DM_CHANNEL = 1000000000000000001
CANARY = "CANARY-DM-7731 the locker code is behind the poster"


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder(resolve_embed_model(""))


def _history(store: Store, embedder: Embedder) -> None:
    with store.connect() as conn:
        last = voice.populate(conn, sessions=36)
        # A DM the owner wrote early on, asked about later in every channel's style.
        conn.execute("INSERT INTO messages (id, channel_id, author_id, source, scope, created_at, content) VALUES (%s, %s, %s, 'dce', %s, %s, %s)",
                     (last + 1, DM_CHANNEL, voice.OWNER_ID, f"dm:{222222222222222222}", datetime(2023, 1, 1, 6, tzinfo=timezone.utc), CANARY))
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
        system = example.messages[0]["content"]
        assert system.count("<memory>") == len(example.recalled_ids) and "recalled" in example.tags
        for memory_id in example.recalled_ids:
            scope, ended_at, message_ids = recalled[memory_id]
            assert scope == scopes[example.channel_id]
            assert ended_at <= datetime.fromisoformat(example.last_at)
            assert not set(message_ids) & set(example.target_ids)  # never the example's own answer
        if scopes[example.channel_id].startswith("guild:"):
            assert "CANARY-DM" not in system  # a DM never reaches a server conversation
    assert any(CANARY in e.messages[0]["content"] for e in with_memories if e.channel_id == DM_CHANNEL)


def test_the_share_is_stable_and_zero_turns_it_off(store: Store, embedder: Embedder) -> None:
    _history(store, embedder)
    with store.connect() as conn:
        plain = build_dataset(conn, Options())
        assert add_recalled_memories(conn, embedder, plain.train, fraction=0.0, max_seq_len=4096) == 0
        assert not any("<memory>" in e.messages[0]["content"] for e in plain.train)
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


"""Forget works whatever it removes (issue 33, item 1): every kind of forget that leaves the
owner without a single memory — which once crashed in the topic clustering and deleted
nothing — deletes everything it should, its preview counts the same, and topics go.
`persona forget everything` (the owner leaving) empties every table and every file under
PERSONA_HOME but the bundled models."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from persona import memory
from persona.memory import topics
from persona.memory.embeddings import Embedder
from persona.privacy import forget
from persona.storage.db import Database
from persona.storage.store import Store
from tests.fixtures import voice

FRIENDS = sorted({*voice.FRIENDS, 222222222222222222})


def _counts(conn: psycopg.Connection) -> dict[str, int]:
    owner = voice.OWNER_ID
    return {
        "messages": conn.execute("SELECT count(*) FROM messages").fetchone()[0],
        "owner_memories": conn.execute("SELECT count(*) FROM memories WHERE %s = ANY(author_ids)", (owner,)).fetchone()[0],
        "topics": topics.topic_count(conn),
    }


def _plans(conn: psycopg.Connection) -> dict[str, list[Callable[[psycopg.Connection], forget.Forgotten]]]:
    """For each kind of forget, the forgets of that kind that together remove every owner memory."""
    everything = (datetime(1, 1, 1, tzinfo=UTC), datetime(9999, 12, 31, tzinfo=UTC))
    memory_ids = [r[0] for r in conn.execute("SELECT id FROM memories ORDER BY id").fetchall()]
    return {
        "range": [lambda c: forget.forget_range(c, *everything)],
        "channel": [lambda c, ch=ch: forget.forget_channel(c, ch) for ch in voice.CHANNELS],
        "person": [lambda c, p=p: forget.forget_person(c, p) for p in FRIENDS],
        "optout": [lambda c, p=p: forget.opt_out(c, p) for p in FRIENDS],
        "memory": [lambda c, m=m: forget.forget_memory(c, m) for m in memory_ids],
    }


@pytest.mark.parametrize("kind", ["range", "channel", "person", "optout", "memory"])
def test_a_forget_that_leaves_no_memory_deletes_and_previews(kind: str, database: Database, embedder: Embedder) -> None:
    store = Store(database)
    with store.connect() as conn:
        voice.populate(conn, sessions=24)
        memory.build(conn, embedder)
        before = _counts(conn)
        assert before["owner_memories"] >= topics.MIN_MEMORIES and before["topics"] > 0
        plan = _plans(conn)[kind]
    with store.connect() as conn:
        for step in plan:
            previewed = forget.preview(conn, step)
            done, _ = forget.carry_out(conn, step, None)
            assert (previewed.messages, previewed.memories, previewed.replies) == (done.messages, done.memories, done.replies)
        after = _counts(conn)
    assert after["owner_memories"] == 0 and after["topics"] == 0
    if kind in ("range", "channel", "memory"):
        assert after["messages"] == 0
    else:  # the owner's own lines in servers stay; everything with the forgotten people went
        assert 0 < after["messages"] < before["messages"]


CANARY = "plover-gazebo-5521"


def _persona(exe: Path, home: Path, *args: str, database_url: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PERSONA_HOME": str(home), "PERSONA_OWNER_ID": str(voice.OWNER_ID), "PERSONA_LOG_LEVEL": "WARNING"}
    env.pop("DATABASE_URL", None)
    if database_url:
        env["DATABASE_URL"] = database_url
    return subprocess.run([str(exe), *args],
                          env=env, capture_output=True, text=True, timeout=300, check=False)


def _files_with(root: Path, needle: str) -> list[str]:
    return [str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and needle.encode() in p.read_bytes()]


def _plant_home(home: Path) -> None:
    """A trained-looking home: adapter files, a dataset and an upload holding the canary."""
    for relative in ("adapters/v1/train.jsonl", "datasets/latest/train.jsonl", "uploads/abc.zip", "discord-commands.json"):
        path = home / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"text": f"remember {CANARY}"}))
    (home / "models" / "gemma-3-270m").mkdir(parents=True)
    (home / "models" / "gemma-3-270m" / "config.json").write_text("{}")  # the bundled model: not personal, kept


def test_forget_everything_on_a_separate_server_empties_every_table_and_file(persona_exe: Path, database: Database, embedder: Embedder,
                                                                            tmp_path: Path) -> None:
    store = Store(database)
    with store.connect() as conn:
        voice.populate(conn, sessions=12, replies=[f"ok {CANARY}"] * len(voice.PROMPTS))
        memory.build(conn, embedder)
    home = tmp_path / "home"
    _plant_home(home)

    refused = _persona(persona_exe, home, "forget", "everything", database_url=database.url)
    assert refused.returncode != 0 and "--yes" in refused.stderr and "Traceback" not in refused.stderr
    with store.connect() as conn:
        assert _counts(conn)["messages"] > 0  # refused: nothing deleted

    done = _persona(persona_exe, home, "forget", "everything", "--yes", database_url=database.url)
    assert done.returncode == 0, done.stderr
    with store.connect() as conn:
        tables = [r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'schema_migrations'")]
        assert tables and all(conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] == 0 for t in tables)
    left = sorted(str(p.relative_to(home)) for p in home.rglob("*") if p.is_file())
    assert left == ["models/gemma-3-270m/config.json"]
    stats = json.loads(_persona(persona_exe, home, "stats", "--json", database_url=database.url).stdout)
    assert stats["messages"] == 0 and stats["memories"] == 0 and stats["adapters"] == 0


def test_forget_everything_deletes_the_embedded_database_files(persona_exe: Path, tmp_path: Path) -> None:
    """On the embedded server the owner's text is also in PostgreSQL's files (pages, the
    write-ahead log): after `forget everything` no file under PERSONA_HOME holds it."""
    home = tmp_path / "home"
    export = tmp_path / "export.json"
    from tests.fixtures.dce import FRIEND, OWNER, message, write_export

    write_export(export, channel_id=1000000000000000301, channel_type="DirectTextChat",
                 messages=[message(1_600_000_000_000_000_001, FRIEND, "what's the wifi password"),
                           message(1_600_000_000_000_000_002, OWNER, f"it's {CANARY} lol")])
    imported = _persona(persona_exe, home, "ingest", "dce", str(export))
    assert imported.returncode == 0, imported.stderr
    assert _files_with(home / "pg", CANARY)  # the canary is in the database's files (else this test proves nothing)

    done = _persona(persona_exe, home, "forget", "everything", "--yes")
    assert done.returncode == 0, done.stderr
    assert _files_with(home, CANARY) == []
    stats = _persona(persona_exe, home, "stats", "--json")  # a new, empty database on the next use
    assert stats.returncode == 0, stats.stderr
    assert json.loads(stats.stdout)["messages"] == 0

"""Forget reaches everything derived: files beside the adapters, replies that quoted the
person, and the adapter that serves (issue 15, item 1).

A unique string said only by Zed → memory → training (with recalled memories, so it
also lands in other conversations' examples) → a reply that recalled it → `persona
forget user` through the real CLI → the string is in no file under PERSONA_HOME and no
table, the adapter trained on it is marked tainted and no longer serves, and the one
that serves was not trained on it.
"""

from __future__ import annotations

import json
import os
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from persona import adapters, memory, replies
from persona.adapter_files import purge_pending
from persona.config import Settings
from persona.memory.embeddings import Embedder, resolve_embed_model
from persona.privacy.forget import forget_person
from persona.privacy.scopes import Place
from persona.storage.db import Database
from persona.storage.store import Store
from tests.fixtures import voice
from tests.fixtures.tiny_model import build_tiny_model
from trainer import pipeline

ZED = 444444444444444444  # in no conversation of tests.fixtures.voice
GUILD_CHANNEL = 1000000000000000004
CANARY = "zebra-quokka-7731"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(build_tiny_model(tmp_path_factory.mktemp("tiny") / "model", voice.PROMPTS + voice.REPLIES + [CANARY]))


def _plant(conn: psycopg.Connection, sessions: int) -> None:
    """Zed says the canary in a server channel, the owner answers; later sessions than voice's."""
    when = datetime(2024, 3, 1, 12, tzinfo=UTC)
    message_id = 8_200_000_000_000_000_000
    conn.execute("INSERT INTO people (id, name) VALUES (%s, 'zed') ON CONFLICT DO NOTHING", (ZED,))
    for i in range(sessions):
        when += timedelta(hours=5)
        for offset, (author, text) in enumerate([(ZED, f"my locker code is {CANARY}, remember it"), (voice.OWNER_ID, "lowkey got it fr 💀")]):
            message_id += 1
            conn.execute("INSERT INTO messages (id, channel_id, author_id, source, scope, created_at, content) VALUES (%s, %s, %s, 'dce', %s, %s, %s)",
                         (message_id, GUILD_CHANNEL, author, voice.CHANNELS[GUILD_CHANNEL][1], when + timedelta(minutes=offset + i), text))
    conn.commit()


def _files_with(root: Path, needle: str) -> list[str]:
    found = []
    for path in root.rglob("*"):
        if path.is_file() and needle.encode() in path.read_bytes():
            found.append(str(path.relative_to(root)))
    return found


def _tables_with(conn: psycopg.Connection, needle: str) -> list[str]:
    tables = [r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()]
    return [t for t in tables if conn.execute(f"SELECT count(*) FROM {t} x WHERE x::text LIKE %s", (f"%{needle}%",)).fetchone()[0]]


def test_forget_reaches_files_replies_and_the_serving_adapter(persona_exe: Path, database: Database, tiny: str, tmp_path: Path) -> None:
    home = tmp_path / "home"
    settings = Settings(_env_file=None, database_url=database.url, home=home, base_model=tiny, batch_size=4, train_memory_fraction=1.0)
    store = Store(database)
    embedder = Embedder(resolve_embed_model(""))
    with store.connect() as conn:
        voice.populate(conn, sessions=24)
        memory.build(conn, embedder)
    clean = pipeline.run(store, settings, incremental=False, max_steps=8, learning_rate=1e-2, eval_samples=2, eval_max_new_tokens=4, quiet=True)
    assert clean.status == "promoted" and clean.version == 1

    with store.connect() as conn:
        _plant(conn, sessions=6)
        memory.build(conn, embedder)
        recalled = memory.recall(conn, embedder, "locker code", asker_id=None, place=Place.terminal(), owner_id=voice.OWNER_ID)
        said = next(m for m in recalled if CANARY in m.content)
        prompt = [{"role": "system", "content": f"Memories: {said.content}"}, {"role": "user", "content": "what was the code?"}]
        replies.log_reply(conn, replies.LoggedReply(scope="private", prompt=prompt, completion=f"it was {CANARY}", memory_ids=[said.id],
                                                    adapter_version=1, base_model="tiny", latency_ms=5, asker_id=voice.OWNER_ID))
        quoting = [{"role": "user", "content": f"zed: {CANARY}\nsam: what did she say?"}]
        replies.log_reply(conn, replies.LoggedReply(scope="guild:5000000000000000001", prompt=quoting, completion="no idea", memory_ids=[],
                                                    adapter_version=1, base_model="tiny", latency_ms=5, asker_id=222222222222222222,
                                                    context_author_ids=(ZED,)))
        conn.commit()
    tainted = pipeline.run(store, settings, incremental=True, max_steps=8, learning_rate=1e-2, eval_samples=8, eval_max_new_tokens=4, quiet=True)
    assert tainted.version == 2
    with store.connect() as conn:
        adapters.activate(conn, 2)  # whatever the gate said: the adapter trained on the canary serves
        pipeline.prepared_dataset(conn, settings).write(settings.datasets_dir / "latest")  # `persona dataset build`
    (home / "adapters" / "v2" / "checkpoints" / "checkpoint-1").mkdir(parents=True)  # as an interrupted run leaves them
    (home / "adapters" / "v2" / "checkpoints" / "checkpoint-1" / "optimizer.pt").write_bytes(b"\0" * 64)
    before = _files_with(home, CANARY)
    assert any(f.startswith("adapters/v2/data/") for f in before) and any(f.startswith("datasets/latest/") for f in before), before
    with store.connect() as conn:
        assert set(_tables_with(conn, CANARY)) >= {"messages", "memories", "replies"}

    env = {**{k: v for k, v in os.environ.items() if not k.startswith("PERSONA_")}, "DATABASE_URL": database.url, "PERSONA_BASE_MODEL": tiny,
           "PERSONA_HOME": str(home), "PERSONA_BATCH_SIZE": "4", "PERSONA_TRAIN_MEMORY_FRACTION": "1.0", "PERSONA_TRAIN_EPOCHS": "1"}
    result = subprocess.run([str(persona_exe), "forget", "user", str(ZED), "--yes"], env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "2 replies" in result.stdout and "adapters trained on it: v2" in result.stdout and "v1 serves meanwhile" in result.stdout, result.stdout
    assert "retraining without it" in result.stdout

    assert _files_with(home, CANARY) == []
    assert not (home / "adapters" / "v2" / "checkpoints").exists() and not (home / "adapters" / "v2" / "adapter").exists()
    with store.connect() as conn:
        assert _tables_with(conn, CANARY) == []
        versions = {v.id: v for v in adapters.versions(conn)}
        assert versions[2].tainted and "user 444444444444444444 forgotten" in versions[2].tainted_reason
        assert not versions[1].tainted and all(not v.files_pending for v in versions.values())
        serving = adapters.active(conn)
        assert serving is not None and not serving.tainted  # v1, or the retrain on top of it
        assert serving.id == 1 or versions[serving.id].parent_id == 1
        with pytest.raises(Exception, match="trained on data that was forgotten"):
            adapters.activate(conn, 2)
    listing = subprocess.run([str(persona_exe), "adapters", "--json"], env=env, capture_output=True, text=True, timeout=120)
    assert [v["version"] for v in json.loads(listing.stdout) if v["tainted"]] == [2]
    table = subprocess.run([str(persona_exe), "adapters"], env=env | {"COLUMNS": "250"}, capture_output=True, text=True, timeout=120)
    assert "v2       retired tainted" in table.stdout and "trained on forgotten data (user 444444444444444444 forgotten)" in table.stdout


def test_a_deferred_forget_is_finished_by_the_next_training_run(database: Database, tiny: str, tmp_path: Path) -> None:
    """No clean version to go back to, and `--no-retrain`: the tainted adapter serves until the
    next run, which trains from scratch without the forgotten data and retires it."""
    settings = Settings(_env_file=None, database_url=database.url, home=tmp_path / "home", base_model=tiny, batch_size=4)
    store = Store(database)
    with store.connect() as conn:
        voice.populate(conn, sessions=24)
        _plant(conn, sessions=4)
    assert pipeline.run(store, settings, incremental=False, max_steps=4, eval_samples=0, quiet=True).version == 1
    with store.connect() as conn:
        with conn.transaction():
            forgotten = forget_person(conn, ZED)
        assert forgotten.tainted == [1] and forgotten.tainted_active == 1 and forgotten.needs_retrain
        assert "v1 still serves until it is retrained" in forgotten.describe()
        purge_pending(conn, settings.datasets_dir)
        assert adapters.active(conn).id == 1 and adapters.get(conn, 1).files_pending  # weights kept while serving
    assert _files_with(settings.home, CANARY) == []
    outcome = pipeline.run(store, settings, incremental=True, max_steps=4, eval_samples=0, quiet=True)
    assert outcome.version == 2
    with store.connect() as conn:
        v1, v2 = adapters.get(conn, 1), adapters.get(conn, 2)
        assert v2.parent_id is None and not v2.tainted  # from scratch, not on top of the tainted one
        assert v1.status == "retired" and not v1.files_pending
        serving = adapters.active(conn)
        assert (serving is not None and serving.id == 2) if outcome.status == "promoted" else serving is None
    assert not (settings.home / "adapters" / "v1" / "adapter").exists()

"""kill -9 at several points, then the same command again: it ends exactly where an
uninterrupted run ends (issue 15, item 3).

Memory build (killed once the first channel's memories are stored), `persona train` (killed while the
training process trains, and while it evaluates) and `persona eval` (killed while it
evaluates), each compared with the same command run once, uninterrupted, on a twin
database and home. The whole process group is killed — the persona process and its
training child at the same instant — as the kernel's OOM killer or a power cut would.
Imports killed midway: tests/test_ingest_dce.py (all or nothing, marked on the next start).
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from ingest.dce import ingest_dce
from persona.storage.db import Database
from persona.storage.store import Store
from tests.fixtures import voice
from tests.fixtures.dce import write_large_export
from tests.fixtures.discord_package import OWNER_ID
from tests.fixtures.tiny_model import build_tiny_model
from tests.helpers import rows


@pytest.fixture
def twin(pg_admin_url: str, template_url: str) -> Iterator[Database]:
    """A second fresh database, for the uninterrupted run."""
    from tests.conftest import TEMPLATE, _create_database, _drop_database

    name = f"twin_{uuid.uuid4().hex[:10]}"
    yield Database(url=_create_database(pg_admin_url, name, TEMPLATE))
    _drop_database(pg_admin_url, name)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(build_tiny_model(tmp_path_factory.mktemp("tiny") / "model", voice.PROMPTS + voice.REPLIES))


def _env(database: Database, home: Path, **settings: str) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PERSONA_")}
    return clean | {"DATABASE_URL": database.url, "PERSONA_HOME": str(home), "PERSONA_OWNER_ID": str(OWNER_ID)} | settings


def _run(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def _kill_when(command: list[str], env: dict[str, str], ready: Callable[[], bool], what: str) -> None:
    """Start `command`, wait until `ready()`, kill -9 its whole process group."""
    child = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while not ready():
            assert child.poll() is None, f"{' '.join(command[1:])} ended before {what}"
            assert time.monotonic() < deadline, f"never reached {what}"
            time.sleep(0.02)
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
        child.wait(timeout=60)


def _memories(database: Database) -> list[tuple[str, list[int], str, list[float]]]:
    with psycopg.connect(database.url) as conn:
        return conn.execute("SELECT scope, message_ids, content, embedding::text FROM memories ORDER BY message_ids[1]").fetchall()


def test_memory_build_killed_midway_ends_like_an_uninterrupted_one(persona_exe: Path, database: Database, twin: Database,
                                                                            tmp_path: Path) -> None:
    exports = [write_large_export(tmp_path / f"big{i}.json", 300, channel_id=9000000000000000001 + i, first_id=7_000_000_000_000_000_000 + i * 10_000)
               for i in range(3)]  # chunking commits channel by channel, embedding batch by batch
    for db in (database, twin):
        ingest_dce(Store(db), exports, owner_id=OWNER_ID)
    build = [str(persona_exe), "memory", "build"]
    env = _env(database, tmp_path / "home")

    def some_stored() -> bool:
        return rows(Store(database), "SELECT count(*) FROM memories")[0][0] > 0

    _kill_when(build, env, some_stored, "the first channel's memories")
    unchunked, unembedded = rows(Store(database), "SELECT (SELECT count(*) FROM messages WHERE memory_id IS NULL), "
                                                  "(SELECT count(*) FROM memories WHERE embedding IS NULL)")[0]
    assert unchunked or unembedded, "killed too late to interrupt anything"
    _run(build, env)
    _run(build, _env(twin, tmp_path / "twin"))

    resumed, uninterrupted = _memories(database), _memories(twin)
    assert [m[:3] for m in resumed] == [m[:3] for m in uninterrupted]
    for (*_, a), (*_, b) in zip(resumed, uninterrupted):
        va, vb = json.loads(a), json.loads(b)
        cosine = sum(x * y for x, y in zip(va, vb)) / math.sqrt(sum(x * x for x in va) * sum(y * y for y in vb))
        assert cosine > 0.9999  # the same text, embedded in a different batch


def test_train_and_eval_killed_midway_end_like_uninterrupted_runs(persona_exe: Path, database: Database, twin: Database, tiny: str,
                                                                   tmp_path: Path) -> None:
    for db in (database, twin):
        with psycopg.connect(db.url) as conn:
            voice.populate(conn, sessions=30)
    settings = {"PERSONA_BASE_MODEL": tiny, "PERSONA_BATCH_SIZE": "4", "PERSONA_EVAL_STEPS": "5", "PERSONA_LEARNING_RATE": "0.01"}
    home, twin_home = tmp_path / "home", tmp_path / "twin"
    env, twin_env = _env(database, home, **settings), _env(twin, twin_home, **settings)
    train = [str(persona_exe), "train", "--max-steps", "30", "--eval-samples", "8", "--json"]
    run = home / "adapters" / "v1"

    _kill_when(train, env, lambda: any(run.glob("checkpoints/checkpoint-*/trainer_state.json")), "a checkpoint")
    assert not (run / "result.json").exists()
    _kill_when(train, env, lambda: (run / "adapter" / "adapter_model.safetensors").exists() and not (run / "result.json").exists(),
               "the evaluation of the trained adapter")
    assert not (run / "result.json").exists()
    resumed = json.loads(_run(train, env).stdout)
    uninterrupted = json.loads(_run(train, twin_env).stdout)

    assert resumed["status"] == uninterrupted["status"] == "promoted" and resumed["version"] == uninterrupted["version"] == 1
    for model in ("base", "candidate"):
        assert resumed["heldout_loss"][model] == pytest.approx(uninterrupted["heldout_loss"][model], rel=1e-3)
    assert json.loads((run / "result.json").read_text())["train"]["steps"] == 30
    for db in (database, twin):
        assert rows(Store(db), "SELECT id, status FROM adapter_versions") == [(1, "active")]
        assert rows(Store(db), "SELECT status FROM training_runs") == [("succeeded",)]  # the killed run resumed, not a new one
    assert not (run / "checkpoints").exists()  # a finished run keeps no checkpoints

    evaluate = [str(persona_exe), "eval", "v1", "--eval-samples", "4", "--json"]
    _kill_when(evaluate, env, lambda: (run / "eval" / "job.json").exists() and time.sleep(1.0) is None, "the evaluation")
    assert not (run / "eval" / "eval.json").exists()
    evaluated = json.loads(_run(evaluate, env).stdout)
    fresh = json.loads(_run(evaluate, twin_env).stdout)
    assert evaluated["heldout_loss"] == pytest.approx(fresh["heldout_loss"], rel=1e-6)
    assert evaluated["heldout_loss"]["candidate"] == pytest.approx(resumed["heldout_loss"]["candidate"], rel=1e-3)

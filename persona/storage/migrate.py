"""The migration runner: numbered plain-SQL files applied in order, each exactly once.

- Files are `migrations/NNNN_name.sql`; each runs in its own transaction together with
  the row that records it in `schema_migrations`, so a failing file leaves the
  database exactly as it was before that file.
- A session-level advisory lock serialises concurrent runners: the second one waits,
  then finds nothing pending.
- Applied files are never edited; a changed checksum is reported, not re-run.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from importlib.abc import Traversable
from pathlib import Path

import psycopg

from persona.errors import DatabaseError, MigrationError, first_line

log = logging.getLogger(__name__)

# pg_advisory_lock key: the bytes "persona\x00" read as a signed 64-bit integer.
LOCK_KEY = int.from_bytes(b"persona\x00", "big", signed=True)
FILE_PATTERN = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")

_CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version     integer PRIMARY KEY,
    name        text NOT NULL,
    checksum    text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
)
"""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def filename(self) -> str:
        return f"{self.version:04d}_{self.name}.sql"

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


@dataclass(frozen=True)
class AppliedMigration:
    version: int
    name: str
    checksum: str
    applied_at: datetime


@dataclass(frozen=True)
class MigrationStatus:
    applied: list[AppliedMigration]
    pending: list[Migration]
    modified: list[str]  # files whose text changed after they were applied
    unknown: list[int]  # applied versions this code has no file for (database is newer)

    @property
    def current_version(self) -> int:
        return max((m.version for m in self.applied), default=0)


def discover(directory: Traversable | Path | None = None) -> list[Migration]:
    """The migrations in `directory` (default: the installed `migrations` package), in order."""
    folder = directory if directory is not None else resources.files("migrations")
    found: dict[int, Migration] = {}
    for entry in folder.iterdir():
        if not entry.name.endswith(".sql"):
            continue
        match = FILE_PATTERN.match(entry.name)
        if match is None:
            raise MigrationError(f"migration file {entry.name} is misnamed: use NNNN_lower_snake_name.sql")
        version = int(match.group(1))
        if version in found:
            raise MigrationError(f"two migration files share number {version:04d}: {found[version].filename} and {entry.name}")
        found[version] = Migration(version=version, name=match.group(2), sql=entry.read_text(encoding="utf-8"))
    return [found[v] for v in sorted(found)]


def applied_migrations(conn: psycopg.Connection) -> list[AppliedMigration]:
    exists = conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL").fetchone()[0]
    if not exists:
        return []
    rows = conn.execute("SELECT version, name, checksum, applied_at FROM schema_migrations ORDER BY version").fetchall()
    return [AppliedMigration(*row) for row in rows]


def status(conn: psycopg.Connection, migrations: list[Migration] | None = None) -> MigrationStatus:
    migrations = discover() if migrations is None else migrations
    applied = applied_migrations(conn)
    by_version = {m.version: m for m in applied}
    known = {m.version for m in migrations}
    return MigrationStatus(
        applied=applied,
        pending=[m for m in migrations if m.version not in by_version],
        modified=[m.filename for m in migrations if m.version in by_version and by_version[m.version].checksum != m.checksum],
        unknown=sorted(v for v in by_version if v not in known),
    )


def upgrade(conn: psycopg.Connection, migrations: list[Migration] | None = None) -> list[Migration]:
    """Apply every pending migration in order; return those this call applied.

    `conn` must be in autocommit mode: each file gets its own transaction.
    """
    if not conn.autocommit:
        raise ValueError("upgrade() needs an autocommit connection")
    migrations = discover() if migrations is None else migrations
    conn.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
    try:
        conn.execute(_CREATE_TABLE)
        state = status(conn, migrations)
        if state.unknown:
            raise DatabaseError(
                f"the database schema is at version {max(state.unknown):04d}, newer than this persona knows "
                f"({migrations[-1].version if migrations else 0:04d}): upgrade persona"
            )
        for name in state.modified:
            log.warning("migration %s changed after it was applied; applied files must never be edited", name)
        current = state.current_version
        for migration in state.pending:
            _apply(conn, migration, current=current)
            current = migration.version
        return state.pending
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))


def _apply(conn: psycopg.Connection, migration: Migration, *, current: int) -> None:
    log.info("applying migration %s", migration.filename)
    try:
        with conn.transaction():
            conn.execute(migration.sql)
            conn.execute(
                "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                (migration.version, migration.name, migration.checksum),
            )
    except psycopg.Error as exc:
        where = _line_of(migration.sql, exc)
        detail = first_line(exc.diag.message_primary or str(exc))
        raise MigrationError(
            f"migration {migration.filename} failed{where}: {detail}; nothing from it was applied, "
            f"the schema stays at version {current:04d}"
        ) from None


def _line_of(sql: str, exc: psycopg.Error) -> str:
    """' at line N' when the server reported where in the file the error is."""
    position = getattr(exc.diag, "statement_position", None)
    if not position:
        return ""
    return f" at line {sql[: int(position)].count(chr(10)) + 1}"

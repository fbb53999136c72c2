"""The one handle commands use to reach the data: a checked, migrated database."""

from __future__ import annotations

import logging
from typing import Any

from persona.config import Settings
from persona.storage.db import Database, check_pgvector, connect, pgvector_versions, resolve_database, server_version
from persona.storage.migrate import Migration, MigrationStatus, upgrade
from persona.storage.migrate import status as migration_status

log = logging.getLogger(__name__)


class Store:
    """A database that has been checked for pgvector (and, normally, migrated).

    `connect()` opens a new connection (about 10 ms with pgvector's types registered);
    a long-running process (the bot) uses `pooled()`, whose transactional connections
    come from a psycopg pool (about 0.5 ms), checked before each use so a server that
    restarted is reconnected to instead of failing the next reply. Both are used as
    `with store.connect() as conn:` — committed at the end, rolled back on an error.
    """

    def __init__(self, database: Database, pool: Any = None) -> None:
        self.database = database
        self._pool = pool

    def connect(self, *, autocommit: bool = False) -> Any:  # psycopg.Connection, or a pool's context manager of one
        if self._pool is not None and not autocommit:
            return self._pool.connection()
        return connect(self.database, autocommit=autocommit)

    def pooled(self, max_size: int = 8) -> Store:
        """The same database through a connection pool (close it with `close()`)."""
        from psycopg_pool import ConnectionPool

        from persona.storage.db import CONNECT_TIMEOUT_S, register_vector

        pool = ConnectionPool(self.database.url, min_size=1, max_size=max_size, configure=register_vector, check=ConnectionPool.check_connection,
                              kwargs={"connect_timeout": CONNECT_TIMEOUT_S}, timeout=CONNECT_TIMEOUT_S * 2, name="persona", open=True)
        return Store(self.database, pool)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()

    def upgrade(self) -> list[Migration]:
        with connect(self.database, autocommit=True, vector=False) as conn:
            return upgrade(conn)

    def migration_status(self) -> MigrationStatus:
        with connect(self.database, autocommit=True, vector=False) as conn:
            return migration_status(conn)

    def server_info(self) -> dict[str, Any]:
        with connect(self.database, autocommit=True, vector=False) as conn:
            installed, available = pgvector_versions(conn)
            return {"postgres_version": server_version(conn), "pgvector_installed": installed, "pgvector_available": available}


def open_store(settings: Settings, *, migrate: bool = True) -> Store:
    """Resolve the server, check pgvector, and apply pending migrations unless told not to."""
    database = resolve_database(settings)
    with connect(database, autocommit=True, vector=False) as conn:
        check_pgvector(conn, database)
        if migrate:
            applied = upgrade(conn)
            if applied:
                log.info("applied %d migration(s): %s", len(applied), ", ".join(m.filename for m in applied))
    return Store(database)

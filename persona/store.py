"""The one handle commands use to reach the data: a checked, migrated database."""

from __future__ import annotations

import logging
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from persona import migrate
from persona.config import Settings
from persona.db import Database, check_pgvector, connect, make_pool, pgvector_versions, resolve_database, server_version
from persona.stats import collect_stats

log = logging.getLogger(__name__)


class Store:
    """A database that has been checked for pgvector (and, normally, migrated)."""

    def __init__(self, database: Database) -> None:
        self.database = database

    def connect(self, *, autocommit: bool = False) -> psycopg.Connection:
        return connect(self.database, autocommit=autocommit)

    def pool(self, *, min_size: int = 1, max_size: int = 4) -> ConnectionPool:
        return make_pool(self.database, min_size=min_size, max_size=max_size)

    def upgrade(self) -> list[migrate.Migration]:
        with connect(self.database, autocommit=True, vector=False) as conn:
            return migrate.upgrade(conn)

    def migration_status(self) -> migrate.MigrationStatus:
        with connect(self.database, autocommit=True, vector=False) as conn:
            return migrate.status(conn)

    def server_info(self) -> dict[str, Any]:
        with connect(self.database, autocommit=True, vector=False) as conn:
            installed, available = pgvector_versions(conn)
            return {"postgres_version": server_version(conn), "pgvector_installed": installed, "pgvector_available": available}

    def stats(self) -> dict[str, Any]:
        with self.connect() as conn:
            return collect_stats(conn)


def open_store(settings: Settings, *, migrate: bool = True) -> Store:
    """Resolve the server, check pgvector, and apply pending migrations unless told not to."""
    database = resolve_database(settings)
    with connect(database, autocommit=True, vector=False) as conn:
        check_pgvector(conn, database)
        if migrate:
            from persona.migrate import upgrade

            applied = upgrade(conn)
            if applied:
                log.info("applied %d migration(s): %s", len(applied), ", ".join(m.filename for m in applied))
    return Store(database)

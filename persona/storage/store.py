"""The one handle commands use to reach the data: a checked, migrated database."""

from __future__ import annotations

import logging
from typing import Any

import psycopg

from persona.config import Settings
from persona.storage.db import Database, check_pgvector, connect, pgvector_versions, resolve_database, server_version
from persona.storage.migrate import Migration, MigrationStatus, upgrade
from persona.storage.migrate import status as migration_status

log = logging.getLogger(__name__)


class Store:
    """A database that has been checked for pgvector (and, normally, migrated)."""

    def __init__(self, database: Database) -> None:
        self.database = database

    def connect(self, *, autocommit: bool = False) -> psycopg.Connection:
        return connect(self.database, autocommit=autocommit)

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

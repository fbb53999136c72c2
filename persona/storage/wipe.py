"""Emptying the whole database (`persona forget everything` on a separate server).

The tables are read from the catalogue rather than listed here: a table a later
migration adds is emptied too, without this module having to learn of it. This is a
schema-level operation, not a table group's, so it lives beside the migrations'
runner; `schema_migrations` stays, so the emptied database is still migrated.
"""

from __future__ import annotations

import psycopg
from psycopg import sql


def erase_all(conn: psycopg.Connection) -> int:
    """Delete every row of every persona table in the caller's transaction; return how many there were."""
    tables = [r[0] for r in conn.execute(
        "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND tablename <> 'schema_migrations' ORDER BY tablename")]
    if not tables:
        return 0
    rows = sum(conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(t))).fetchone()[0] for t in tables)
    # TRUNCATE gives each table new, empty files: the old pages are unlinked, not left to a vacuum.
    conn.execute(sql.SQL("TRUNCATE {} RESTART IDENTITY CASCADE").format(sql.SQL(", ").join(sql.Identifier(t) for t in tables)))
    return rows

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


# Every persona object in the current schema, dropped before a restore recreates them
# (persona/backup.py): tables with their indexes and identity sequences, free sequences,
# views, functions. Extension members (pgvector's type and functions) stay: the restore's
# CREATE EXTENSION IF NOT EXISTS then needs no privilege to create it again.
DROP_EVERYTHING = """
DO $drop$
DECLARE
    found record;
BEGIN
    FOR found IN
        SELECT c.oid::regclass AS name, c.relkind
        FROM pg_class c
        WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
          AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype IN ('e', 'a', 'i'))
    LOOP
        EXECUTE format('DROP %s IF EXISTS %s CASCADE',
                       CASE found.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'S' THEN 'SEQUENCE'
                                          WHEN 'f' THEN 'FOREIGN TABLE' ELSE 'TABLE' END, found.name);
    END LOOP;
    FOR found IN
        SELECT p.oid::regprocedure AS name, p.prokind
        FROM pg_proc p
        WHERE p.pronamespace = current_schema()::regnamespace
          AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')
    LOOP
        EXECUTE format('DROP %s IF EXISTS %s CASCADE', CASE found.prokind WHEN 'a' THEN 'AGGREGATE' ELSE 'ROUTINE' END, found.name);
    END LOOP;
END
$drop$;
"""

"""A cheap "has anything changed?" mark for tables whose aggregates are costly.

Counting a million messages or grouping them by month is a scan of the table each time.
PostgreSQL already counts every row inserted, updated and deleted per table
(`pg_stat_user_tables`); reading those counters is one small catalog query. A result
computed under one mark stays right until the mark moves. The counters are updated
when a writing transaction ends (within about a second), are not transactional, and
move on `pg_stat_reset()` too — all of which only ever make a cache recompute.
"""

from __future__ import annotations

import psycopg

Mark = tuple[tuple[str, int, int, int], ...]


def change_mark(conn: psycopg.Connection, tables: tuple[str, ...]) -> Mark:
    rows = conn.execute(
        "SELECT relname, n_tup_ins, n_tup_upd, n_tup_del FROM pg_stat_user_tables WHERE schemaname = current_schema() "
        "AND relname = ANY(%s) ORDER BY relname",
        (list(tables),),
    ).fetchall()
    return tuple((r[0], int(r[1]), int(r[2]), int(r[3])) for r in rows)

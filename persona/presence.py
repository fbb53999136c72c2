"""Whether the bot (`persona run`) is up, as another process (the dashboard) sees it.

No table and no heartbeat: the bot holds a PostgreSQL advisory lock on a connection of
its own for as long as it runs, and the database lets go of it the moment that process
dies, however it dies. `pg_locks` then tells anyone who holds it and since when.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg

BOT_LOCK = (0x70657273, 0x626F74)  # ("pers", "bot"): the two-key form, shown in pg_locks as classid/objid


@dataclass(frozen=True)
class BotPresence:
    pid: int  # the database backend serving the bot's connection
    since: datetime


def announce(conn: psycopg.Connection) -> bool:
    """Hold the bot's lock on `conn` (an autocommit connection kept open while the bot runs);
    False when another bot process already holds it."""
    return bool(conn.execute("SELECT pg_try_advisory_lock(%s, %s)", BOT_LOCK).fetchone()[0])


def bot_presence(conn: psycopg.Connection) -> BotPresence | None:
    row = conn.execute(
        "SELECT a.pid, a.backend_start FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
        "WHERE l.locktype = 'advisory' AND l.classid = %s::bigint::oid AND l.objid = %s::bigint::oid AND l.objsubid = 2 AND l.granted "
        "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        BOT_LOCK,
    ).fetchone()
    return BotPresence(int(row[0]), row[1]) if row else None

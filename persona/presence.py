"""Whether the bot (`persona run`) is connected to Discord, as another process (the
dashboard) sees it.

No table and no heartbeat: while its gateway session is up the bot holds a PostgreSQL
advisory lock on a connection of its own (taken on `on_ready`/`on_resumed`, given back
on `on_disconnect`), and the database lets go of it the moment that process dies,
however it dies. `pg_locks` then tells anyone whether it is held and since when.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

import psycopg

log = logging.getLogger(__name__)

BOT_LOCK = (0x70657273, 0x626F74)  # ("pers", "bot"): the two-key form, shown in pg_locks as classid/objid


@dataclass(frozen=True)
class BotPresence:
    pid: int  # the database backend serving the bot's connection
    since: datetime  # when that connection was opened: the bot process's start


def announce(conn: psycopg.Connection) -> bool:
    """Hold the bot's lock on `conn` (an autocommit connection kept open while the bot runs);
    False when another bot process already holds it."""
    return bool(conn.execute("SELECT pg_try_advisory_lock(%s, %s)", BOT_LOCK).fetchone()[0])


class Announcer:
    """The bot's side: hold the lock while connected (advisory locks stack per session, so
    it is taken at most once and given back once)."""

    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn
        self.held = False

    def connected(self) -> None:
        if not self.held:
            self.held = announce(self.conn)
            if not self.held:
                log.warning("another `persona run` is already connected on this database")

    def disconnected(self) -> None:
        if self.held:
            self.conn.execute("SELECT pg_advisory_unlock(%s, %s)", BOT_LOCK)
            self.held = False


def bot_presence(conn: psycopg.Connection) -> BotPresence | None:
    row = conn.execute(
        "SELECT a.pid, a.backend_start FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
        "WHERE l.locktype = 'advisory' AND l.classid = %s::bigint::oid AND l.objid = %s::bigint::oid AND l.objsubid = 2 AND l.granted "
        "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        BOT_LOCK,
    ).fetchone()
    return BotPresence(int(row[0]), row[1]) if row else None

"""Bookkeeping of how history arrived: import runs and the backfill resume points.

Each import run is recorded on its own autocommit connection, so a failed import is
still on record although none of its data was committed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

# Advisory-lock class of import runs: a running import holds (IMPORT_LOCK, run id) on its
# own connection for as long as it lives, so a run whose lock is free has died.
IMPORT_LOCK = 0x70657273


def start_import(conn: psycopg.Connection, source: str, path: str) -> int:
    """Record a new run and hold its liveness lock on `conn` (keep `conn` open until the
    run ends). One statement: no other session sees the row before the lock is held."""
    row = conn.execute(
        "WITH run AS (INSERT INTO import_runs (source, path) VALUES (%s, %s) RETURNING id) "
        "SELECT id, pg_advisory_lock(%s, (id %% 2147483647)::int) FROM run",
        (source, path, IMPORT_LOCK),
    ).fetchone()
    return int(row[0])


def settle_interrupted_imports(conn: psycopg.Connection) -> list[int]:
    """Runs left `running` by a process that was killed: marked `failed` (nothing of theirs
    was committed) or `succeeded` (they committed, then died before saying so)."""
    settled = []
    for (run_id,) in conn.execute("SELECT id FROM import_runs WHERE status = 'running' ORDER BY id").fetchall():
        key = (IMPORT_LOCK, run_id % 2147483647)
        if not conn.execute("SELECT pg_try_advisory_lock(%s, %s::int)", key).fetchone()[0]:
            continue  # still running
        try:
            committed = conn.execute("SELECT EXISTS (SELECT 1 FROM messages WHERE import_run_id = %s)", (run_id,)).fetchone()[0]
            conn.execute(
                "UPDATE import_runs SET status = %s, finished_at = now(), error = %s WHERE id = %s AND status = 'running'",
                ("succeeded" if committed else "failed",
                 "the import process ended after committing, before recording it" if committed
                 else "interrupted: the import process was killed; nothing was stored",
                 run_id),
            )
            settled.append(run_id)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s, %s::int)", key)
    return settled


def end_import(conn: psycopg.Connection, run_id: int, status: str, *, counts: dict[str, Any] | None = None, error: str | None = None) -> None:
    conn.execute(
        "UPDATE import_runs SET status = %s, finished_at = now(), counts = %s, error = %s WHERE id = %s",
        (status, json.dumps(counts or {}), error, run_id),
    )


@dataclass(frozen=True)
class ImportRun:
    id: int
    source: str
    path: str
    status: str
    started_at: datetime
    finished_at: datetime | None
    counts: dict[str, Any]
    error: str | None


def recent_imports(conn: psycopg.Connection, limit: int = 10) -> list[ImportRun]:
    rows = conn.execute("SELECT id, source, path, status, started_at, finished_at, counts, error FROM import_runs ORDER BY id DESC LIMIT %s",
                        (limit,)).fetchall()
    return [ImportRun(*r) for r in rows]


def import_count(conn: psycopg.Connection) -> int:
    return int(conn.execute("SELECT count(*) FROM import_runs").fetchone()[0])


def import_outcomes(conn: psycopg.Connection) -> dict[tuple[str, str], int]:
    """Import runs per (source, status)."""
    return {(source, status): int(n) for source, status, n in
            conn.execute("SELECT source, status, count(*) FROM import_runs GROUP BY source, status").fetchall()}


def backfill_resume_point(conn: psycopg.Connection, channel_id: int) -> int | None:
    """The newest message id `persona backfill` stored for this channel, if any."""
    row = conn.execute("SELECT last_message_id FROM backfill_state WHERE channel_id = %s", (channel_id,)).fetchone()
    return int(row[0]) if row else None


def record_backfill_page(conn: psycopg.Connection, channel_id: int, last_message_id: int, kept: int) -> None:
    conn.execute(
        "INSERT INTO backfill_state (channel_id, last_message_id, messages) VALUES (%s, %s, %s) ON CONFLICT (channel_id) DO UPDATE "
        "SET last_message_id = greatest(backfill_state.last_message_id, EXCLUDED.last_message_id), "
        "messages = backfill_state.messages + EXCLUDED.messages, updated_at = now()",
        (channel_id, last_message_id, kept),
    )

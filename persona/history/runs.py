"""Bookkeeping of how history arrived: import runs and the backfill resume points.

Each import run is recorded on its own autocommit connection, so a failed import is
still on record although none of its data was committed.
"""

from __future__ import annotations

import json
from typing import Any

import psycopg


def start_import(conn: psycopg.Connection, source: str, path: str) -> int:
    row = conn.execute("INSERT INTO import_runs (source, path) VALUES (%s, %s) RETURNING id", (source, path)).fetchone()
    return int(row[0])


def end_import(conn: psycopg.Connection, run_id: int, status: str, *, counts: dict[str, Any] | None = None, error: str | None = None) -> None:
    conn.execute(
        "UPDATE import_runs SET status = %s, finished_at = now(), counts = %s, error = %s WHERE id = %s",
        (status, json.dumps(counts or {}), error, run_id),
    )


def import_count(conn: psycopg.Connection) -> int:
    return int(conn.execute("SELECT count(*) FROM import_runs").fetchone()[0])


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

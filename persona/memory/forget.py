"""Deleting memories: whatever was built from forgotten or replaced messages goes.

Each function returns the ids of the memories it deleted, so forgetting can also reach
the replies that recalled them (persona/privacy/forget.py).
"""

from __future__ import annotations

import psycopg

from persona.history import messages as history


def forget_built_from(conn: psycopg.Connection, message_ids: list[int]) -> list[int]:
    """Delete every memory built from any of `message_ids`; their other messages are
    set back to un-chunked so the next build re-chunks them without the forgotten ones."""
    if not message_ids:
        return []
    deleted = conn.execute("DELETE FROM memories WHERE message_ids && %s::bigint[] RETURNING id, message_ids", (message_ids,)).fetchall()
    history.mark_unchunked(conn, sorted({i for _, ids in deleted for i in ids}))
    return [memory_id for memory_id, _ in deleted]


def forget_rechunked(conn: psycopg.Connection, import_run_id: int) -> int:
    """After an import replaced messages with richer records, drop the memories built
    from the old text (the new text is chunked on the next build)."""
    return len(forget_built_from(conn, history.chunked_in_run(conn, import_run_id)))


def forget_with_author(conn: psycopg.Connection, person_id: int, scope: str | None = None) -> list[int]:
    """Memories in which `person_id` speaks (or, with `scope`, any memory of that scope)."""
    rows = conn.execute("DELETE FROM memories WHERE %s = ANY(author_ids) OR scope = %s RETURNING id", (person_id, scope)).fetchall()
    return [r[0] for r in rows]


def forget_channel(conn: psycopg.Connection, channel_id: int) -> list[int]:
    return [r[0] for r in conn.execute("DELETE FROM memories WHERE channel_id = %s RETURNING id", (channel_id,)).fetchall()]


def forget_ids(conn: psycopg.Connection, memory_ids: list[int]) -> list[int]:
    return [r[0] for r in conn.execute("DELETE FROM memories WHERE id = ANY(%s) RETURNING id", (memory_ids,)).fetchall()]

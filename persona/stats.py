"""Counts of what persona holds, for `persona stats`."""

from __future__ import annotations

from typing import Any

import psycopg


def collect_stats(conn: psycopg.Connection) -> dict[str, Any]:
    """One dict of counts; every key is present even on an empty database."""
    one = lambda query: conn.execute(query).fetchone()[0]  # noqa: E731
    channels_by_kind = dict(conn.execute("SELECT kind, count(*) FROM channels GROUP BY kind ORDER BY kind").fetchall())
    messages_by_source = dict(
        conn.execute("SELECT source, count(*) FROM messages GROUP BY source ORDER BY source").fetchall()
    )
    adapters = dict(conn.execute("SELECT status, count(*) FROM adapter_versions GROUP BY status").fetchall())
    active = conn.execute("SELECT id FROM adapter_versions WHERE status = 'active'").fetchone()
    return {
        "messages": one("SELECT count(*) FROM messages"),
        "owner_messages": one(
            "SELECT count(*) FROM messages m JOIN people p ON p.id = m.author_id WHERE p.is_owner"
        ),
        "messages_by_source": messages_by_source,
        "people": one("SELECT count(*) FROM people"),
        "opted_out_people": one("SELECT count(*) FROM people WHERE opted_out_at IS NOT NULL"),
        "channels": sum(channels_by_kind.values()),
        "channels_by_kind": channels_by_kind,
        "memories": one("SELECT count(*) FROM memories"),
        "memories_embedded": one("SELECT count(*) FROM memories WHERE embedding IS NOT NULL"),
        "replies": one("SELECT count(*) FROM replies"),
        "feedback": one("SELECT count(*) FROM feedback"),
        "adapters": sum(adapters.values()),
        "adapters_by_status": adapters,
        "active_adapter": active[0] if active else None,
        "import_runs": one("SELECT count(*) FROM import_runs"),
    }

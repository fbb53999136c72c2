"""Who the owner is, as the database knows it."""

from __future__ import annotations

from dataclasses import dataclass

import psycopg


@dataclass(frozen=True)
class Owner:
    id: int
    name: str  # display name if known, else user name; may be empty


def stored_owner(conn: psycopg.Connection) -> Owner | None:
    """The person an import marked as the owner, if any."""
    row = conn.execute("SELECT id, coalesce(nullif(display_name, ''), name) FROM people WHERE is_owner").fetchone()
    return Owner(int(row[0]), row[1] or "") if row else None

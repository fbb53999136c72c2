"""People: who the owner is, names, and who opted out (the `people` table's one home)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg


@dataclass(frozen=True)
class Owner:
    id: int
    name: str  # display name if known, else user name; may be empty


def stored_owner(conn: psycopg.Connection) -> Owner | None:
    """The person an import marked as the owner, if any."""
    row = conn.execute("SELECT id, coalesce(nullif(display_name, ''), name) FROM people WHERE is_owner").fetchone()
    return Owner(int(row[0]), row[1] or "") if row else None


def resolve_owner(conn: psycopg.Connection, configured_id: int | None, configured_name: str = "") -> Owner | None:
    """PERSONA_OWNER_ID / PERSONA_OWNER_NAME when set, else what the imports stored.

    The one place that decides who "the owner" is for replies, training and the CLI."""
    stored = stored_owner(conn)
    owner_id = configured_id if configured_id is not None else (stored.id if stored else None)
    if owner_id is None:
        return None
    name = configured_name or (stored.name if stored and stored.id == owner_id else name_of(conn, owner_id))
    return Owner(owner_id, name or "")


def name_of(conn: psycopg.Connection, person_id: int) -> str:
    row = conn.execute("SELECT coalesce(nullif(display_name, ''), name) FROM people WHERE id = %s", (person_id,)).fetchone()
    return (row[0] or "") if row else ""


def names_of(conn: psycopg.Connection, person_id: int) -> tuple[str, ...]:
    """Every name a person has in the imported data (user name, display name)."""
    row = conn.execute("SELECT name, display_name FROM people WHERE id = %s", (person_id,)).fetchone()
    return tuple(dict.fromkeys(n for n in (row or ()) if n))


def known_names(conn: psycopg.Connection) -> dict[int, str]:
    """id → display name (or user name) of everyone with a name, for rendering <@id> mentions."""
    return dict(conn.execute("SELECT id, coalesce(display_name, name) FROM people WHERE name <> ''").fetchall())


def is_opted_out(conn: psycopg.Connection, person_id: int) -> bool:
    row = conn.execute("SELECT opted_out_at IS NOT NULL FROM people WHERE id = %s", (person_id,)).fetchone()
    return bool(row and row[0])


def opted_out_among(conn: psycopg.Connection, person_ids: list[int]) -> set[int]:
    """Which of these people opted out (one query for a whole conversation's speakers)."""
    if not person_ids:
        return set()
    return {r[0] for r in conn.execute("SELECT id FROM people WHERE id = ANY(%s) AND opted_out_at IS NOT NULL", (person_ids,)).fetchall()}


def set_opted_out(conn: psycopg.Connection, person_id: int, name: str = "") -> None:
    """Mark a person opted out (kept from the first request on; new messages are refused)."""
    conn.execute(
        "INSERT INTO people (id, name, opted_out_at) VALUES (%s, %s, now()) "
        "ON CONFLICT (id) DO UPDATE SET opted_out_at = coalesce(people.opted_out_at, now())",
        (person_id, name),
    )


def clear_opted_out(conn: psycopg.Connection, person_id: int) -> bool:
    """Keep this person's new messages again; False if they were not opted out."""
    return conn.execute("UPDATE people SET opted_out_at = NULL WHERE id = %s AND opted_out_at IS NOT NULL", (person_id,)).rowcount > 0


@dataclass(frozen=True)
class Person:
    id: int
    name: str
    is_owner: bool
    is_bot: bool
    opted_out_at: datetime | None


def listed(conn: psycopg.Connection, *, limit: int = 500) -> list[Person]:
    """People persona knows: the owner first, opted-out people next, then by name."""
    rows = conn.execute(
        "SELECT id, coalesce(nullif(display_name, ''), name), is_owner, is_bot, opted_out_at FROM people "
        "ORDER BY is_owner DESC, opted_out_at IS NULL, lower(coalesce(nullif(display_name, ''), name)), id LIMIT %s",
        (limit,),
    ).fetchall()
    return [Person(int(r[0]), r[1] or "", r[2], r[3], r[4]) for r in rows]


def counts(conn: psycopg.Connection) -> dict[str, int]:
    row = conn.execute("SELECT count(*), count(*) FILTER (WHERE opted_out_at IS NOT NULL) FROM people").fetchone()
    return {"people": int(row[0]), "opted_out_people": int(row[1])}

"""Telling people that the persona's replies come from an AI (PERSONA_DISCLOSURE): the
`disclosures` table's one home.

`first`: the first reply to each person in each channel carries the line; `always`:
every reply; `off`: none. The line is Discord subtext (`-# …`) above the reply, so it
shows from the first streamed word; it is never part of the reply's logged text (what
training, feedback and the consistency check read). A person is marked told when the
line is claimed, atomically, so two quick mentions do not both skip it; a reply that
then fails gives the claim back, so nobody is marked told who was not.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import psycopg

SUBTEXT = "-# "


def line(template: str, owner_name: str) -> str:
    text = template.replace("{owner}", owner_name or "its owner").replace("\n", " ").strip()
    return f"{SUBTEXT}{text}"


def without_line(text: str) -> str:
    """A sent reply's text without the line above it (what the persona itself said)."""
    lines = text.split("\n")
    while lines and lines[0].startswith(SUBTEXT):
        lines.pop(0)
    return "\n".join(lines).strip()


def carries_line(mode: str, claim_first: Callable[[], bool]) -> bool:
    """Whether this reply carries the line; `claim_first` (the database) is asked only under `first`."""
    return mode == "always" or (mode == "first" and claim_first())


def claim_first(conn: psycopg.Connection, person_id: int, channel_id: int) -> bool:
    """True when this person was not yet told in this channel, marking them told."""
    row = conn.execute("INSERT INTO disclosures (person_id, channel_id) VALUES (%s, %s) ON CONFLICT DO NOTHING RETURNING 1",
                       (person_id, channel_id)).fetchone()
    return row is not None


def give_back(conn: psycopg.Connection, person_id: int, channel_id: int) -> None:
    """The reply that was to carry the line was not sent: the next one says it."""
    conn.execute("DELETE FROM disclosures WHERE person_id = %s AND channel_id = %s", (person_id, channel_id))


def forget_person(conn: psycopg.Connection, person_id: int) -> int:
    return conn.execute("DELETE FROM disclosures WHERE person_id = %s", (person_id,)).rowcount


def forget_channel(conn: psycopg.Connection, channel_id: int) -> int:
    return conn.execute("DELETE FROM disclosures WHERE channel_id = %s", (channel_id,)).rowcount


def forget_range(conn: psycopg.Connection, start: datetime, end: datetime) -> int:
    return conn.execute("DELETE FROM disclosures WHERE told_at >= %s AND told_at < %s", (start, end)).rowcount

"""Opt-out and forget: deletions that really delete.

Every function deletes the messages, the memories built from them (other messages in
those memories are set back to un-chunked, so the next build re-chunks them without
what was forgotten), and the replies and feedback that quote them. Callers own the
transaction: a failure deletes nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

import psycopg

from persona.memory import forget_memories_of
from persona.scopes import dm_scope

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Forgotten:
    messages: int
    memories: int
    replies: int = 0
    feedback: int = 0

    def describe(self) -> str:
        return f"{self.messages:,} messages, {self.memories:,} memories, {self.replies:,} replies and {self.feedback:,} ratings deleted"


def _delete_messages(conn: psycopg.Connection, where: str, params: tuple) -> tuple[int, int]:
    ids = [r[0] for r in conn.execute(f"DELETE FROM messages WHERE {where} RETURNING id", params).fetchall()]  # noqa: S608 - fixed clauses
    return len(ids), forget_memories_of(conn, ids)


def opt_out(conn: psycopg.Connection, person_id: int, name: str = "") -> Forgotten:
    """The person's messages, the memories with them, their replies and ratings go; new ones are refused."""
    conn.execute(
        "INSERT INTO people (id, name, opted_out_at) VALUES (%s, %s, now()) "
        "ON CONFLICT (id) DO UPDATE SET opted_out_at = coalesce(people.opted_out_at, now())",
        (person_id, name),
    )
    messages, memories = _delete_messages(conn, "author_id = %s", (person_id,))
    memories += conn.execute("DELETE FROM memories WHERE %s = ANY(author_ids)", (person_id,)).rowcount
    replies = conn.execute("DELETE FROM replies WHERE asker_id = %s", (person_id,)).rowcount
    feedback = conn.execute("DELETE FROM feedback WHERE rater_id = %s", (person_id,)).rowcount
    log.info("opted out %s: %d messages, %d memories", person_id, messages, memories)
    return Forgotten(messages, memories, replies, feedback)


def opt_in(conn: psycopg.Connection, person_id: int) -> bool:
    """Keep this person's new messages again (what was deleted stays deleted)."""
    return conn.execute("UPDATE people SET opted_out_at = NULL WHERE id = %s AND opted_out_at IS NOT NULL", (person_id,)).rowcount > 0


def forget_person(conn: psycopg.Connection, person_id: int) -> Forgotten:
    """Everything they wrote, and the whole DM conversation with them (owner's side too)."""
    scope = dm_scope(person_id)
    messages, memories = _delete_messages(conn, "author_id = %s OR scope = %s", (person_id, scope))
    memories += conn.execute("DELETE FROM memories WHERE scope = %s OR %s = ANY(author_ids)", (scope, person_id)).rowcount
    replies = conn.execute("DELETE FROM replies WHERE asker_id = %s OR scope = %s", (person_id, scope)).rowcount
    feedback = conn.execute("DELETE FROM feedback WHERE rater_id = %s", (person_id,)).rowcount
    return Forgotten(messages, memories, replies, feedback)


def forget_channel(conn: psycopg.Connection, channel_id: int) -> Forgotten:
    messages, memories = _delete_messages(conn, "channel_id = %s", (channel_id,))
    memories += conn.execute("DELETE FROM memories WHERE channel_id = %s", (channel_id,)).rowcount
    replies = conn.execute("DELETE FROM replies WHERE channel_id = %s", (channel_id,)).rowcount
    return Forgotten(messages, memories, replies)


def forget_range(conn: psycopg.Connection, start: datetime, end: datetime) -> Forgotten:
    """Messages written in [start, end), and memories that contained any of them."""
    messages, memories = _delete_messages(conn, "created_at >= %s AND created_at < %s", (start, end))
    replies = conn.execute("DELETE FROM replies WHERE created_at >= %s AND created_at < %s", (start, end)).rowcount
    return Forgotten(messages, memories, replies)

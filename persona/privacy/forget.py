"""Opt-out and forget: deletions that really delete.

Every function deletes the messages, the memories built from them (other messages in
those memories are set back to un-chunked, so the next build re-chunks them without
what was forgotten), and the replies and ratings that involve them. Each table group's
own module does its part; callers own the transaction, so a failure deletes nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

import psycopg

from persona import replies
from persona.history import messages, people
from persona.memory import forget as memories
from persona.privacy.scopes import dm_scope

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Forgotten:
    messages: int
    memories: int
    replies: int = 0
    feedback: int = 0

    def describe(self) -> str:
        return f"{self.messages:,} messages, {self.memories:,} memories, {self.replies:,} replies and {self.feedback:,} ratings deleted"


def opt_out(conn: psycopg.Connection, person_id: int, name: str = "") -> Forgotten:
    """The person's messages, the memories with them, their replies and ratings go; new ones are refused."""
    people.set_opted_out(conn, person_id, name)
    deleted = messages.delete_by_author(conn, person_id)
    forgotten_memories = memories.forget_built_from(conn, deleted) + memories.forget_with_author(conn, person_id)
    reply_count, feedback = replies.forget_asked_by(conn, person_id)
    log.info("opted out %s: %d messages, %d memories", person_id, len(deleted), forgotten_memories)
    return Forgotten(len(deleted), forgotten_memories, reply_count, feedback)


def opt_in(conn: psycopg.Connection, person_id: int) -> bool:
    """Keep this person's new messages again (what was deleted stays deleted)."""
    return people.clear_opted_out(conn, person_id)


def forget_person(conn: psycopg.Connection, person_id: int) -> Forgotten:
    """Everything they wrote, and the whole DM conversation with them (owner's side too)."""
    scope = dm_scope(person_id)
    deleted = messages.delete_with_person(conn, person_id, scope)
    forgotten_memories = memories.forget_built_from(conn, deleted) + memories.forget_with_author(conn, person_id, scope)
    reply_count, feedback = replies.forget_asked_by(conn, person_id, scope)
    return Forgotten(len(deleted), forgotten_memories, reply_count, feedback)


def forget_channel(conn: psycopg.Connection, channel_id: int) -> Forgotten:
    deleted = messages.delete_channel(conn, channel_id)
    forgotten_memories = memories.forget_built_from(conn, deleted) + memories.forget_channel(conn, channel_id)
    return Forgotten(len(deleted), forgotten_memories, replies.forget_in_channel(conn, channel_id))


def forget_range(conn: psycopg.Connection, start: datetime, end: datetime) -> Forgotten:
    """Messages written in [start, end), and memories that contained any of them."""
    deleted = messages.delete_range(conn, start, end)
    return Forgotten(len(deleted), memories.forget_built_from(conn, deleted), replies.forget_between(conn, start, end))

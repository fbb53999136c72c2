"""Opt-out and forget: deletions that really delete.

Every function deletes the messages, the memories built from them (other messages in
those memories are set back to un-chunked, so the next build re-chunks them without
what was forgotten), the replies that involve them (to the person, quoting them, or
having recalled a forgotten memory), the ratings of those replies and the record of who
was told the persona is an AI (persona/disclosure.py). Then it reaches
the adapters: every version trained on a forgotten message or rating is marked
tainted, the files beside the versions are marked for a rewrite
(`persona.adapter_files.purge_pending`, run once the transaction commits), and a
tainted active adapter is replaced by the newest clean version when there is one.
Topics are clustered again without the forgotten memories; a forgotten or opted-out
person's `persona serve` keys are deleted. Retraining without the
forgotten data is the caller's next step. Each table group's own module does its part;
callers own the transaction, so a failure deletes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import psycopg

from persona import adapters, api_keys, disclosure, drafts, replies, send_modes
from persona.adapter_files import Purged, purge_pending
from persona.history import messages, people
from persona.memory import forget as memories
from persona.memory import topics
from persona.privacy.scopes import dm_scope

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Forgotten:
    messages: int
    memories: int
    replies: int = 0
    feedback: int = 0
    drafts: int = 0  # replies held for the owner (persona/drafts.py)
    tainted: list[int] = field(default_factory=list)  # adapter versions trained on what was forgotten
    rolled_back_to: int | None = None  # the clean version that now serves instead of a tainted one
    tainted_active: int | None = None  # a tainted version still serving (no clean one to go back to)

    def describe(self) -> str:
        held = f", {self.drafts:,} drafts" if self.drafts else ""
        line = f"{self.messages:,} messages, {self.memories:,} memories, {self.replies:,} replies{held} and {self.feedback:,} ratings deleted"
        if self.tainted:
            line += "; adapters trained on it: " + ", ".join(f"v{v}" for v in self.tainted)
        if self.rolled_back_to is not None:
            line += f"; v{self.rolled_back_to} serves meanwhile"
        elif self.tainted_active is not None:
            line += f"; v{self.tainted_active} still serves until it is retrained"
        return line

    @property
    def needs_retrain(self) -> bool:
        """The adapter that served was trained on it: a clean one must be trained (from the rolled-back one, if any)."""
        return self.rolled_back_to is not None or self.tainted_active is not None


def carry_out(conn: psycopg.Connection, action: Callable[[psycopg.Connection], Forgotten], datasets_dir: Path | None) -> tuple[Forgotten, Purged]:
    """A forget or opt-out as every caller runs it (the CLI, the bot): `action` in one
    transaction, then, once that committed, the files beside the adapters cleaned."""
    with conn.transaction():
        forgotten = action(conn)
    return forgotten, purge_pending(conn, datasets_dir)


def preview(conn: psycopg.Connection, action: Callable[[psycopg.Connection], Forgotten]) -> Forgotten:
    """What `action` would delete, counted by running it in a transaction that is rolled
    back: the same code as the real thing, so the preview cannot drift from it."""
    with conn.transaction():
        forgotten = action(conn)
        raise psycopg.Rollback()  # ends this transaction block, rolled back, without an error
    return forgotten


def opt_out(conn: psycopg.Connection, person_id: int, name: str = "") -> Forgotten:
    """The person's messages, the memories with them, their replies and ratings go; new ones are refused."""
    people.set_opted_out(conn, person_id, name)
    deleted = messages.delete_by_author(conn, person_id)
    forgotten_memories = memories.forget_built_from(conn, deleted) + memories.forget_with_author(conn, person_id)
    held = drafts.forget_involving(conn, person_id=person_id, memory_ids=forgotten_memories)
    gone = replies.forget_involving(conn, person_id=person_id, memory_ids=forgotten_memories)
    api_keys.delete_for_person(conn, person_id)
    disclosure.forget_person(conn, person_id)
    log.info("opted out %s: %d messages, %d memories", person_id, len(deleted), len(forgotten_memories))
    return _reach_adapters(conn, deleted, forgotten_memories, gone, f"user {person_id} opted out", held)


def opt_in(conn: psycopg.Connection, person_id: int) -> bool:
    """Keep this person's new messages again (what was deleted stays deleted)."""
    return people.clear_opted_out(conn, person_id)


def forget_person(conn: psycopg.Connection, person_id: int) -> Forgotten:
    """Everything they wrote, and the whole DM conversation with them (owner's side too)."""
    scope = dm_scope(person_id)
    deleted = messages.delete_with_person(conn, person_id, scope)
    forgotten_memories = memories.forget_built_from(conn, deleted) + memories.forget_with_author(conn, person_id, scope)
    held = drafts.forget_involving(conn, person_id=person_id, scope=scope, memory_ids=forgotten_memories)
    gone = replies.forget_involving(conn, person_id=person_id, scope=scope, memory_ids=forgotten_memories)
    api_keys.delete_for_person(conn, person_id)  # `persona serve` keys made for them
    disclosure.forget_person(conn, person_id)
    send_modes.forget_person(conn, person_id)
    return _reach_adapters(conn, deleted, forgotten_memories, gone, f"user {person_id} forgotten", held)


def forget_channel(conn: psycopg.Connection, channel_id: int) -> Forgotten:
    deleted = messages.delete_channel(conn, channel_id)
    forgotten_memories = memories.forget_built_from(conn, deleted) + memories.forget_channel(conn, channel_id)
    held = drafts.forget_involving(conn, channel_id=channel_id, memory_ids=forgotten_memories)
    gone = replies.forget_involving(conn, channel_id=channel_id, memory_ids=forgotten_memories)
    disclosure.forget_channel(conn, channel_id)
    send_modes.forget_channel(conn, channel_id)
    return _reach_adapters(conn, deleted, forgotten_memories, gone, f"channel {channel_id} forgotten", held)


def forget_range(conn: psycopg.Connection, start: datetime, end: datetime) -> Forgotten:
    """Messages written in [start, end), and memories that contained any of them."""
    deleted = messages.delete_range(conn, start, end)
    forgotten_memories = memories.forget_built_from(conn, deleted)
    held = drafts.forget_involving(conn, start=start, end=end, memory_ids=forgotten_memories)
    gone = replies.forget_involving(conn, start=start, end=end, memory_ids=forgotten_memories)
    disclosure.forget_range(conn, start, end)
    return _reach_adapters(conn, deleted, forgotten_memories, gone, f"{start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} forgotten", held)


def forget_memory(conn: psycopg.Connection, memory_id: int) -> Forgotten:
    """The messages a memory was built from, and everything built from those (the
    memory itself, other memories sharing a message, replies that recalled them)."""
    from persona.memory import opened

    memory = opened(conn, memory_id)
    if memory is None:
        return Forgotten(0, 0)
    deleted = messages.delete_ids(conn, memory.message_ids)
    forgotten_memories = sorted(set(memories.forget_built_from(conn, memory.message_ids)) | set(memories.forget_ids(conn, [memory_id])))
    held = drafts.forget_involving(conn, memory_ids=forgotten_memories)
    gone = replies.forget_involving(conn, memory_ids=forgotten_memories)
    return _reach_adapters(conn, deleted, forgotten_memories, gone, f"memory {memory_id} forgotten", held)


def _reach_adapters(conn: psycopg.Connection, deleted: list[int], forgotten_memories: list[int], gone: replies.ForgottenReplies,
                    reason: str, held: list[int] | None = None) -> Forgotten:
    if forgotten_memories:
        # Topic centroids average the memories' vectors: cluster again without the forgotten ones.
        owner = people.stored_owner(conn)
        if owner is not None:
            topics.rebuild(conn, owner.id)
        else:
            topics.clear(conn)
    tainted = adapters.taint(conn, deleted, gone.feedback_ids, reason, held or [])
    was_active, replacement = adapters.replace_tainted_active(conn)
    if tainted:
        log.info("%s: adapters trained on it: %s", reason, ", ".join(f"v{v}" for v in tainted))
    return Forgotten(
        len(deleted), len(forgotten_memories), gone.replies, len(gone.feedback_ids), drafts=len(held or []), tainted=tainted,
        rolled_back_to=replacement.id if replacement else None,
        tainted_active=was_active.id if (was_active and replacement is None) else None,
    )

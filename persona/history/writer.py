"""Storing messages: the one merge policy for imports, live capture and backfill.

Every message reaches the database through a `HistoryWriter`, which scrubs personal
data itself (no caller can store unscrubbed text) and refuses opted-out authors in the
same statement that stores. Messages stream into a `COPY` to temporary staging tables
(no per-row round trips); people and channels, which are few, are collected in memory.
`merge()` moves staging into the real tables with `INSERT ... ON CONFLICT`:

- storing the same message again adds nothing;
- a richer record replaces a poorer one (`source_richness()`: dce, backfill and live
  carry replies, mentions and edits; the data package only the owner's text), and a
  later edit through the same source replaces the earlier text;
- a person keeps their stored name unless the new record has one; the owner flag is
  only ever added;
- a channel's unknown other side (a negative id in its scope) is replaced when a later
  record knows it, and its messages are re-scoped with it.

The caller owns the transaction: nothing is visible until it commits.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import psycopg

from persona.errors import PersonaError
from persona.history import people
from persona.history.mentions import render_mentions
from persona.history.messages import channel_names
from persona.privacy.scrub import Scrubber

log = logging.getLogger(__name__)


class HistoryError(PersonaError):
    """The data cannot be stored as it is (several owners, another owner's history)."""


MESSAGE_COLUMNS = (
    "id", "channel_id", "author_id", "kind", "created_at", "edited_at",
    "content", "reply_to_id", "attachments", "mentions",
)

_STAGING = """
CREATE TEMP TABLE IF NOT EXISTS stage_messages (
    id bigint NOT NULL, channel_id bigint NOT NULL, author_id bigint NOT NULL, kind text NOT NULL,
    created_at timestamptz NOT NULL, edited_at timestamptz, content text NOT NULL,
    reply_to_id bigint, attachments jsonb NOT NULL, mentions bigint[] NOT NULL
) ON COMMIT DROP;
CREATE TEMP TABLE IF NOT EXISTS stage_people (
    id bigint NOT NULL, name text NOT NULL, display_name text, is_owner boolean NOT NULL, is_bot boolean NOT NULL
) ON COMMIT DROP;
CREATE TEMP TABLE IF NOT EXISTS stage_channels (
    id bigint NOT NULL, kind text NOT NULL, name text, guild_id bigint, guild_name text,
    parent_id bigint, scope text NOT NULL, recipients bigint[] NOT NULL
) ON COMMIT DROP;
"""

_MERGE_PEOPLE = """
INSERT INTO people AS p (id, name, display_name, is_owner, is_bot)
SELECT DISTINCT ON (id) id, name, display_name, is_owner, is_bot FROM stage_people ORDER BY id, is_owner DESC
ON CONFLICT (id) DO UPDATE SET
    name = CASE WHEN EXCLUDED.name <> '' THEN EXCLUDED.name ELSE p.name END,
    display_name = COALESCE(EXCLUDED.display_name, p.display_name),
    is_owner = p.is_owner OR EXCLUDED.is_owner,
    is_bot = p.is_bot OR EXCLUDED.is_bot
"""

# A scope with a negative id means "the other side is unknown" (a deleted user, a
# channel whose server the package does not name): a later import that knows better
# replaces it.
_MERGE_CHANNELS = """
INSERT INTO channels AS c (id, kind, name, guild_id, guild_name, parent_id, scope, recipients)
SELECT DISTINCT ON (id) id, kind, name, guild_id, guild_name, parent_id, scope, recipients FROM stage_channels ORDER BY id
ON CONFLICT (id) DO UPDATE SET
    kind = CASE WHEN c.kind = 'other' THEN EXCLUDED.kind ELSE c.kind END,
    name = COALESCE(EXCLUDED.name, c.name),
    guild_id = COALESCE(EXCLUDED.guild_id, c.guild_id),
    guild_name = COALESCE(EXCLUDED.guild_name, c.guild_name),
    parent_id = COALESCE(EXCLUDED.parent_id, c.parent_id),
    scope = CASE WHEN c.scope ~ ':-' AND EXCLUDED.scope !~ ':-' THEN EXCLUDED.scope ELSE c.scope END,
    recipients = CASE WHEN cardinality(EXCLUDED.recipients) > cardinality(c.recipients) THEN EXCLUDED.recipients ELSE c.recipients END
"""

_RESCOPE_MESSAGES = """
UPDATE messages m SET scope = c.scope
FROM channels c
WHERE c.id IN (SELECT id FROM stage_channels) AND m.channel_id = c.id AND m.scope <> c.scope
"""

_OPTED_OUT_COUNTS = """
SELECT c.kind, count(DISTINCT s.id)
FROM stage_messages s
JOIN people p ON p.id = s.author_id AND p.opted_out_at IS NOT NULL
JOIN channels c ON c.id = s.channel_id
GROUP BY c.kind
"""

_MERGE_MESSAGES = """
WITH staged AS (
    SELECT DISTINCT ON (s.id) s.*, c.scope
    FROM stage_messages s
    JOIN channels c ON c.id = s.channel_id
    LEFT JOIN people p ON p.id = s.author_id
    WHERE p.opted_out_at IS NULL
    ORDER BY s.id, s.edited_at DESC NULLS LAST, length(s.content) DESC
), upserted AS (
    INSERT INTO messages AS m (id, channel_id, author_id, source, scope, kind, created_at, edited_at,
                               content, reply_to_id, attachments, mentions, import_run_id)
    SELECT id, channel_id, author_id, %(source)s, scope, kind, created_at, edited_at,
           content, reply_to_id, attachments, mentions, %(run)s
    FROM staged
    ON CONFLICT (id) DO UPDATE SET
        source = EXCLUDED.source,
        kind = EXCLUDED.kind,
        edited_at = COALESCE(EXCLUDED.edited_at, m.edited_at),
        content = EXCLUDED.content,
        language = CASE WHEN EXCLUDED.content = m.content THEN m.language END,  -- new words: detected again (persona/languages.py)
        reply_to_id = COALESCE(EXCLUDED.reply_to_id, m.reply_to_id),
        attachments = CASE WHEN jsonb_array_length(EXCLUDED.attachments) > 0 THEN EXCLUDED.attachments ELSE m.attachments END,
        mentions = CASE WHEN cardinality(EXCLUDED.mentions) > 0 THEN EXCLUDED.mentions ELSE m.mentions END,
        import_run_id = EXCLUDED.import_run_id
    WHERE m.channel_id = EXCLUDED.channel_id  -- a clash between channels is refused before (_ID_CLASH); never move text across scopes
      AND (source_richness(EXCLUDED.source) > source_richness(m.source)
           OR (EXCLUDED.source = m.source AND EXCLUDED.edited_at > COALESCE(m.edited_at, '-infinity'::timestamptz)))
    RETURNING m.channel_id, (xmax = 0) AS inserted
)
SELECT c.kind, count(*) FILTER (WHERE u.inserted), count(*) FILTER (WHERE NOT u.inserted)
FROM upserted u JOIN channels c ON c.id = u.channel_id
GROUP BY c.kind
"""


# Discord message ids are unique across all channels: one id in two channels means a
# damaged or edited file. Storing either copy would put one channel's words under the
# other's scope (or drop one silently), so the import is refused instead.
_ID_CLASH = """
(SELECT id, min(channel_id), max(channel_id) FROM stage_messages GROUP BY id HAVING min(channel_id) <> max(channel_id) LIMIT 1)
UNION ALL
(SELECT s.id, s.channel_id, m.channel_id FROM stage_messages s JOIN messages m ON m.id = s.id AND m.channel_id <> s.channel_id LIMIT 1)
LIMIT 1
"""


@dataclass(slots=True)
class Person:
    id: int
    name: str
    display_name: str | None = None
    is_owner: bool = False
    is_bot: bool = False


@dataclass(slots=True)
class Channel:
    id: int
    kind: str
    scope: str
    name: str | None = None
    guild_id: int | None = None
    guild_name: str | None = None
    parent_id: int | None = None
    recipients: list[int] = field(default_factory=list)


@dataclass
class Merged:
    """What `merge()` did, by channel kind: {kind: (new, updated)} and opted-out refusals."""

    by_kind: dict[str, tuple[int, int]]
    opted_out: dict[str, int]

    @property
    def new(self) -> int:
        return sum(n for n, _ in self.by_kind.values())


class HistoryWriter:
    """`w = HistoryWriter(conn, "dce"); w.add_person(...); w.add_channel(...); w.add_message(...); w.merge()`."""

    def __init__(self, conn: psycopg.Connection, source: str, *, import_run_id: int | None = None, stored_names: bool = True) -> None:
        self.conn = conn
        self.source = source
        self.import_run_id = import_run_id
        self.people: dict[int, Person] = {}
        self.channels: dict[int, Channel] = {}
        self.scrubber = Scrubber()
        conn.execute(_STAGING)
        # A second writer in the same transaction starts from empty staging tables.
        conn.execute("TRUNCATE stage_messages, stage_people, stage_channels")
        owner = people.stored_owner(conn)
        self.stored_owner_id: int | None = owner.id if owner else None
        # id -> name, for rendering <@id> and <#id>. Loaded before the COPY starts (the
        # connection serves nothing else during it); live capture, a message at a time,
        # renders with the names Discord sent along instead (`stored_names=False`).
        self.names: dict[int, str] = people.known_names(conn) if stored_names else {}
        self.channel_names: dict[int, str] = channel_names(conn) if stored_names else {}
        self.staged = 0
        self.staged_per_channel: Counter[int] = Counter()
        self._cursor = conn.cursor()
        self._copy_context: Any = self._cursor.copy(f"COPY stage_messages ({', '.join(MESSAGE_COLUMNS)}) FROM STDIN")
        self._copy = self._copy_context.__enter__()

    def clean(self, text: str) -> str:
        """Render Discord markup readable, then scrub personal data (before anything is stored)."""
        if "\x00" in text:  # PostgreSQL text cannot hold NUL
            text = text.replace("\x00", "")
        if "<" in text:
            text = render_mentions(text, self.names, self.channel_names)
        return self.scrubber.scrub(text)

    def add_person(self, person: Person) -> None:
        if person.display_name or person.name:
            self.names[person.id] = person.display_name or person.name
        known = self.people.get(person.id)
        if known is None:
            self.people[person.id] = person
            return
        known.is_owner |= person.is_owner
        known.is_bot |= person.is_bot
        if person.display_name:
            known.display_name = person.display_name
        if person.name and (not known.name or known.name == "Deleted User"):
            known.name = person.name

    def add_channel(self, channel: Channel) -> None:
        self.channels[channel.id] = channel
        if channel.name:
            self.channel_names[channel.id] = channel.name

    def add_message(self, id: int, channel_id: int, author_id: int, created_at: Any, text: str, *, kind: str = "default",
                    edited_at: Any = None, reply_to_id: int | None = None, attachments: list[str] | None = None,
                    mentions: list[int] | None = None) -> bool:
        """Stage one message, scrubbing `text` first; False (nothing staged) when nothing is left to keep.
        Timestamps: ISO-8601 text or datetimes."""
        content = self.clean(text) if text else ""
        if not content and not attachments:
            return False
        if attachments:
            # Attachment links carry expiring signatures (`?ex=&is=&hm=`): the link works without them.
            attachments = [url.split("?", 1)[0] for url in attachments]
        self._copy.write_row(
            (id, channel_id, author_id, kind, created_at, edited_at, content, reply_to_id,
             json.dumps(attachments) if attachments else "[]",
             # bigint[] in COPY's text form: cheaper than psycopg's list adaptation per row.
             "{" + ",".join(map(str, mentions)) + "}" if mentions else "{}")
        )
        self.staged += 1
        self.staged_per_channel[channel_id] += 1
        return True

    def abort(self, exc: BaseException) -> None:
        """End the COPY with the error (psycopg sends CopyFail) so the transaction can roll back."""
        if self._copy_context is not None:
            context, self._copy_context = self._copy_context, None
            context.__exit__(type(exc), exc, exc.__traceback__)
        self._cursor.close()

    def merge(self) -> Merged:
        """End the COPY and merge staging into the real tables (the caller commits)."""
        assert self._copy_context is not None, "merge() called twice"
        context, self._copy_context = self._copy_context, None
        context.__exit__(None, None, None)  # sends end-of-copy
        self._cursor.close()
        conn = self.conn
        self._check_owner()
        with conn.cursor() as cur:
            with cur.copy("COPY stage_people (id, name, display_name, is_owner, is_bot) FROM STDIN") as copy:
                for p in self.people.values():
                    copy.write_row((p.id, p.name, p.display_name, p.is_owner, p.is_bot))
            with cur.copy("COPY stage_channels (id, kind, name, guild_id, guild_name, parent_id, scope, recipients) FROM STDIN") as copy:
                for c in self.channels.values():
                    copy.write_row((c.id, c.kind, c.name, c.guild_id, c.guild_name, c.parent_id, c.scope, c.recipients))
        conn.execute(_MERGE_PEOPLE)
        conn.execute(_MERGE_CHANNELS)
        conn.execute(_RESCOPE_MESSAGES)
        opted_out = dict(conn.execute(_OPTED_OUT_COUNTS).fetchall())
        clash = conn.execute(_ID_CLASH).fetchone()
        if clash is not None:
            message_id, channel_id, other = clash
            raise HistoryError(f"message {message_id} is in channel {channel_id} and also in channel {other}; Discord ids are unique, "
                               "so one of the files is damaged or was edited: nothing was imported")
        rows = conn.execute(_MERGE_MESSAGES, {"source": self.source, "run": self.import_run_id}).fetchall()
        return Merged({kind: (inserted, updated) for kind, inserted, updated in rows}, opted_out)

    def _check_owner(self) -> None:
        owners = [p.id for p in self.people.values() if p.is_owner]
        if not owners:
            return
        if len(owners) > 1:
            raise HistoryError(f"this import names several owners ({', '.join(map(str, owners))}); import one person's data")
        if self.stored_owner_id is not None and self.stored_owner_id != owners[0]:
            raise HistoryError(
                f"this data belongs to user {owners[0]}, but the database already holds the history of owner {self.stored_owner_id}: "
                "use a separate PERSONA_HOME or DATABASE_URL for each owner"
            )

"""Bulk loading shared by every source: COPY into staging tables, then one merge.

An import is one transaction. Parsers stream messages straight into a `COPY` to a
temporary staging table (no per-row round trips); people and channels, which are few,
are collected in memory. `finish()` merges staging into the real tables with
`INSERT ... ON CONFLICT`, so importing the same data again adds nothing, and a message
seen through a richer source (DCE after the package) replaces the poorer record. Any
exception before `finish()` returns rolls everything back; the `import_runs` row is
written on its own connection so a failed import is still recorded.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import psycopg

from persona.errors import PersonaError
from persona.memory import forget_changed
from persona.mentions import render_mentions
from persona.people import stored_owner
from persona.privacy import Scrubber
from persona.store import Store

log = logging.getLogger(__name__)

MESSAGE_COLUMNS = (
    "id", "channel_id", "author_id", "kind", "created_at", "edited_at",
    "content", "reply_to_id", "attachments", "mentions",
)

_STAGING = """
CREATE TEMP TABLE stage_messages (
    id bigint NOT NULL, channel_id bigint NOT NULL, author_id bigint NOT NULL, kind text NOT NULL,
    created_at timestamptz NOT NULL, edited_at timestamptz, content text NOT NULL,
    reply_to_id bigint, attachments jsonb NOT NULL, mentions bigint[] NOT NULL
) ON COMMIT DROP;
CREATE TEMP TABLE stage_people (
    id bigint NOT NULL, name text NOT NULL, display_name text, is_owner boolean NOT NULL, is_bot boolean NOT NULL
) ON COMMIT DROP;
CREATE TEMP TABLE stage_channels (
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
        reply_to_id = COALESCE(EXCLUDED.reply_to_id, m.reply_to_id),
        attachments = CASE WHEN jsonb_array_length(EXCLUDED.attachments) > 0 THEN EXCLUDED.attachments ELSE m.attachments END,
        mentions = CASE WHEN cardinality(EXCLUDED.mentions) > 0 THEN EXCLUDED.mentions ELSE m.mentions END,
        import_run_id = EXCLUDED.import_run_id
    WHERE source_richness(EXCLUDED.source) > source_richness(m.source)
       OR (EXCLUDED.source = m.source AND EXCLUDED.edited_at > COALESCE(m.edited_at, '-infinity'::timestamptz))
    RETURNING m.channel_id, (xmax = 0) AS inserted
)
SELECT c.kind, count(*) FILTER (WHERE u.inserted), count(*) FILTER (WHERE NOT u.inserted)
FROM upserted u JOIN channels c ON c.id = u.channel_id
GROUP BY c.kind
"""


class IngestError(PersonaError):
    """The input cannot be imported; nothing from it was stored."""


_ISO_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}(?::?\d{2})?)?$")


def iso_timestamp(raw: object, where: str) -> str:
    """Validate an ISO-8601 timestamp (text goes to PostgreSQL as is); naive means UTC."""
    if not isinstance(raw, str) or not _ISO_TIMESTAMP.match(raw):
        raise IngestError(f"{where} has an unreadable timestamp ({str(raw)[:40]!r})")
    if raw.endswith("Z") or raw[-6:-5] in ("+", "-") or raw[-3:-2] in ("+", "-") or raw[-5:-4] in ("+", "-"):
        return raw
    return raw + "+00:00"


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
class KindCounts:
    new: int = 0
    updated: int = 0
    duplicate: int = 0
    skipped: int = 0


@dataclass
class ImportSummary:
    source: str
    run_id: int
    by_kind: dict[str, KindCounts]
    skipped_reasons: Counter[str]
    scrubbed: Counter[str]
    files: int

    @property
    def new(self) -> int:
        return sum(k.new for k in self.by_kind.values())

    @property
    def total(self) -> dict[str, int]:
        return {
            "new": self.new,
            "updated": sum(k.updated for k in self.by_kind.values()),
            "duplicate": sum(k.duplicate for k in self.by_kind.values()),
            "skipped": sum(k.skipped for k in self.by_kind.values()),
        }

    def as_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "import_run": self.run_id,
            "files": self.files,
            **self.total,
            "by_kind": {kind: vars(c) for kind, c in sorted(self.by_kind.items())},
            "skipped_reasons": dict(self.skipped_reasons),
            "scrubbed": dict(self.scrubbed),
        }


class ImportSession:
    """One import: `with ImportSession(...) as s: s.add_message(...); summary = s.finish()`."""

    def __init__(self, store: Store, source: str, path: str) -> None:
        self.store = store
        self.source = source
        self.path = path
        self.people: dict[int, Person] = {}
        self.channels: dict[int, Channel] = {}
        self.skipped: Counter[tuple[str, str]] = Counter()  # (channel kind, reason)
        self.scrubber = Scrubber()
        self.names: dict[int, str] = {}  # person id -> name, for rendering <@id> mentions
        self.channel_names: dict[int, str] = {}
        self.files = 0
        self.messages_staged = 0
        self.staged_per_channel: Counter[int] = Counter()
        self.run_id = 0
        self._stack = ExitStack()
        self._conn: psycopg.Connection | None = None
        self._copy_context: Any = None
        self._copy: Any = None
        self.summary: ImportSummary | None = None

    # --- lifecycle ---------------------------------------------------------------------

    def __enter__(self) -> ImportSession:
        self.run_id = self._start_run()
        try:
            conn = self._stack.enter_context(self.store.connect())
            self._conn = conn
            self._stack.enter_context(conn.transaction())
            conn.execute("SET LOCAL work_mem = '256MB'")
            conn.execute(_STAGING)
            owner = stored_owner(conn)
            self.stored_owner_id: int | None = owner.id if owner else None
            self.names.update(conn.execute("SELECT id, coalesce(display_name, name) FROM people WHERE name <> ''").fetchall())
            self.channel_names.update(conn.execute("SELECT id, name FROM channels WHERE name IS NOT NULL").fetchall())
            cursor = self._stack.enter_context(conn.cursor())
            self._copy_context = cursor.copy(f"COPY stage_messages ({', '.join(MESSAGE_COLUMNS)}) FROM STDIN")
            self._copy = self._copy_context.__enter__()
        except BaseException as exc:
            self._stack.close()
            self._end_run("failed", error=_one_line(exc))
            raise
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if exc is None and self.summary is None:
            exc = IngestError("the import ended before it was finished; nothing was stored")
        try:
            if self._copy_context is not None:
                # Abort the COPY with the error (psycopg sends CopyFail) before rolling back.
                self._copy_context.__exit__(type(exc), exc, exc.__traceback__ if exc else None)
                self._copy_context = None
            # Commits when there was no error, rolls back otherwise.
            self._stack.__exit__(type(exc) if exc else None, exc, exc.__traceback__ if exc else None)
        except BaseException as late:
            self._end_run("failed", error=_one_line(exc or late))
            raise
        if exc is not None:
            self._end_run("failed", error=_one_line(exc))
            if exc_type is None:
                raise exc
            return
        assert self.summary is not None
        self._end_run("succeeded", counts=self.summary.as_json())

    # --- collecting --------------------------------------------------------------------

    def resolve_owner(self, configured: int | None, why: str = "") -> int:
        """PERSONA_OWNER_ID if set, else the owner an earlier import stored, else a clear error."""
        owner = configured if configured is not None else self.stored_owner_id
        if owner is None:
            raise IngestError(
                f"{why + ': ' if why else ''}set PERSONA_OWNER_ID to your Discord user id "
                "(or import your Discord data package first)"
            )
        return owner

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

    def add_message(
        self,
        id: int,
        channel_id: int,
        author_id: int,
        created_at: str,
        content: str,
        *,
        kind: str = "default",
        edited_at: str | None = None,
        reply_to_id: int | None = None,
        attachments: list[str] | None = None,
        mentions: list[int] | None = None,
    ) -> None:
        """Stage one (already scrubbed) message; timestamps are ISO-8601 text."""
        self._copy.write_row(
            (id, channel_id, author_id, kind, created_at, edited_at, content, reply_to_id,
             json.dumps(attachments) if attachments else "[]",
             # bigint[] in COPY's text form: cheaper than psycopg's list adaptation per row.
             "{" + ",".join(map(str, mentions)) + "}" if mentions else "{}")
        )
        self.messages_staged += 1
        self.staged_per_channel[channel_id] += 1

    def skip(self, channel_kind: str, reason: str, count: int = 1) -> None:
        self.skipped[(channel_kind, reason)] += count

    # --- merging -----------------------------------------------------------------------

    def finish(self) -> ImportSummary:
        """End the COPY and merge staging into the real tables; the commit happens on exit."""
        assert self._conn is not None and self._copy_context is not None
        conn = self._conn
        context, self._copy_context = self._copy_context, None
        context.__exit__(None, None, None)  # sends end-of-copy
        self._check_owner(conn)
        with conn.cursor() as cur:
            with cur.copy("COPY stage_people (id, name, display_name, is_owner, is_bot) FROM STDIN") as copy:
                for p in self.people.values():
                    copy.write_row((p.id, p.name, p.display_name, p.is_owner, p.is_bot))
            with cur.copy(
                "COPY stage_channels (id, kind, name, guild_id, guild_name, parent_id, scope, recipients) FROM STDIN"
            ) as copy:
                for c in self.channels.values():
                    copy.write_row((c.id, c.kind, c.name, c.guild_id, c.guild_name, c.parent_id, c.scope, c.recipients))
        conn.execute(_MERGE_PEOPLE)
        conn.execute(_MERGE_CHANNELS)
        conn.execute(_RESCOPE_MESSAGES)

        by_kind: dict[str, KindCounts] = {}
        reasons: Counter[str] = Counter()
        for kind, opted_out in conn.execute(_OPTED_OUT_COUNTS).fetchall():
            by_kind.setdefault(kind, KindCounts()).skipped += opted_out
            reasons["opted_out"] += opted_out
        started = time.perf_counter()
        for kind, inserted, updated in conn.execute(_MERGE_MESSAGES, {"source": self.source, "run": self.run_id}).fetchall():
            counts = by_kind.setdefault(kind, KindCounts())
            counts.new, counts.updated = inserted, updated
        log.debug("merged %d staged messages in %.2fs", self.messages_staged, time.perf_counter() - started)
        stale = forget_changed(conn, self.run_id)
        if stale:
            log.info("dropped %d memories built from messages this import replaced; `persona memory build` re-chunks them", stale)
        staged_by_kind: Counter[str] = Counter()
        for channel_id, n in self.staged_per_channel.items():
            staged_by_kind[self.channels[channel_id].kind] += n
        for kind in staged_by_kind:
            by_kind.setdefault(kind, KindCounts())
        for kind, counts in by_kind.items():
            # Whatever was staged and neither inserted, upgraded nor refused was already stored
            # (or appeared twice in this import).
            counts.duplicate = staged_by_kind.get(kind, 0) - counts.skipped - counts.new - counts.updated
        for (kind, reason), n in self.skipped.items():
            by_kind.setdefault(kind, KindCounts()).skipped += n
            reasons[reason] += n

        self.summary = ImportSummary(self.source, self.run_id, by_kind, reasons, self.scrubber.counts, self.files)
        return self.summary

    def _check_owner(self, conn: psycopg.Connection) -> None:
        owners = [p.id for p in self.people.values() if p.is_owner]
        if not owners:
            return
        if len(owners) > 1:
            raise IngestError(f"this import names several owners ({', '.join(map(str, owners))}); import one person's data")
        stored = stored_owner(conn)
        if stored and stored.id != owners[0]:
            raise IngestError(
                f"this data belongs to user {owners[0]}, but the database already holds the history of owner {stored.id}: "
                "use a separate PERSONA_HOME or DATABASE_URL for each owner"
            )

    # --- the import_runs row (own connection, so a failure is recorded) -----------------

    def _start_run(self) -> int:
        with self.store.connect(autocommit=True) as conn:
            row = conn.execute(
                "INSERT INTO import_runs (source, path) VALUES (%s, %s) RETURNING id", (self.source, self.path)
            ).fetchone()
        return int(row[0])

    def _end_run(self, status: str, *, counts: dict[str, Any] | None = None, error: str | None = None) -> None:
        try:
            with self.store.connect(autocommit=True) as conn:
                conn.execute(
                    "UPDATE import_runs SET status = %s, finished_at = now(), counts = %s, error = %s WHERE id = %s",
                    (status, json.dumps(counts or {}), error, self.run_id),
                )
        except PersonaError as exc:  # the database went away: the import itself already failed or committed
            log.warning("could not record the end of import run %s: %s", self.run_id, exc.message)


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, PersonaError):
        return exc.message
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"

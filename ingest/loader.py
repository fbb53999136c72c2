"""An import run: a parser's messages stored through the one history writer, in one transaction.

Parsers (discord_package, dce, whatsapp, notes) stream people, channels and raw message
text into an `ImportSession`; the session hands them to `persona.history.writer`
(which scrubs and merges) and keeps the import's bookkeeping: the `import_runs` row,
skip reasons, and the summary the CLI prints. Any exception before `finish()` returns
rolls everything back; the run row is written on its own connection so a failed import
is still recorded.
"""

from __future__ import annotations

import logging
import re
import time
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from persona.errors import PersonaError, first_line
from persona.history import runs
from persona.history.writer import Channel, HistoryError, HistoryWriter, Person
from persona.memory.forget import forget_rechunked
from persona.storage.store import Store

log = logging.getLogger(__name__)

__all__ = ["Channel", "ImportSession", "ImportSummary", "IngestError", "Person", "iso_timestamp", "snowflake", "text_field"]


class IngestError(PersonaError):
    """The input cannot be imported; nothing from it was stored."""


_ISO_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}(?::?\d{2})?)?$")


def iso_timestamp(raw: object, where: str) -> str:
    """Validate an ISO-8601 timestamp (text goes to PostgreSQL as is); naive means UTC."""
    if not isinstance(raw, str) or not _ISO_TIMESTAMP.match(raw):
        raise IngestError(f"{where} has an unreadable timestamp ({str(raw)[:40]!r})")
    try:  # the shape is right; is it a day that exists (not 2023-02-30, not year 0)?
        datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise IngestError(f"{where} has an impossible date ({raw[:40]!r})") from None
    if raw.endswith("Z") or raw[-6:-5] in ("+", "-") or raw[-3:-2] in ("+", "-") or raw[-5:-4] in ("+", "-"):
        return raw
    return raw + "+00:00"


MAX_ID = 2**63 - 1  # PostgreSQL bigint


def snowflake(raw: object, where: str, what: str = "ID") -> int:
    """A Discord id (int or digits) that fits a bigint, or a one-line error."""
    value = raw if isinstance(raw, int) and not isinstance(raw, bool) else int(raw) if isinstance(raw, str) and raw.isdigit() else None
    if value is None or not 0 < value <= MAX_ID:
        raise IngestError(f"{where} has no valid {what} ({str(raw)[:30]!r})")
    return value


def text_field(raw: object, where: str, field: str) -> str:
    """A text field that may be missing or empty; anything but text is a one-line error."""
    if raw is None:
        return ""
    if not isinstance(raw, str):
        raise IngestError(f"{where}: {field} should be text, not {type(raw).__name__} ({str(raw)[:30]!r})")
    return raw


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
        self.skipped: Counter[tuple[str, str]] = Counter()  # (channel kind, reason)
        self.files = 0
        self.run_id = 0
        self._run_conn: Any = None  # holds the run's liveness lock (persona.history.runs)
        self._stack = ExitStack()
        self.writer: HistoryWriter | None = None
        self.summary: ImportSummary | None = None

    # --- lifecycle ---------------------------------------------------------------------

    def __enter__(self) -> ImportSession:
        self._run_conn = self.store.connect(autocommit=True)
        try:
            settled = runs.settle_interrupted_imports(self._run_conn)
            if settled:
                log.info("import runs %s were killed earlier; marked as such", ", ".join(map(str, settled)))
            self.run_id = runs.start_import(self._run_conn, self.source, self.path)
        except BaseException:
            self._run_conn.close()
            raise
        try:
            conn = self._stack.enter_context(self.store.connect())
            self._stack.enter_context(conn.transaction())
            conn.execute("SET LOCAL work_mem = '256MB'")
            self.writer = HistoryWriter(conn, self.source, import_run_id=self.run_id)
        except BaseException as exc:
            self._stack.close()
            self._end_run("failed", error=_one_line(exc))
            raise
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if exc is None and self.summary is None:
            exc = IngestError("the import ended before it was finished; nothing was stored")
        try:
            if exc is not None and self.writer is not None:
                self.writer.abort(exc)
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

    # --- collecting (the writer scrubs what it stores) ----------------------------------

    @property
    def names(self) -> dict[int, str]:
        """Names known so far (stored and from this import), by person id."""
        assert self.writer is not None
        return self.writer.names

    def resolve_owner(self, configured: int | None, why: str = "") -> int:
        """PERSONA_OWNER_ID if set, else the owner an earlier import stored, else a clear error."""
        assert self.writer is not None
        owner = configured if configured is not None else self.writer.stored_owner_id
        if owner is None:
            raise IngestError(
                f"{why + ': ' if why else ''}set PERSONA_OWNER_ID to your Discord user id "
                "(or import your Discord data package first)"
            )
        return owner

    def add_person(self, person: Person) -> None:
        assert self.writer is not None
        self.writer.add_person(person)

    def add_channel(self, channel: Channel) -> None:
        assert self.writer is not None
        self.writer.add_channel(channel)

    def add_message(self, id: int, channel_id: int, author_id: int, created_at: str, text: str, *, kind: str = "default",
                    edited_at: str | None = None, reply_to_id: int | None = None, attachments: list[str] | None = None,
                    mentions: list[int] | None = None) -> None:
        """Stage one message as written (raw text: the writer scrubs it); timestamps are ISO-8601 text."""
        assert self.writer is not None
        if not self.writer.add_message(id, channel_id, author_id, created_at, text, kind=kind, edited_at=edited_at,
                                       reply_to_id=reply_to_id, attachments=attachments, mentions=mentions):
            self.skip(self.writer.channels[channel_id].kind if channel_id in self.writer.channels else "other", "empty")

    def skip(self, channel_kind: str, reason: str, count: int = 1) -> None:
        self.skipped[(channel_kind, reason)] += count

    # --- merging -----------------------------------------------------------------------

    def finish(self) -> ImportSummary:
        """Merge what was staged; the commit happens on exit."""
        writer = self.writer
        assert writer is not None
        started = time.perf_counter()
        try:
            merged = writer.merge()
        except HistoryError as exc:
            raise IngestError(exc.message) from None
        log.debug("merged %d staged messages in %.2fs", writer.staged, time.perf_counter() - started)
        stale = forget_rechunked(writer.conn, self.run_id)
        if stale:
            log.info("dropped %d memories built from messages this import replaced; `persona memory build` re-chunks them", stale)
        by_kind: dict[str, KindCounts] = {}
        reasons: Counter[str] = Counter()
        for kind, opted_out in merged.opted_out.items():
            by_kind.setdefault(kind, KindCounts()).skipped += opted_out
            reasons["opted_out"] += opted_out
        for kind, (inserted, updated) in merged.by_kind.items():
            counts = by_kind.setdefault(kind, KindCounts())
            counts.new, counts.updated = inserted, updated
        staged_by_kind: Counter[str] = Counter()
        for channel_id, n in writer.staged_per_channel.items():
            staged_by_kind[writer.channels[channel_id].kind] += n
        for kind in staged_by_kind:
            by_kind.setdefault(kind, KindCounts())
        for kind, counts in by_kind.items():
            # Whatever was staged and neither inserted, upgraded nor refused was already stored
            # (or appeared twice in this import).
            counts.duplicate = staged_by_kind.get(kind, 0) - counts.skipped - counts.new - counts.updated
        for (kind, reason), n in self.skipped.items():
            by_kind.setdefault(kind, KindCounts()).skipped += n
            reasons[reason] += n
        self.summary = ImportSummary(self.source, self.run_id, by_kind, reasons, writer.scrubber.counts, self.files)
        return self.summary

    # --- the import_runs row (own connection, so a failure is recorded) -----------------

    def _end_run(self, status: str, *, counts: dict[str, Any] | None = None, error: str | None = None) -> None:
        try:
            runs.end_import(self._run_conn, self.run_id, status, counts=counts, error=error)
        except psycopg.Error as exc:  # the database went away: the import itself already failed or committed
            log.warning("could not record the end of import run %s: %s", self.run_id, first_line(exc))
        finally:
            self._run_conn.close()


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, PersonaError):
        return exc.message
    return f"{type(exc).__name__}: {first_line(exc, ' ')}".rstrip()

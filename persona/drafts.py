"""Replies held for the owner to send, edit or discard: the `drafts` table's one home.

A draft is made exactly as a sent reply (memory, checks) and kept with the reply as it
would be logged. Its life, each step one conditional UPDATE so that Discord's buttons,
the dashboard and the CLI can race without a draft going out twice:

    pending ──approve──▶ approved ──claim──▶ sending ──▶ sent      (the bot posts it)
       │                                        └──────▶ failed    (Discord refused)
       ├──discard──▶ discarded
       └──(TTL)────▶ expired

Only the bot posts (it holds the Discord connection); the dashboard and the CLI approve,
and the bot — woken by a NOTIFY, or by its two-second loop when it was not listening —
claims approved drafts and posts them. A claim is committed before the
message is posted, so a bot killed between the two leaves the draft `sending` — at most
once, never twice.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from persona import replies
from persona.errors import ConfigError, PersonaError

Via = Literal["discord", "dashboard", "cli"]
OPEN = ("pending", "approved", "sending")
STATUSES = (*OPEN, "sent", "discarded", "expired", "failed")
MAX_TEXT = 2000  # what one Discord message holds: an edit is sent as one message
APPROVED = "persona_draft_approved"  # NOTIFY channel: the bot wakes to post a draft approved elsewhere


@dataclass(frozen=True)
class Draft:
    id: int
    status: str
    created_at: datetime
    expires_at: datetime
    decided_at: datetime | None
    decided_via: str | None
    decision_seq: int | None
    sent_at: datetime | None
    channel_id: int
    guild_id: int | None
    trigger_message_id: int
    asker_id: int
    asker_name: str
    asker_text: str
    place_label: str
    held_because: str
    draft_text: str
    final_text: str | None
    notice_channel_id: int | None
    notice_message_id: int | None
    reply_id: int | None
    failure: str | None

    @property
    def text(self) -> str:
        """What is (or would be) sent: the owner's text once decided, else the model's draft."""
        return self.final_text if self.final_text is not None else self.draft_text

    @property
    def edited(self) -> bool:
        return self.final_text is not None and self.final_text != self.draft_text

    @property
    def link(self) -> str:
        """The message it answers, as a Discord link."""
        return f"https://discord.com/channels/{self.guild_id or '@me'}/{self.channel_id}/{self.trigger_message_id}"

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("created_at", "expires_at", "decided_at", "sent_at"):
            data[key] = data[key].isoformat() if data[key] else None
        return data | {"text": self.text, "edited": self.edited, "link": self.link}


@dataclass(frozen=True)
class Decision:
    """The outcome of approve/discard: `changed` False when the draft was already decided
    (or expired, or gone: `draft` None) — then nothing happened."""

    changed: bool
    draft: Draft | None

    def refusal(self) -> str:
        if self.draft is None:
            return "there is no such draft (forgotten, or never made)"
        return f"draft {self.draft.id} is already {describe_status(self.draft)}"


_COLUMNS = sql.SQL(", ").join(sql.Identifier(f.name) for f in fields(Draft))


def describe_status(draft: Draft) -> str:
    via = f" via {draft.decided_via}" if draft.decided_via else ""
    return {
        "pending": "waiting for a decision", "approved": f"approved{via}, the bot sends it within seconds",
        "sending": "being sent (if the bot stopped meanwhile it may not have gone out)", "sent": f"sent{' (edited)' if draft.edited else ''}{via}",
        "discarded": f"discarded{via}", "expired": "expired unsent", "failed": f"not sent: {draft.failure}",
    }[draft.status]


def create(conn: psycopg.Connection, logged: replies.LoggedReply, *, asker_name: str, asker_text: str, place_label: str,
           ttl: timedelta, held_because: str = "draft mode") -> Draft:
    if logged.asker_id is None or logged.channel_id is None or logged.trigger_message_id is None:
        raise ValueError("a draft answers a message: asker, channel and trigger message are needed")
    row = conn.execute(
        sql.SQL("INSERT INTO drafts (expires_at, scope, channel_id, guild_id, trigger_message_id, asker_id, asker_name, asker_text, place_label, "
                "context_author_ids, memory_ids, held_because, draft_text, reply) "
                "VALUES (now() + %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING {}").format(_COLUMNS),
        (ttl, logged.scope, logged.channel_id, logged.guild_id, logged.trigger_message_id, logged.asker_id, asker_name, asker_text, place_label,
         sorted(set(logged.context_author_ids)), logged.memory_ids, held_because, logged.completion, json.dumps(asdict(logged))),
    ).fetchone()
    return Draft(*row)


def attach_notice(conn: psycopg.Connection, draft_id: int, channel_id: int, message_id: int) -> None:
    """The owner's DM that shows the draft (edited when the draft is decided)."""
    conn.execute("UPDATE drafts SET notice_channel_id = %s, notice_message_id = %s WHERE id = %s", (channel_id, message_id, draft_id))


def _as_read(row: Any) -> Draft:
    """A draft as anyone reading it should see it: one past its time is expired, even before
    the bot's loop has marked it so (only the bot marks it: it also updates the owner's DM)."""
    draft = Draft(*row)
    if draft.status in ("pending", "approved") and draft.expires_at <= datetime.now(UTC):
        return replace(draft, status="expired")
    return draft


def get(conn: psycopg.Connection, draft_id: int) -> Draft | None:
    row = conn.execute(sql.SQL("SELECT {} FROM drafts WHERE id = %s").format(_COLUMNS), (draft_id,)).fetchone()
    return _as_read(row) if row else None


def listed(conn: psycopg.Connection, *, statuses: tuple[str, ...] = (), limit: int = 50) -> list[Draft]:
    """Newest first; `statuses` (as read: past its time is expired) empty: all."""
    if unknown := [s for s in statuses if s not in STATUSES]:
        raise ConfigError(f"unknown draft status {', '.join(unknown)}: use {', '.join(STATUSES)}")
    rows = conn.execute(
        sql.SQL("SELECT {} FROM drafts WHERE cardinality(%s::text[]) = 0 OR (CASE WHEN status IN ('pending', 'approved') AND expires_at <= now() "
                "THEN 'expired' ELSE status END) = ANY(%s::text[]) ORDER BY id DESC LIMIT %s").format(_COLUMNS),
        (list(statuses), list(statuses), limit),
    ).fetchall()
    return [_as_read(r) for r in rows]


def approve(conn: psycopg.Connection, draft_id: int, *, via: Via, text: str | None = None) -> Decision:
    """Send the draft (as it is, or as `text`): only a pending, unexpired draft changes."""
    if text is not None:
        text = text.strip()
        if not text:
            raise PersonaError("the edited text is empty: write what to send, or discard the draft")
        if len(text) > MAX_TEXT:
            raise PersonaError(f"the edited text has {len(text):,} characters; at most {MAX_TEXT:,} can be sent")
    decision = _decide(conn, draft_id, "approved", via, text)
    if decision.changed:  # delivered when this transaction commits; the bot's loop picks it up anyway if nobody listens
        conn.execute("SELECT pg_notify(%s, %s)", (APPROVED, str(draft_id)))
    return decision


def discard(conn: psycopg.Connection, draft_id: int, *, via: Via) -> Decision:
    return _decide(conn, draft_id, "discarded", via, None)


def _decide(conn: psycopg.Connection, draft_id: int, status: str, via: Via, text: str | None) -> Decision:
    row = conn.execute(
        sql.SQL("UPDATE drafts SET status = %s, decided_via = %s, decided_at = now(), decision_seq = nextval('drafts_decisions'), "
                "final_text = CASE WHEN %s = 'approved' "
                "THEN coalesce(%s, draft_text) END WHERE id = %s AND status = 'pending' AND expires_at > now() RETURNING {}").format(_COLUMNS),
        (status, via, status, text, draft_id),
    ).fetchone()
    if row is not None:
        return Decision(True, Draft(*row))
    return Decision(False, get(conn, draft_id))


def claim_approved(conn: psycopg.Connection, draft_id: int | None = None) -> list[Draft]:
    """Approved drafts (one, or all) → `sending`, for the caller to post: each is claimed by
    exactly one caller. Commit before posting."""
    rows = conn.execute(
        sql.SQL("UPDATE drafts SET status = 'sending' WHERE status = 'approved' AND (%s::bigint IS NULL OR id = %s) RETURNING {}").format(_COLUMNS),
        (draft_id, draft_id),
    ).fetchall()
    return [Draft(*r) for r in rows]


def mark_sent(conn: psycopg.Connection, draft_id: int, message_ids: list[int]) -> int | None:
    """The draft went out as `message_ids`: its reply is logged with the text that was sent
    (what people read, rate and what forget and training see). Returns the reply's id;
    None when the draft was forgotten meanwhile (then nothing is logged)."""
    row = conn.execute("SELECT reply, final_text FROM drafts WHERE id = %s AND status = 'sending' FOR UPDATE", (draft_id,)).fetchone()
    if row is None:
        return None
    snapshot, text = row
    logged = replies.LoggedReply(**{**snapshot, "completion": text, "message_ids": tuple(message_ids),
                                    "context_author_ids": tuple(snapshot["context_author_ids"])})
    reply_id = replies.log_reply(conn, logged)
    conn.execute("UPDATE drafts SET status = 'sent', sent_at = now(), reply_id = %s WHERE id = %s", (reply_id, draft_id))
    return reply_id


def mark_failed(conn: psycopg.Connection, draft_id: int, reason: str) -> None:
    conn.execute("UPDATE drafts SET status = 'failed', failure = %s WHERE id = %s AND status = 'sending'", (reason[:500], draft_id))


def expire_due(conn: psycopg.Connection) -> list[Draft]:
    """Pending and approved drafts past their time → `expired` (returned, to update the owner's
    DM): the bot's loop calls it; everyone else reads such drafts as expired already."""
    rows = conn.execute(
        sql.SQL("UPDATE drafts SET status = 'expired' WHERE status IN ('pending', 'approved') AND expires_at <= now() RETURNING {}").format(_COLUMNS),
    ).fetchall()
    return [Draft(*r) for r in rows]


def counts(conn: psycopg.Connection) -> dict[str, int]:
    """Drafts per status (every status present, 0 when none)."""
    found = dict(conn.execute("SELECT status, count(*) FROM drafts GROUP BY status").fetchall())
    return {status: int(found.get(status, 0)) for status in STATUSES}


def snapshot(conn: psycopg.Connection, draft_id: int) -> dict[str, Any] | None:
    """The reply as it would be logged (prompt, memories, evidence, verdict)."""
    with conn.cursor(row_factory=dict_row) as cursor:
        row = cursor.execute("SELECT reply FROM drafts WHERE id = %s", (draft_id,)).fetchone()
    return row["reply"] if row else None


def forget_involving(conn: psycopg.Connection, *, person_id: int | None = None, scope: str | None = None, channel_id: int | None = None,
                     start: datetime | None = None, end: datetime | None = None, memory_ids: list[int] | None = None) -> list[int]:
    """Delete every draft that involves what is forgotten (returns their ids), as replies.forget_involving
    matches replies: to the person or quoting them, in the scope or channel, made in
    [start, end), or having recalled one of the memories. Their DMs to the owner stay in
    Discord (the owner's own copy); their buttons then answer that the draft is gone."""
    rows = conn.execute(
        "DELETE FROM drafts WHERE asker_id = %(person)s OR %(person)s = ANY(context_author_ids) OR scope = %(scope)s OR channel_id = %(channel)s "
        "OR (created_at >= %(start)s AND created_at < %(end)s) OR memory_ids && %(memories)s::bigint[] RETURNING id",
        {"person": person_id, "scope": scope, "channel": channel_id, "start": start, "end": end, "memories": memory_ids or []},
    ).fetchall()
    return [r[0] for r in rows]


# --- decisions as lessons (trainer/lessons.py) -------------------------------------------

DECIDED = ("approved", "sending", "sent", "failed", "discarded")  # the owner judged these (expired ones: no judgment)


@dataclass(frozen=True)
class Lesson:
    """One decision of the owner's on a draft, as training reads it."""

    draft_id: int
    seq: int  # decision order: the training watermark
    prompt: list[dict[str, str]]
    draft: str  # what the model wrote
    final: str | None  # what the owner sent; None: discarded
    channel_id: int
    via: str
    created_at: datetime

    @property
    def kind(self) -> str:
        """sent (unchanged), edited, or discarded."""
        if self.final is None:
            return "discarded"
        return "sent" if self.final.strip() == self.draft.strip() else "edited"


def lessons(conn: psycopg.Connection, after_seq: int = 0, *, vias: tuple[str, ...] = ("discord", "dashboard", "cli")) -> list[Lesson]:
    """Decisions made after `after_seq` (through `vias`), oldest first."""
    rows = conn.execute(
        "SELECT id, decision_seq, reply->'prompt', draft_text, CASE WHEN status = 'discarded' THEN NULL ELSE final_text END, channel_id, "
        "decided_via, created_at FROM drafts WHERE decision_seq > %s AND status = ANY(%s) AND decided_via = ANY(%s) ORDER BY decision_seq",
        (after_seq, list(DECIDED), list(vias)),
    ).fetchall()
    return [Lesson(r[0], r[1], [{"role": m["role"], "content": m["content"]} for m in r[2]], r[3], r[4], r[5], r[6], r[7]) for r in rows]


def existing(conn: psycopg.Connection, draft_ids: list[int]) -> set[int]:
    """Which of these drafts are still stored (training files are checked against it after a forget)."""
    return {r[0] for r in conn.execute("SELECT id FROM drafts WHERE id = ANY(%s)", (draft_ids,)).fetchall()}


# --- the approval rate ---------------------------------------------------------------------


@dataclass(frozen=True)
class Approval:
    """Per adapter version: of the drafts the owner decided, how many went out as written,
    edited (and by how many characters), or discarded — the owner's own "would I have said
    that?"."""

    adapter_version: int | None  # None: the base model
    decided: int
    sent: int
    edited: int
    discarded: int
    mean_edit_chars: float | None  # Levenshtein distance, over the edited ones

    @property
    def approval_rate(self) -> float:
        return self.sent / self.decided if self.decided else 0.0

    def describe(self) -> str:
        edits = f", edited {self.edited} (~{self.mean_edit_chars:.0f} characters)" if self.edited else ", edited 0"
        return f"{self.approval_rate:.0%} sent as written ({self.sent} of {self.decided}{edits}, discarded {self.discarded})"

    def as_json(self) -> dict[str, Any]:
        return asdict(self) | {"approval_rate": self.approval_rate}


def approval(conn: psycopg.Connection) -> list[Approval]:
    """The approval rate of every adapter version that drafted something, oldest first."""
    from rapidfuzz.distance import Levenshtein

    rows = conn.execute(
        "SELECT (reply->>'adapter_version')::bigint, draft_text, CASE WHEN status = 'discarded' THEN NULL ELSE final_text END "
        "FROM drafts WHERE status = ANY(%s) ORDER BY 1 NULLS FIRST", (list(DECIDED),),
    ).fetchall()
    by_version: dict[int | None, list[tuple[str, str | None]]] = {}
    for version, draft, final in rows:
        by_version.setdefault(version, []).append((draft, final))
    found = []
    for version, decisions in by_version.items():
        distances = [Levenshtein.distance(draft.strip(), final.strip()) for draft, final in decisions if final is not None and final.strip() != draft.strip()]
        discarded = sum(1 for _, final in decisions if final is None)
        found.append(Approval(version, len(decisions), len(decisions) - discarded - len(distances), len(distances), discarded,
                              sum(distances) / len(distances) if distances else None))
    return found

"""Replies the bot sent and the ratings they got: the tables' one home.

Every reply is logged with the prompt the model saw, the memories it recalled, the
adapter version and the latency, so feedback can point at it and training can learn
from it. Ratings: a rater's new rating of the same reply replaces the old one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql

THUMBS = {"👍": 1, "👎": -1}


@dataclass(frozen=True)
class LoggedReply:
    """What is recorded of a sent reply."""

    scope: str
    prompt: list[dict[str, str]]
    completion: str
    memory_ids: list[int]
    adapter_version: int | None
    base_model: str
    latency_ms: int
    asker_id: int | None = None
    channel_id: int | None = None
    guild_id: int | None = None
    trigger_message_id: int | None = None
    message_ids: tuple[int, ...] = ()
    context_author_ids: tuple[int, ...] = ()  # whose lines the prompt quoted (forgetting them forgets this reply)
    evidence: list[dict[str, Any]] = field(default_factory=list)  # grounding evidence: memory_id, text, score
    verdict: dict[str, Any] | None = None  # the consistency check's (persona/runtime/consistency.py); None: not checked


def log_reply(conn: psycopg.Connection, reply: LoggedReply) -> int:
    """Record a sent reply; returns its id (what feedback points at)."""
    row = conn.execute(
        "INSERT INTO replies (message_ids, trigger_message_id, channel_id, guild_id, asker_id, scope, prompt, completion, "
        "memory_ids, adapter_version_id, base_model, latency_ms, context_author_ids, evidence, verdict) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
        (list(reply.message_ids), reply.trigger_message_id, reply.channel_id, reply.guild_id, reply.asker_id, reply.scope,
         json.dumps(reply.prompt), reply.completion, reply.memory_ids, reply.adapter_version, reply.base_model, reply.latency_ms,
         sorted(set(reply.context_author_ids)), json.dumps(reply.evidence), None if reply.verdict is None else json.dumps(reply.verdict)),
    ).fetchone()
    return int(row[0])


def record_feedback(conn: psycopg.Connection, *, message_id: int | None, channel_id: int | None, rater_id: int, rating: int,
                    via: str, correction: str | None = None) -> int | None:
    """Rate the reply that was sent as `message_id` (default: the bot's latest in `channel_id`).
    Returns the reply id, or None when there is no such reply."""
    if message_id is not None:
        row = conn.execute("SELECT id FROM replies WHERE message_ids @> ARRAY[%s]::bigint[]", (message_id,)).fetchone()
    else:
        row = conn.execute("SELECT id FROM replies WHERE channel_id = %s ORDER BY created_at DESC LIMIT 1", (channel_id,)).fetchone()
    if row is None:
        return None
    _rate(conn, int(row[0]), rater_id, rating, via, correction)
    return int(row[0])


def rate(conn: psycopg.Connection, reply_id: int, *, rater_id: int, rating: int, via: str) -> bool:
    """Rate a logged reply by its id (the dashboard); False when there is no such reply."""
    if conn.execute("SELECT 1 FROM replies WHERE id = %s", (reply_id,)).fetchone() is None:
        return False
    _rate(conn, reply_id, rater_id, rating, via, None)
    return True


def _rate(conn: psycopg.Connection, reply_id: int, rater_id: int, rating: int, via: str, correction: str | None) -> None:
    """One rating per rater and reply: a new one replaces the old (a correction, once given, is kept)."""
    conn.execute(
        "INSERT INTO feedback (reply_id, rater_id, rating, correction, via) VALUES (%s, %s, %s, %s, %s) "
        "ON CONFLICT (reply_id, rater_id) DO UPDATE SET rating = EXCLUDED.rating, correction = coalesce(EXCLUDED.correction, feedback.correction), "
        "via = EXCLUDED.via, created_at = now()",
        (reply_id, rater_id, rating, correction, via),
    )


@dataclass(frozen=True)
class Rating:
    """A trusted rating with the reply it rates, as training uses it."""

    id: int
    prompt: list[dict[str, str]]
    completion: str
    label: bool
    correction: str | None
    channel_id: int
    created_at: datetime

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "prompt": self.prompt, "completion": self.completion, "label": self.label,
                "correction": self.correction, "channel_id": self.channel_id, "created_at": self.created_at.isoformat()}


def ratings(conn: psycopg.Connection, rater_ids: list[int], after_id: int = 0) -> list[Rating]:
    """Ratings by `rater_ids` newer than `after_id`, oldest first."""
    rows = conn.execute(
        "SELECT f.id, r.prompt, r.completion, f.rating, f.correction, r.channel_id, r.created_at "
        "FROM feedback f JOIN replies r ON r.id = f.reply_id WHERE f.id > %s AND f.rater_id = ANY(%s) ORDER BY f.id",
        (after_id, rater_ids),
    ).fetchall()
    return [Rating(r[0], _as_messages(r[1]), r[2], r[3] > 0, r[4], r[5] or 0, r[6]) for r in rows]


def _as_messages(prompt: Any) -> list[dict[str, str]]:
    messages = prompt if isinstance(prompt, list) else json.loads(prompt)
    return [{"role": m["role"], "content": m["content"]} for m in messages]


# --- reading ------------------------------------------------------------------------------

FAILED = ("contradicted", "unsupported")  # verdicts of a claim the owner's memories do not back
OUTCOMES = (*FAILED, "supported", "none", "unchecked")  # what a logged reply's check can say (`unchecked`: no check ran)


@dataclass(frozen=True)
class SentReply:
    """A logged reply as the owner reviews it (`persona replies`)."""

    id: int
    created_at: datetime
    asker_id: int | None
    channel_id: int | None
    guild_id: int | None
    scope: str
    asked: str  # the last line of the prompt: what the reply answered
    completion: str
    adapter_version: int | None
    latency_ms: int | None
    memory_ids: list[int]
    evidence: list[dict[str, Any]]
    verdict: dict[str, Any] | None
    thumbs_up: int
    thumbs_down: int
    prompt: list[dict[str, str]] = field(default_factory=list)  # only from `sent_reply`

    @property
    def outcome(self) -> str:
        """The consistency check's outcome, or `unchecked` (PERSONA_CONSISTENCY=off, or "not sure")."""
        return str(self.verdict.get("outcome", "none")) if self.verdict else "unchecked"

    def as_json(self) -> dict[str, Any]:
        data = {k: v for k, v in self.__dict__.items() if k != "prompt" or v}
        return data | {"created_at": self.created_at.isoformat(), "outcome": self.outcome}


# A sent reply's columns; `{more}`: further columns (the prompt, for one reply), `{where}`: the rest of the query.
_SENT = sql.SQL(
    "SELECT r.id, r.created_at, r.asker_id, r.channel_id, r.guild_id, r.scope, coalesce(r.prompt->-1->>'content', ''), r.completion, "
    "r.adapter_version_id, r.latency_ms, r.memory_ids, r.evidence, r.verdict, "
    "(SELECT count(*) FROM feedback f WHERE f.reply_id = r.id AND f.rating > 0), "
    "(SELECT count(*) FROM feedback f WHERE f.reply_id = r.id AND f.rating < 0) {more} FROM replies r {where}"
)


def sent_replies(conn: psycopg.Connection, *, limit: int = 20, before_id: int | None = None, asker_id: int | None = None,
                 channel_id: int | None = None, rating: int | None = None, outcomes: tuple[str, ...] = ()) -> list[SentReply]:
    """The newest logged replies first, optionally only those to `asker_id`, in
    `channel_id`, rated `rating` (1 👍, -1 👎) by someone, or whose consistency verdict is
    one of `outcomes` (`unchecked`: no verdict)."""
    where = sql.SQL(
        "WHERE (%(before)s::bigint IS NULL OR r.id < %(before)s) AND (%(asker)s::bigint IS NULL OR r.asker_id = %(asker)s) "
        "AND (%(channel)s::bigint IS NULL OR r.channel_id = %(channel)s) "
        "AND (%(rating)s::int IS NULL OR EXISTS (SELECT 1 FROM feedback f WHERE f.reply_id = r.id AND sign(f.rating) = %(rating)s)) "
        "AND (cardinality(%(outcomes)s::text[]) = 0 OR coalesce(r.verdict->>'outcome', 'unchecked') = ANY(%(outcomes)s::text[])) "
        "ORDER BY r.id DESC LIMIT %(limit)s")
    rows = conn.execute(
        _SENT.format(more=sql.SQL(""), where=where),
        {"before": before_id, "asker": asker_id, "channel": channel_id, "rating": rating, "outcomes": list(outcomes), "limit": limit},
    ).fetchall()
    return [_sent(row) for row in rows]


def replied_to(conn: psycopg.Connection) -> tuple[list[int], list[int]]:
    """Who was answered and in which channels (for the dashboard's filters), most replies first."""
    askers = [r[0] for r in conn.execute(
        "SELECT asker_id FROM replies WHERE asker_id IS NOT NULL GROUP BY asker_id ORDER BY count(*) DESC LIMIT 200").fetchall()]
    channels = [r[0] for r in conn.execute(
        "SELECT channel_id FROM replies WHERE channel_id IS NOT NULL GROUP BY channel_id ORDER BY count(*) DESC LIMIT 200").fetchall()]
    return askers, channels


def sent_reply(conn: psycopg.Connection, reply_id: int) -> SentReply | None:
    """One logged reply with its prompt snapshot."""
    row = conn.execute(_SENT.format(more=sql.SQL(", r.prompt"), where=sql.SQL("WHERE r.id = %s")), (reply_id,)).fetchone()
    return _sent(row[:-1], _as_messages(row[-1])) if row else None


def _sent(row: Any, prompt: list[dict[str, str]] | None = None) -> SentReply:
    asked = row[6].strip().splitlines()[-1] if row[6].strip() else ""
    return SentReply(row[0], row[1], row[2], row[3], row[4], row[5], asked, row[7], row[8], row[9], list(row[10] or []),
                     list(row[11] or []), row[12], int(row[13]), int(row[14]), prompt or [])


# --- forgetting ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ForgottenReplies:
    replies: int
    feedback_ids: list[int]  # every rating deleted (of these replies, or by the forgotten person)


def forget_involving(conn: psycopg.Connection, *, person_id: int | None = None, scope: str | None = None, channel_id: int | None = None,
                     start: datetime | None = None, end: datetime | None = None, memory_ids: list[int] | None = None) -> ForgottenReplies:
    """Delete every reply that involves what is forgotten, with its ratings: replies to
    `person_id` or whose prompt quoted their lines, replies in `scope` or `channel_id`,
    replies sent in [start, end), replies that recalled any of `memory_ids` (their prompt
    holds the memory's text); and every rating `person_id` gave."""
    where = sql.SQL("(asker_id = %(person)s OR %(person)s = ANY(context_author_ids)) OR scope = %(scope)s OR channel_id = %(channel)s "
                    "OR (created_at >= %(start)s AND created_at < %(end)s) OR memory_ids && %(memories)s::bigint[]")
    params = {"person": person_id, "scope": scope, "channel": channel_id, "start": start, "end": end, "memories": memory_ids or []}
    feedback = conn.execute(
        sql.SQL("DELETE FROM feedback WHERE reply_id IN (SELECT id FROM replies WHERE {}) OR rater_id = %(person)s RETURNING id").format(where),
        params,
    ).fetchall()
    deleted = conn.execute(sql.SQL("DELETE FROM replies WHERE {}").format(where), params).rowcount
    return ForgottenReplies(deleted, [r[0] for r in feedback])


def existing_feedback(conn: psycopg.Connection, feedback_ids: list[int]) -> set[int]:
    """Which of these ratings still exist (files written before a forget are checked against it)."""
    return {r[0] for r in conn.execute("SELECT id FROM feedback WHERE id = ANY(%s)", (feedback_ids,)).fetchall()}


def automatic_sends(conn: psycopg.Connection, within: timedelta, channel_id: int | None = None) -> int:
    """Replies the bot sent by itself (not drafts the owner sent, not API answers) in the last `within`."""
    return int(conn.execute(
        "SELECT count(*) FROM replies r WHERE r.created_at > now() - %s AND cardinality(r.message_ids) > 0 "
        "AND (%s::bigint IS NULL OR r.channel_id = %s) AND NOT EXISTS (SELECT 1 FROM drafts d WHERE d.reply_id = r.id)",
        (within, channel_id, channel_id),
    ).fetchone()[0])


def counts(conn: psycopg.Connection) -> dict[str, int]:
    return {"replies": int(conn.execute("SELECT count(*) FROM replies").fetchone()[0]),
            "feedback": int(conn.execute("SELECT count(*) FROM feedback").fetchone()[0])}

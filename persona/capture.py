"""Storing what the bot sees live, and the owner's ratings of its replies.

Live messages are scrubbed and scoped exactly like imported ones, with provenance
`live` (API-obtained: trained on only with PERSONA_TRAIN_ON_API_CONTENT). One row at a
time is fine here: live traffic is a few messages a second at most.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime

import psycopg

from persona.mentions import render_mentions
from persona.privacy import Scrubber
from persona.scopes import dm_scope, guild_scope


@dataclass
class LiveMessage:
    id: int
    channel_id: int
    author_id: int
    author_name: str
    created_at: datetime
    content: str
    guild_id: int | None = None
    guild_name: str | None = None
    channel_name: str | None = None
    is_thread: bool = False
    display_name: str | None = None
    reply_to_id: int | None = None
    mentions: dict[int, str] = field(default_factory=dict)  # id -> name, for rendering <@id>
    attachments: list[str] = field(default_factory=list)


def store_live(conn: psycopg.Connection, message: LiveMessage, *, owner_id: int | None, source: str = "live") -> bool:
    """Store one message (`live`, or `backfill` from channel history); False when refused
    (opted-out author, nothing to keep, already stored)."""
    opted = conn.execute("SELECT opted_out_at IS NOT NULL FROM people WHERE id = %s", (message.author_id,)).fetchone()
    if opted and opted[0]:
        return False
    text = Scrubber().scrub(render_mentions(message.content.replace("\x00", ""), message.mentions))
    attachments = [url.split("?", 1)[0] for url in message.attachments]
    if not text and not attachments:
        return False
    if message.guild_id is not None:
        kind, scope = ("thread" if message.is_thread else "guild_text"), guild_scope(message.guild_id)
    else:
        kind, scope = "dm", dm_scope(message.author_id)
    conn.execute(
        "INSERT INTO people (id, name, display_name, is_owner) VALUES (%s, %s, %s, %s) "
        "ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, display_name = coalesce(EXCLUDED.display_name, people.display_name)",
        (message.author_id, message.author_name, message.display_name, message.author_id == owner_id),
    )
    conn.execute(
        "INSERT INTO channels (id, kind, name, guild_id, guild_name, scope) VALUES (%s, %s, %s, %s, %s, %s) "
        "ON CONFLICT (id) DO UPDATE SET name = coalesce(EXCLUDED.name, channels.name), guild_name = coalesce(EXCLUDED.guild_name, channels.guild_name)",
        (message.channel_id, kind, message.channel_name, message.guild_id, message.guild_name, scope),
    )
    inserted = conn.execute(
        "INSERT INTO messages (id, channel_id, author_id, source, scope, kind, created_at, content, reply_to_id, attachments, mentions) "
        "SELECT %s, %s, %s, %s, c.scope, %s, %s, %s, %s, %s, %s FROM channels c WHERE c.id = %s ON CONFLICT (id) DO NOTHING",
        (message.id, message.channel_id, message.author_id, source, "reply" if message.reply_to_id else "default", message.created_at, text,
         message.reply_to_id, json.dumps(attachments), list(message.mentions), message.channel_id),
    ).rowcount
    return inserted > 0


THUMBS = {"👍": 1, "👎": -1}


def record_feedback(conn: psycopg.Connection, *, message_id: int | None, channel_id: int | None, rater_id: int, rating: int,
                    via: str, correction: str | None = None) -> int | None:
    """Rate the reply that was sent as `message_id` (default: the bot's latest in `channel_id`).
    A rater's new rating of the same reply replaces the old one. Returns the reply id, or None."""
    if message_id is not None:
        row = conn.execute("SELECT id FROM replies WHERE message_ids @> ARRAY[%s]::bigint[]", (message_id,)).fetchone()
    else:
        row = conn.execute("SELECT id FROM replies WHERE channel_id = %s ORDER BY created_at DESC LIMIT 1", (channel_id,)).fetchone()
    if row is None:
        return None
    conn.execute(
        "INSERT INTO feedback (reply_id, rater_id, rating, correction, via) VALUES (%s, %s, %s, %s, %s) "
        "ON CONFLICT (reply_id, rater_id) DO UPDATE SET rating = EXCLUDED.rating, correction = coalesce(EXCLUDED.correction, feedback.correction), "
        "via = EXCLUDED.via, created_at = now()",
        (row[0], rater_id, rating, correction, via),
    )
    return int(row[0])

"""What the bot sees live (and backfills from channel history), stored like any import.

Live messages go through the same `HistoryWriter` as imports — the same scrubbing,
scoping, opt-out refusal and merge rules — with provenance `live` or `backfill`
(API-obtained: trained on only with PERSONA_TRAIN_ON_API_CONTENT).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import psycopg

from persona.history.writer import Channel, HistoryWriter, Person
from persona.privacy.scopes import dm_scope, guild_scope


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


def store_live(conn: psycopg.Connection, batch: list[LiveMessage], *, owner_id: int | None, source: str = "live") -> int:
    """Store messages seen by the bot (`live`, or `backfill` from channel history) in the
    caller's transaction; returns how many were new (opted-out authors and empty
    messages are refused, known ones merged)."""
    if not batch:
        return 0
    writer = HistoryWriter(conn, source, stored_names=False)
    for message in batch:
        writer.names.update(message.mentions)
        writer.add_person(Person(message.author_id, message.author_name, message.display_name, is_owner=message.author_id == owner_id))
        if message.guild_id is not None:
            channel = Channel(message.channel_id, "thread" if message.is_thread else "guild_text", guild_scope(message.guild_id),
                              name=message.channel_name, guild_id=message.guild_id, guild_name=message.guild_name)
        else:
            channel = Channel(message.channel_id, "dm", dm_scope(message.author_id), name=message.channel_name)
        if message.channel_id not in writer.channels:
            writer.add_channel(channel)
        writer.add_message(
            message.id, message.channel_id, message.author_id, message.created_at, message.content,
            kind="reply" if message.reply_to_id else "default", reply_to_id=message.reply_to_id,
            attachments=message.attachments, mentions=list(message.mentions),
        )
    return writer.merge().new

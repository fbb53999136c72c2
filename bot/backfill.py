"""`persona backfill`: the history of every channel the bot can read, page by page.

discord.py pages `channel.history` 100 messages a request and waits out 429s itself.
Each channel resumes after the last message stored (`backfill_state`), so a second run
or one after a crash fetches only what is new. Provenance `backfill`: API-obtained,
trained on only with PERSONA_TRAIN_ON_API_CONTENT.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import discord

from bot.cogs.capture import keeps, to_live
from persona.history.capture import store_live
from persona.history.runs import backfill_resume_point, record_backfill_page

log = logging.getLogger(__name__)


async def backfill(client: discord.Client, store: Any, *, owner_id: int, progress: Any = None) -> dict[str, int]:
    counts = {"channels": 0, "messages": 0, "skipped_channels": 0}
    for guild in client.guilds:
        me = guild.me
        for channel in list(guild.text_channels) + list(guild.threads):
            permissions = channel.permissions_for(me) if me is not None else None
            if permissions is not None and not (permissions.read_messages and permissions.read_message_history):
                counts["skipped_channels"] += 1
                continue
            stored = await backfill_channel(channel, store, owner_id=owner_id)
            counts["channels"] += 1
            counts["messages"] += stored
            if progress is not None:
                progress(channel, stored)
    return counts


async def backfill_channel(channel: discord.abc.Messageable, store: Any, *, owner_id: int, page: int = 100) -> int:
    last = await asyncio.to_thread(_last_seen, store, channel.id)
    after = discord.Object(id=last) if last else None
    stored = 0
    batch: list[discord.Message] = []
    async for message in channel.history(limit=None, after=after, oldest_first=True):
        batch.append(message)
        if len(batch) >= page:
            stored += await asyncio.to_thread(_store_batch, store, channel.id, batch, owner_id)
            batch = []
    if batch:
        stored += await asyncio.to_thread(_store_batch, store, channel.id, batch, owner_id)
    return stored


def _last_seen(store: Any, channel_id: int) -> int | None:
    with store.connect() as conn:
        return backfill_resume_point(conn, channel_id)


def _store_batch(store: Any, channel_id: int, batch: list[discord.Message], owner_id: int) -> int:
    """One transaction per page: the messages and the resume point move together."""
    live = [to_live(m) for m in batch if keeps(m)]
    with store.connect() as conn, conn.transaction():
        kept = store_live(conn, live, owner_id=owner_id, source="backfill")
        record_backfill_page(conn, channel_id, max(m.id for m in batch), kept)
    return kept

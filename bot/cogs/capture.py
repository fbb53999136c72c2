"""Live capture: what people say in channels the bot reads is stored (scrubbed, scoped, `live`)."""

from __future__ import annotations

import asyncio
import logging

import discord
from discord.ext import commands

from bot.services import Services
from persona.history.capture import LiveMessage, store_live

log = logging.getLogger(__name__)


def to_live(message: discord.Message) -> LiveMessage:
    guild = message.guild
    return LiveMessage(
        id=message.id, channel_id=message.channel.id, author_id=message.author.id, author_name=message.author.name,
        display_name=getattr(message.author, "global_name", None) or message.author.display_name, created_at=message.created_at,
        content=message.content, guild_id=guild.id if guild else None, guild_name=guild.name if guild else None,
        channel_name=getattr(message.channel, "name", None), is_thread=isinstance(message.channel, discord.Thread),
        reply_to_id=message.reference.message_id if message.reference else None,
        mentions={m.id: m.display_name for m in message.mentions}, attachments=[a.url for a in message.attachments],
    )


class Capture(commands.Cog):
    def __init__(self, services: Services) -> None:
        self.services = services

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        if message.author.bot or message.type not in (discord.MessageType.default, discord.MessageType.reply):
            return
        await asyncio.to_thread(self._store, to_live(message))

    def _store(self, message: LiveMessage) -> None:
        try:
            with self.services.store.connect() as conn, conn.transaction():
                store_live(conn, [message], owner_id=self.services.owner_id)
        except Exception:  # noqa: BLE001 - one message not kept must not stop the listener
            log.exception("could not store message %s", message.id)


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(Capture(bot.services))  # type: ignore[attr-defined]

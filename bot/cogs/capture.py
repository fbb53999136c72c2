"""Live capture: what people say in channels the bot reads is stored (scrubbed, scoped, `live`).

On every (re)connect the bot catches up: in each channel where it has captured before,
what was said after the newest stored message (while it was down, restarting, or
cut off) is fetched and stored the same way, so a bot killed at any moment ends with
the messages an uninterrupted one would have kept. Up to CATCH_UP_LIMIT messages a
channel; a longer gap is `persona backfill`'s work (it says so in the log).
"""

from __future__ import annotations

import asyncio
import logging

import discord
from discord.ext import commands

from bot.services import Services
from persona.history.capture import LiveMessage, store_live
from persona.history.messages import newest_captured

CATCH_UP_LIMIT = 1000

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


def keeps(message: discord.Message) -> bool:
    """What is stored of what the bot reads (live, on catch-up, in a backfill): people's messages and replies."""
    return not message.author.bot and message.type in (discord.MessageType.default, discord.MessageType.reply)


class Capture(commands.Cog):
    def __init__(self, bot: commands.Bot, services: Services) -> None:
        self.bot = bot
        self.services = services
        self._catching_up = False

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        if keeps(message):
            await asyncio.to_thread(self._store, [to_live(message)])

    @commands.Cog.listener()
    async def on_ready(self) -> None:
        if self._catching_up:  # a reconnect while the last catch-up still runs
            return
        self._catching_up = True
        try:
            caught = 0
            for guild in self.bot.guilds:
                for channel in [*guild.text_channels, *guild.threads]:
                    caught += await self._catch_up(channel)
            if caught:
                log.info("caught up on %d messages said while the bot was away", caught)
        finally:
            self._catching_up = False

    async def _catch_up(self, channel: discord.TextChannel | discord.Thread) -> int:
        newest = await asyncio.to_thread(self._newest, channel.id)
        if newest is None:
            return 0  # never captured here: history is `persona backfill`'s choice, not the bot's
        me = channel.guild.me
        if me is not None and not channel.permissions_for(me).read_message_history:
            return 0
        try:
            missed = [m async for m in channel.history(limit=CATCH_UP_LIMIT, after=discord.Object(id=newest), oldest_first=True)]
        except discord.HTTPException as exc:
            log.warning("could not catch up on #%s: %s", getattr(channel, "name", channel.id), exc)
            return 0
        if len(missed) == CATCH_UP_LIMIT:
            log.warning("more than %d messages in #%s since the bot was last there: run `persona backfill` for the rest",
                        CATCH_UP_LIMIT, getattr(channel, "name", channel.id))
        kept = [to_live(m) for m in missed if keeps(m)]
        if kept:
            await asyncio.to_thread(self._store, kept)
        return len(kept)

    def _newest(self, channel_id: int) -> int | None:
        with self.services.store.connect() as conn:
            return newest_captured(conn, channel_id)

    def _store(self, messages: list[LiveMessage]) -> None:
        try:
            with self.services.store.connect() as conn, conn.transaction():
                store_live(conn, messages, owner_id=self.services.owner_id)
        except Exception:
            log.exception("could not store %d message(s) from %s", len(messages), messages[0].id if messages else "?")


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(Capture(bot, bot.services))  # type: ignore[attr-defined]

"""👍/👎 reactions on the bot's replies, from the owner and trusted users, become feedback."""

from __future__ import annotations

import asyncio
import time

import discord
from discord import app_commands
from discord.ext import commands

from bot.services import Services
from persona.replies import THUMBS, record_feedback

# A reply is sent first and logged a moment later (its Discord message ids are only known
# once sent): a reaction that quick waits this long for the log instead of being lost.
LOG_WAIT_S = 3.0
RATE_UP = "Rate persona reply 👍"
RATE_DOWN = "Rate persona reply 👎"


class Feedback(commands.Cog):
    """Reactions, and the message context menus (right-click a reply → Apps → Rate persona reply)."""

    def __init__(self, bot: commands.Bot, services: Services) -> None:
        self.bot = bot
        self.services = services
        # Context menus cannot live in a class body (discord.py); they are built here.
        self.menus = [
            app_commands.ContextMenu(name=RATE_UP, callback=self._rate_up),
            app_commands.ContextMenu(name=RATE_DOWN, callback=self._rate_down),
        ]

    async def cog_load(self) -> None:
        for menu in self.menus:
            self.bot.tree.add_command(menu)

    async def cog_unload(self) -> None:
        for menu in self.menus:
            self.bot.tree.remove_command(menu.name, type=menu.type)

    async def _rate_up(self, interaction: discord.Interaction, message: discord.Message) -> None:
        await self._rate(interaction, message, 1)

    async def _rate_down(self, interaction: discord.Interaction, message: discord.Message) -> None:
        await self._rate(interaction, message, -1)

    async def _rate(self, interaction: discord.Interaction, message: discord.Message, rating: int) -> None:
        reply_id = await asyncio.to_thread(self._record_menu, message.id, interaction.user.id, rating)
        text = "thanks, noted" if reply_id else "that is not one of my replies"
        await interaction.response.send_message(text, ephemeral=True)

    def _record_menu(self, message_id: int, rater_id: int, rating: int) -> int | None:
        with self.services.store.connect() as conn:
            reply_id = record_feedback(conn, message_id=message_id, channel_id=None, rater_id=rater_id, rating=rating, via="context_menu")
            conn.commit()
        return reply_id

    @commands.Cog.listener()
    async def on_raw_reaction_add(self, event: discord.RawReactionActionEvent) -> None:
        rating = THUMBS.get(str(event.emoji))
        if rating is None or event.user_id not in self.services.raters:
            return
        mine = event.message_author_id is None or (self.bot.user is not None and event.message_author_id == self.bot.user.id)
        deadline = time.monotonic() + (LOG_WAIT_S if mine else 0)
        while await asyncio.to_thread(self._record, event.message_id, event.channel_id, event.user_id, rating) is None:
            if time.monotonic() > deadline:
                return
            await asyncio.sleep(0.1)

    def _record(self, message_id: int, channel_id: int, rater_id: int, rating: int) -> int | None:
        with self.services.store.connect() as conn:
            reply_id = record_feedback(conn, message_id=message_id, channel_id=channel_id, rater_id=rater_id, rating=rating, via="reaction")
            conn.commit()
        return reply_id


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(Feedback(bot, bot.services))  # type: ignore[attr-defined]

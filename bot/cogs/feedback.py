"""👍/👎 reactions on the bot's replies, from the owner and trusted users, become feedback."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import discord
from discord.ext import commands

from persona.capture import THUMBS, record_feedback

if TYPE_CHECKING:
    from bot.client import PersonaBot


class Feedback(commands.Cog):
    def __init__(self, bot: PersonaBot) -> None:
        self.bot = bot

    @commands.Cog.listener()
    async def on_raw_reaction_add(self, event: discord.RawReactionActionEvent) -> None:
        rating = THUMBS.get(str(event.emoji))
        if rating is None or event.user_id not in self.bot.trusted_ids:
            return
        await asyncio.to_thread(self._record, event.message_id, event.channel_id, event.user_id, rating)

    def _record(self, message_id: int, channel_id: int, rater_id: int, rating: int) -> None:
        with self.bot.store.connect() as conn:
            record_feedback(conn, message_id=message_id, channel_id=channel_id, rater_id=rater_id, rating=rating, via="reaction")
            conn.commit()

"""The discord.py client: a `commands.Bot` that loads the cogs in `setup_hook`."""

from __future__ import annotations

import logging
from typing import Any

import discord
from discord.ext import commands

from persona.reply import ReplyEngine

log = logging.getLogger(__name__)


class PersonaBot(commands.Bot):
    def __init__(self, engine: ReplyEngine, store: Any, *, owner_user_id: int, history_limit: int = 12, reply_timeout: float = 120.0,
                 max_pending: int = 20, per_user_rate: int = 6, trusted_ids: list[int] | None = None) -> None:
        intents = discord.Intents.default()
        intents.message_content = True  # privileged: enable "Message Content Intent" in the developer portal
        super().__init__(command_prefix=commands.when_mentioned, intents=intents, help_command=None,
                         allowed_mentions=discord.AllowedMentions.none(), owner_id=owner_user_id)
        self.engine = engine
        self.store = store
        self.owner_user_id = owner_user_id
        self.history_limit = history_limit
        self.reply_timeout = reply_timeout
        self.max_pending = max_pending
        self.settings_per_user_rate = per_user_rate
        self.trusted_ids = {owner_user_id, *(trusted_ids or [])}

    async def setup_hook(self) -> None:
        from bot.cogs.capture import Capture
        from bot.cogs.chat import Chat
        from bot.cogs.feedback import Feedback

        await self.add_cog(Capture(self))
        await self.add_cog(Chat(self))
        await self.add_cog(Feedback(self))

    async def on_message(self, message: discord.Message) -> None:
        """No prefix commands: conversation goes to the Chat cog, commands are slash commands."""

    async def on_ready(self) -> None:
        log.info("connected as %s (%s) to %d servers", self.user, getattr(self.user, "id", "?"), len(self.guilds))

    def is_opted_out(self, user_id: int) -> bool:
        with self.store.connect() as conn:
            row = conn.execute("SELECT opted_out_at IS NOT NULL FROM people WHERE id = %s", (user_id,)).fetchone()
        return bool(row and row[0])

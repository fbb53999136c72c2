"""The discord.py client: a `commands.Bot` that loads the cogs in `setup_hook`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import discord
from discord.ext import commands

from persona.errors import PersonaError
from persona.reply import ReplyEngine

log = logging.getLogger(__name__)


class PersonaBot(commands.Bot):
    def __init__(self, engine: ReplyEngine, store: Any, *, owner_user_id: int, history_limit: int = 12, reply_timeout: float = 120.0,
                 max_pending: int = 20, per_user_rate: int = 6, trusted_ids: list[int] | None = None,
                 retrain: Callable[[str], str] | None = None, schedule: tuple[str, str] | None = None, dev_guild_id: int | None = None,
                 allowed_channels: set[int] | None = None) -> None:
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
        self._retrain = retrain  # blocking: runs the trainer pipeline (training itself in a child process)
        self._schedule = schedule  # (cron, timezone) of the nightly retrain, or None
        self.scheduler: Any = None
        self.dev_guild_id = dev_guild_id
        self.allowed_channels = allowed_channels or set()

    async def setup_hook(self) -> None:
        from bot.cogs.capture import Capture
        from bot.cogs.chat import Chat
        from bot.cogs.feedback import Feedback

        from bot.cogs.admin import Admin
        from bot.cogs.persona import PersonaCommands

        await self.add_cog(Capture(self))
        await self.add_cog(Chat(self))
        await self.add_cog(Feedback(self))
        await self.add_cog(PersonaCommands(self))
        await self.add_cog(Admin(self))
        if self.dev_guild_id:  # instant sync to one server while developing
            guild = discord.Object(self.dev_guild_id)
            self.tree.copy_global_to(guild=guild)
            await self.tree.sync(guild=guild)
        else:
            await self.tree.sync()
        if self._schedule is not None and self._retrain is not None:
            from bot.scheduler import make_scheduler

            self.scheduler = make_scheduler(*self._schedule, self._nightly)
            self.scheduler.start()

    async def close(self) -> None:
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=False)
        await super().close()

    def next_retrain(self) -> Any:
        from bot.scheduler import next_run

        return next_run(self.scheduler)

    async def retrain(self, trigger: str) -> str:
        """Run the incremental retrain off the event loop, then hot-swap a promoted adapter."""
        if self._retrain is None:
            raise PersonaError("retraining is not configured for this bot")
        line = await asyncio.to_thread(self._retrain, trigger)
        version = await asyncio.to_thread(self.engine.refresh_adapter)
        log.info("retrain (%s): %s; replying with %s", trigger, line, f"v{version}" if version else "the base model")
        return line

    async def _nightly(self) -> None:
        try:
            await self.retrain(trigger="schedule")
        except Exception as exc:  # noqa: BLE001 - reported to the owner, the bot keeps running
            log.exception("nightly retrain failed")
            await self._tell_owner(f"the nightly retrain failed: {getattr(exc, 'message', exc)}")

    async def _tell_owner(self, text: str) -> None:
        try:
            owner = self.get_user(self.owner_user_id) or await self.fetch_user(self.owner_user_id)
            await owner.send(text[:2000], allowed_mentions=discord.AllowedMentions.none())
        except discord.HTTPException:
            log.warning("could not DM the owner: %s", text)

    async def on_message(self, message: discord.Message) -> None:
        """No prefix commands: conversation goes to the Chat cog, commands are slash commands."""

    async def on_ready(self) -> None:
        log.info("connected as %s (%s) to %d servers", self.user, getattr(self.user, "id", "?"), len(self.guilds))

    def is_opted_out(self, user_id: int) -> bool:
        with self.store.connect() as conn:
            row = conn.execute("SELECT opted_out_at IS NOT NULL FROM people WHERE id = %s", (user_id,)).fetchone()
        return bool(row and row[0])

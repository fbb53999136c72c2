"""Background work of a running bot: memory grows, adapters swap, the nightly retrain runs.

- every 5 minutes, conversations that have paused are chunked and embedded into memory;
- every minute, a newly active adapter (promoted by a retrain in this or another
  process, or activated by the owner) replaces the one in use, without a restart;
- the nightly incremental retrain on APScheduler's cron, failures DMed to the owner.
"""

from __future__ import annotations

import asyncio
import logging

import discord
from discord.ext import commands, tasks

from bot.scheduler import make_scheduler
from bot.services import Services
from persona import memory
from persona.errors import ModelUnavailable

log = logging.getLogger(__name__)


class Upkeep(commands.Cog):
    def __init__(self, bot: commands.Bot, services: Services) -> None:
        self.bot = bot
        self.services = services
        self.grow_memory.change_interval(seconds=services.memory_refresh_s)
        self.follow_active_adapter.change_interval(seconds=services.adapter_watch_s)

    async def cog_load(self) -> None:
        self.grow_memory.start()
        self.follow_active_adapter.start()
        if self.services.retrain_schedule is not None and self.services.retrain is not None:
            self.services.scheduler = make_scheduler(*self.services.retrain_schedule, self.nightly)
            self.services.scheduler.start()

    async def cog_unload(self) -> None:
        self.grow_memory.cancel()
        self.follow_active_adapter.cancel()
        if self.services.scheduler is not None:
            self.services.scheduler.shutdown(wait=False)
            self.services.scheduler = None

    @tasks.loop(seconds=300)
    async def grow_memory(self) -> None:
        try:
            await asyncio.to_thread(self._refresh_memory)
        except Exception:
            log.exception("memory refresh failed")

    def _refresh_memory(self) -> None:
        with self.services.store.connect() as conn:
            memory.refresh(conn, self.services.engine.embedder)

    @grow_memory.before_loop
    async def _skip_first_memory_round(self) -> None:
        await asyncio.sleep(self.services.memory_refresh_s)  # `persona memory build` ran before start; no rush

    @tasks.loop(seconds=60)
    async def follow_active_adapter(self) -> None:
        try:
            await asyncio.to_thread(self.services.engine.refresh_adapter)
        except ModelUnavailable as exc:  # the model server is away, or lacks the version: one line, tried again next round
            log.warning("still on the previous adapter: %s", exc.message)
        except Exception:
            log.exception("could not switch to the newly active adapter")

    async def nightly(self) -> None:
        try:
            await self.services.run_retrain(trigger="schedule")
        except Exception as exc:
            log.exception("nightly retrain failed")
            await self.tell_owner(f"the nightly retrain failed: {getattr(exc, 'message', exc)}")

    async def tell_owner(self, text: str) -> None:
        owner_id = self.services.owner_id
        try:
            owner = self.bot.get_user(owner_id) or await self.bot.fetch_user(owner_id)
            await owner.send(text[:2000], allowed_mentions=discord.AllowedMentions.none())
        except discord.HTTPException:
            log.warning("could not DM the owner: %s", text)


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(Upkeep(bot, bot.services))  # type: ignore[attr-defined]

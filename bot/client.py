"""The discord.py client: a `commands.Bot` that loads the cogs as extensions in `setup_hook`."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import discord
from discord.ext import commands

from bot.checks import answer_failed_interaction
from bot.command_sync import sync_if_changed
from bot.services import Services
from persona.presence import Announcer

log = logging.getLogger(__name__)

EXTENSIONS = ("bot.cogs.capture", "bot.cogs.chat", "bot.cogs.drafts", "bot.cogs.feedback", "bot.cogs.persona", "bot.cogs.admin", "bot.cogs.upkeep")


class PersonaBot(commands.Bot):
    def __init__(self, services: Services, *, dev_guild_id: int | None = None, presence: Announcer | None = None,
                 synced_commands: Path | None = None, force_sync: bool = False) -> None:
        intents = discord.Intents.default()
        intents.message_content = True  # privileged: enable "Message Content Intent" in the developer portal
        super().__init__(command_prefix=commands.when_mentioned, intents=intents, help_command=None,
                         allowed_mentions=discord.AllowedMentions.none(), owner_id=services.owner_id)
        self.services = services
        self.dev_guild_id = dev_guild_id
        self.presence = presence  # tells the dashboard whether the gateway session is up
        self.synced_commands = synced_commands  # where the last sync's fingerprint is kept (bot/command_sync.py)
        self.force_sync = force_sync
        self.tree.on_error = answer_failed_interaction  # type: ignore[method-assign]

    async def setup_hook(self) -> None:
        for extension in EXTENSIONS:
            await self.load_extension(extension)
        guild = discord.Object(self.dev_guild_id) if self.dev_guild_id else None
        if guild is not None:  # instant sync to one server while developing
            self.tree.copy_global_to(guild=guild)
        await sync_if_changed(self.tree, application_id=self.application_id, guild=guild, record=self.synced_commands, force=self.force_sync)

    async def on_message(self, message: discord.Message) -> None:
        """No prefix commands: conversation goes to the Chat cog, commands are slash commands."""

    async def on_ready(self) -> None:
        log.info("connected as %s (%s) to %d servers", self.user, getattr(self.user, "id", "?"), len(self.guilds))
        await self._presence(connected=True)

    async def on_resumed(self) -> None:
        await self._presence(connected=True)

    async def on_disconnect(self) -> None:
        await self._presence(connected=False)

    async def _presence(self, *, connected: bool) -> None:
        if self.presence is not None:
            await asyncio.to_thread(self.presence.connected if connected else self.presence.disconnected)

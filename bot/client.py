"""The discord.py client: a `commands.Bot` that loads the cogs as extensions in `setup_hook`."""

from __future__ import annotations

import asyncio
import logging

import discord
from discord.ext import commands

from bot.services import Services
from persona.presence import Announcer

log = logging.getLogger(__name__)

EXTENSIONS = ("bot.cogs.capture", "bot.cogs.chat", "bot.cogs.feedback", "bot.cogs.persona", "bot.cogs.admin", "bot.cogs.upkeep")


class PersonaBot(commands.Bot):
    def __init__(self, services: Services, *, dev_guild_id: int | None = None, presence: Announcer | None = None) -> None:
        intents = discord.Intents.default()
        intents.message_content = True  # privileged: enable "Message Content Intent" in the developer portal
        super().__init__(command_prefix=commands.when_mentioned, intents=intents, help_command=None,
                         allowed_mentions=discord.AllowedMentions.none(), owner_id=services.owner_id)
        self.services = services
        self.dev_guild_id = dev_guild_id
        self.presence = presence  # tells the dashboard whether the gateway session is up

    async def setup_hook(self) -> None:
        for extension in EXTENSIONS:
            await self.load_extension(extension)
        if self.dev_guild_id:  # instant sync to one server while developing
            guild = discord.Object(self.dev_guild_id)
            self.tree.copy_global_to(guild=guild)
            await self.tree.sync(guild=guild)
        else:
            await self.tree.sync()

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

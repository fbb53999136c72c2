"""`/retrain`: owner only; the same incremental retrain as `persona retrain` and the nightly job."""

from __future__ import annotations

import logging

import discord
from discord import app_commands
from discord.ext import commands

from bot.checks import owner_only
from bot.services import Services
from persona.errors import PersonaError

log = logging.getLogger(__name__)


class Admin(commands.Cog):
    def __init__(self, bot: commands.Bot, services: Services) -> None:
        self.bot = bot
        self.services = services

    @app_commands.command(name="retrain", description="Owner only: fold new messages and ratings into the persona now")
    @owner_only("only the owner can retrain me")
    async def retrain(self, interaction: discord.Interaction) -> None:
        await interaction.response.defer(thinking=True)
        try:
            line = await self.services.run_retrain(trigger="command")
        except PersonaError as exc:
            line = f"retrain failed: {exc.message}"
        await interaction.followup.send(line, allowed_mentions=discord.AllowedMentions.none())


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(Admin(bot, bot.services))  # type: ignore[attr-defined]

"""Checks on slash commands, as `app_commands.check` decorators, and the one error handler
that answers every failed interaction (discord.py's `CommandTree.on_error`)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

import discord
from discord import app_commands

from persona.errors import PersonaError

log = logging.getLogger(__name__)
T = TypeVar("T")
UNEXPECTED = "something went wrong on my side: the owner can find the details in the bot's log"


class OwnerOnly(app_commands.CheckFailure):
    """Someone other than the owner used an owner-only command; the message says what was refused."""


def owner_only(refusal: str) -> Callable[[T], T]:
    """Only the owner (or a member of the owning team) may run the command; anyone else
    is told `refusal` (an ephemeral line) and nothing runs."""

    async def predicate(interaction: discord.Interaction) -> bool:
        if await interaction.client.is_owner(interaction.user):  # type: ignore[attr-defined]
            return True
        raise OwnerOnly(refusal)

    return app_commands.check(predicate)


async def answer_failed_interaction(interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
    """One ephemeral line for every failed command — even after `defer`, where Discord
    would otherwise show "thinking…" until the token expires — and the log for the rest."""
    original: Any = error.original if isinstance(error, app_commands.CommandInvokeError) else error
    if isinstance(error, app_commands.CheckFailure) and str(error):
        line = str(error)
    elif isinstance(original, PersonaError):
        line = original.message
        log.warning("/%s failed: %s", _name(interaction), line)
    else:
        line = UNEXPECTED
        log.error("/%s failed", _name(interaction), exc_info=original)
    try:
        if interaction.response.is_done():
            await interaction.followup.send(line, ephemeral=True)
        else:
            await interaction.response.send_message(line, ephemeral=True)
    except discord.HTTPException as exc:  # the token expired (15 minutes), or Discord refused: nothing more to tell
        log.warning("could not tell %s that /%s failed: %s", interaction.user, _name(interaction), exc)


def _name(interaction: discord.Interaction) -> str:
    return interaction.command.qualified_name if interaction.command else "?"

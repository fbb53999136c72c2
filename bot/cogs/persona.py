"""`/persona feedback | status | topics | optout | optin | forget | mode`."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from functools import partial

import discord
import psycopg
from discord import app_commands
from discord.ext import commands

from bot.checks import owner_only
from bot.services import Services
from bot.triggers import place_of_interaction
from persona import send_modes
from persona.memory import topics as memory_topics
from persona.privacy.forget import Forgotten, forget_channel, forget_person, forget_range, opt_in, opt_out
from persona.privacy.requests import time_range
from persona.replies import record_feedback
from persona.status import describe, status

_MESSAGE_LINK = re.compile(r"(\d{15,21})\s*$")


def topics_message(known: list[memory_topics.Topic], *, limit: int = 15) -> str:
    """`/persona topics`: one line per topic, covered well first (Discord's 2,000-character limit kept)."""
    if not known:
        return "I don't know much about anything here yet"
    lines = [f"**{label}**\n" + "\n".join(f"• {t.describe()}" for t in chosen[:limit])
             for label, chosen in (("what I know well here", [t for t in known if not t.thin]),
                                   ("thin (only a little)", [t for t in known if t.thin])) if chosen]
    return "\n".join(lines)[:2000]


def message_id_of(text: str | None) -> int | None:
    """A message id from an id or a message link (https://discord.com/channels/g/c/m)."""
    if not text:
        return None
    match = _MESSAGE_LINK.search(text.strip().rstrip("/"))
    return int(match.group(1)) if match else None


class PersonaCommands(commands.GroupCog, group_name="persona", group_description="Talk to the persona's controls"):
    def __init__(self, bot: commands.Bot, services: Services) -> None:
        self.bot = bot
        self.services = services
        super().__init__()


    @app_commands.command(name="feedback", description="Rate the persona's reply (default: its latest here)")
    @app_commands.describe(rating="Was it like them?", correction="What they would have said instead", message="Link or id of the reply")
    @app_commands.choices(rating=[app_commands.Choice(name="👍", value="up"), app_commands.Choice(name="👎", value="down")])
    async def feedback(self, interaction: discord.Interaction, rating: app_commands.Choice[str], correction: str | None = None,
                       message: str | None = None) -> None:
        value = 1 if rating.value == "up" else -1
        reply_id = await asyncio.to_thread(self.services.in_transaction, lambda conn: record_feedback(
            conn, message_id=message_id_of(message), channel_id=interaction.channel_id, rater_id=interaction.user.id,
            rating=value, via="command", correction=correction))
        text = "thanks, noted" if reply_id else "I couldn't find a reply of mine to rate here"
        await interaction.response.send_message(text, ephemeral=True)

    def _topics_here(self, conn: psycopg.Connection, interaction: discord.Interaction) -> list[memory_topics.Topic]:
        return memory_topics.topics_for(conn, asker_id=interaction.user.id, place=place_of_interaction(interaction), owner_id=self.services.owner_id)

    @app_commands.command(name="status", description="Active adapter, data counts, last and next retrain, what I know well")
    async def status(self, interaction: discord.Interaction) -> None:
        summary, known = await asyncio.to_thread(self.services.in_transaction, lambda conn: (status(conn), self._topics_here(conn, interaction)))
        text = describe(summary, self.services.next_retrain()) + "\n" + memory_topics.describe(known, limit=5)
        await interaction.response.send_message(text, ephemeral=True)

    @app_commands.command(name="topics", description="What I can talk about well here, and what I know little about")
    async def topics(self, interaction: discord.Interaction) -> None:
        known = await asyncio.to_thread(self.services.in_transaction, lambda conn: self._topics_here(conn, interaction))
        await interaction.response.send_message(topics_message(known), ephemeral=True)

    @app_commands.command(name="optout", description="Delete what you said from the persona's memory and training data, and keep it out")
    async def optout(self, interaction: discord.Interaction) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        result = await asyncio.to_thread(self.services.forget, lambda conn: opt_out(conn, interaction.user.id, interaction.user.name))
        await interaction.followup.send(f"done: {result.describe()}; nothing new from you will be kept", ephemeral=True)

    @app_commands.command(name="optin", description="Let the persona keep your new messages again")
    async def optin(self, interaction: discord.Interaction) -> None:
        changed = await asyncio.to_thread(self.services.in_transaction, lambda conn: opt_in(conn, interaction.user.id))
        await interaction.response.send_message("welcome back" if changed else "you were not opted out", ephemeral=True)

    @app_commands.command(name="forget", description="Owner only: forget a person, a channel, or a time range")
    @app_commands.describe(user="Forget everything from and with this person", channel="Forget this channel",
                           since="Start of a time range: YYYY-MM-DD or YYYY-MM-DDTHH:MM, UTC unless an offset (+02:00) is given",
                           until="End of the range (exclusive), same form")
    @owner_only("only the owner can make me forget things")
    async def forget(self, interaction: discord.Interaction, user: discord.User | None = None, channel: discord.abc.GuildChannel | None = None,
                     since: str | None = None, until: str | None = None) -> None:
        action: Callable[[psycopg.Connection], Forgotten]
        if user is not None:
            action = partial(forget_person, person_id=user.id)
        elif channel is not None:
            action = partial(forget_channel, channel_id=channel.id)
        elif since and until:
            start, end = time_range(since, until)  # a malformed date: one line from the tree's error handler (bot/checks.py)
            action = partial(forget_range, start=start, end=end)
        else:
            await interaction.response.send_message("say what to forget: a user, a channel, or since + until", ephemeral=True)
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        result = await asyncio.to_thread(self.services.forget, action)
        retrain = " (the next retrain trains one without it)" if result.needs_retrain else ""
        await interaction.followup.send(f"forgotten: {result.describe()}{retrain}", ephemeral=True)

    @app_commands.command(name="mode", description="Owner only: how I answer here — auto, draft (to your DMs first) or off")
    @app_commands.describe(mode="auto: reply at once; draft: you send, edit or discard each reply first; off: no replies; default: "
                                "back to the next wider place (or PERSONA_SEND_MODE)",
                           where="This channel (the default in a server), this whole server, or all DMs (the default in a DM)",
                           user="Instead: your DMs with this person")
    @app_commands.choices(mode=[app_commands.Choice(name=m, value=m) for m in (*send_modes.MODES, "default")],
                          where=[app_commands.Choice(name="this channel", value="channel"), app_commands.Choice(name="this server", value="guild"),
                                 app_commands.Choice(name="all DMs", value="dms")])
    @owner_only("only the owner can change how I answer")
    async def mode(self, interaction: discord.Interaction, mode: app_commands.Choice[str], where: app_commands.Choice[str] | None = None,
                   user: discord.User | None = None) -> None:
        place = _mode_place(interaction, where.value if where else None, user)
        if place is None:
            await interaction.response.send_message("this server: use it in one of the server's channels", ephemeral=True)
            return
        if mode.value == "default":
            await asyncio.to_thread(self.services.in_transaction, lambda conn: send_modes.clear(conn, place))
            text = f"{place.describe()}: back to the default"
        else:
            await asyncio.to_thread(self.services.in_transaction, lambda conn: send_modes.set_mode(conn, place, mode.value))
            text = f"{place.describe()}: {mode.value}" + {"auto": " (I reply at once, in your name)",
                                                             "draft": " (each reply comes to your DMs first)", "off": " (no replies)"}[mode.value]
        await interaction.response.send_message(text, ephemeral=True)


def _mode_place(interaction: discord.Interaction, where: str | None, user: discord.User | None) -> send_modes.Place | None:
    """Where /persona mode applies; None: "this server" asked outside a server."""
    if user is not None:
        return send_modes.Place("user", user.id)
    if where == "dms" or (where is None and interaction.guild_id is None):
        return send_modes.Place("dms")
    if where == "guild":
        return send_modes.Place("guild", interaction.guild_id) if interaction.guild_id else None
    if interaction.guild_id is None:  # "this channel" in a DM: the owner's own DMs are always answered
        return send_modes.Place("dms")
    return send_modes.Place("channel", interaction.channel_id or 0)


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(PersonaCommands(bot, bot.services))  # type: ignore[attr-defined]

"""When the bot answers, where it is, and how fast it may: no Discord I/O here."""

from __future__ import annotations

import discord
from discord.ext import commands

from persona.privacy.scopes import Place
from persona.prompts import place_label


def should_answer(*, is_dm: bool, author_is_bot: bool, is_system: bool, mentions_bot: bool, replies_to_bot: bool) -> bool:
    """A DM, a mention of the bot user itself (not @everyone, @here or a role), or a reply to the bot."""
    if author_is_bot or is_system:
        return False
    return is_dm or mentions_bot or replies_to_bot


def per_user_cooldown(per_minute: int) -> commands.CooldownMapping:
    """At most `per_minute` replies per person per minute (discord.py's own cooldown buckets)."""
    return commands.CooldownMapping.from_cooldown(per_minute, 60.0, commands.BucketType.user)


def place_of(message: discord.Message) -> tuple[Place, str]:
    """Where a message was written (for the scope rules) and how the place reads in the
    prompt — the same label training examples of that place carry."""
    channel = message.channel
    if message.guild is not None:
        kind = "thread" if isinstance(channel, discord.Thread) else "guild_text"
        name = getattr(channel, "name", None)
        return Place.guild(message.guild.id, channel.id), place_label(kind, name, message.guild.name, None)
    if isinstance(channel, discord.GroupChannel):
        return Place("group_dm", channel_id=channel.id), place_label("group_dm", channel.name, None, None)
    return Place.dm(channel.id), place_label("dm", None, None, message.author.display_name)


def place_of_interaction(interaction: discord.Interaction) -> Place:
    """Where a slash command was used: the scope rules of what it may show."""
    if interaction.guild_id is not None:
        return Place.guild(interaction.guild_id, interaction.channel_id)
    if isinstance(interaction.channel, discord.GroupChannel):
        return Place("group_dm", channel_id=interaction.channel_id)
    return Place.dm(interaction.channel_id)

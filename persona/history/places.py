"""Where someone asks, from the ids a person types: a channel id (looked up among stored
channels for its server and kind), a server id, or neither. The one parser the CLI's
`--channel/--guild` options and the dashboard's place picker use."""

from __future__ import annotations

import psycopg

from persona.errors import ConfigError
from persona.history.messages import channel as stored_channel
from persona.privacy.scopes import Place, place_of_channel


def place_of_ids(conn: psycopg.Connection, channel: int | None, guild: int | None, *, default: Place | None = None) -> Place:
    """The place `channel` and `guild` name; neither: `default` (a DM with the bot unless given).
    A channel persona has not stored needs its server id; a server alone is the whole server."""
    if channel is None:
        if guild is not None:
            return Place(kind="guild", guild_id=guild)
        return default if default is not None else Place.dm()
    info = stored_channel(conn, channel)
    if info is None:
        if guild is None:
            raise ConfigError(f"--channel {channel} is not a channel persona knows: add --guild GUILD_ID (or leave --channel out for a DM)")
        return Place.guild(guild, channel)
    place = place_of_channel(info.kind, channel, info.guild_id or guild)
    if place is None:
        raise ConfigError(f"channel {channel} has no known server: add --guild GUILD_ID")
    return place

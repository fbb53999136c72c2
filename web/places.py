"""The "as whom, where" pickers of the memory explorer and the playground: choices built
from stored people and channels, and a choice turned back into (asker, Place)."""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

from persona.edge import parse_id
from persona.errors import PersonaError
from persona.history import messages, people
from persona.history.places import place_of_ids
from persona.privacy.scopes import Place, place_of_channel

TERMINAL = "terminal"
DM_WITH_BOT = "dm"


@dataclass(frozen=True)
class Choice:
    value: str
    label: str


def askers(conn: psycopg.Connection, owner_id: int | None) -> list[Choice]:
    chosen = [Choice("owner", "the owner")]
    chosen += [Choice(str(p.id), f"{p.name or p.id} ({p.id})") for p in people.listed(conn)
               if p.id != owner_id and not p.is_bot and p.opted_out_at is None]
    return chosen


def places(channels: list[messages.ChannelSummary]) -> list[Choice]:
    """The terminal, a DM with the bot, and every stored channel someone can ask in (`channels`: `messages.channels_listed`)."""
    chosen = [Choice(TERMINAL, "the owner's terminal (everything)"), Choice(DM_WITH_BOT, "a DM with the bot")]
    for c in channels:
        if place_of_channel(c.info.kind, c.info.id, c.info.guild_id) is not None:
            chosen.append(Choice(f"channel:{c.info.id}", f"{c.label()} · {c.messages:,} messages"))
    return chosen


def resolve(conn: psycopg.Connection, asker: str, place: str, owner_id: int | None) -> tuple[int | None, Place]:
    """(who asks, where) from the pickers' values; the owner may ask anywhere, the terminal is the owner's alone."""
    if asker in ("", "owner"):
        asker_id = owner_id
    else:
        asker_id = parse_id(asker, "who asks")
    if place in ("", TERMINAL):
        if asker_id != owner_id:
            raise PersonaError("only the owner asks at the terminal: pick a DM or a channel for anyone else")
        return asker_id, Place.terminal()
    if place == DM_WITH_BOT:
        return asker_id, Place.dm()
    kind, _, raw = place.partition(":")
    channel_id = parse_id(raw, "the place") if kind == "channel" else None
    if channel_id is None or messages.channel(conn, channel_id) is None:
        raise PersonaError(f"{place[:60]!r} is not a place persona knows: pick one from the list")
    return asker_id, place_of_ids(conn, channel_id, None)

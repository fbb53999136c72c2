"""Scopes: who a stored message or memory may be shown to (see the privacy model).

`dm:<user_id>` a DM with that user · `group:<channel_id>` a group DM ·
`guild:<guild_id>` a server · `private` the owner's notes and journals.
A negative id stands for an unknown other side (a deleted user, a server the data
does not name): nobody can ever ask from there, so only the owner sees it.
"""

from __future__ import annotations

from dataclasses import dataclass

PRIVATE = "private"


def dm_scope(other_user_id: int) -> str:
    return f"dm:{other_user_id}"


def group_scope(channel_id: int) -> str:
    return f"group:{channel_id}"


def guild_scope(guild_id: int) -> str:
    return f"guild:{guild_id}"


def channel_scope(kind: str, *, channel_id: int, guild_id: int | None, other_user_id: int | None) -> str:
    """The scope of a channel of `kind`; the caller supplies a synthetic id for unknown sides."""
    if kind == "dm":
        if other_user_id is None:
            raise ValueError("a DM scope needs the other user's id")
        return dm_scope(other_user_id)
    if kind == "group_dm":
        return group_scope(channel_id)
    if kind == "notes":
        return PRIVATE
    if guild_id is None:
        raise ValueError("a server channel's scope needs its guild id")
    return guild_scope(guild_id)


@dataclass(frozen=True)
class Place:
    """Where a question is asked: a DM with the bot, a group DM, a server channel, or
    the owner's terminal (`persona chat`)."""

    kind: str  # "dm" | "group_dm" | "guild" | "terminal"
    channel_id: int | None = None
    guild_id: int | None = None

    @classmethod
    def dm(cls, channel_id: int | None = None) -> Place:
        return cls("dm", channel_id=channel_id)

    @classmethod
    def guild(cls, guild_id: int, channel_id: int | None = None) -> Place:
        return cls("guild", channel_id=channel_id, guild_id=guild_id)

    @classmethod
    def terminal(cls) -> Place:
        return cls("terminal")


def place_of_channel(kind: str, channel_id: int, guild_id: int | None) -> Place | None:
    """Where someone asking in a stored channel is (None: a server channel whose server
    is not known, or a channel nobody asks in, such as notes)."""
    if kind == "dm":
        return Place.dm(channel_id)
    if kind == "group_dm":
        return Place("group_dm", channel_id=channel_id)
    if kind in ("notes", "other") or guild_id is None:
        return None
    return Place.guild(guild_id, channel_id)


def readable_scopes(asker_id: int | None, place: Place, owner_id: int | None) -> list[str] | None:
    """The scopes whose memories may be shown to `asker_id` at `place`; None means all.

    The place decides first, because everyone there reads the answer: in a server only
    that server's memories, even when the owner asks. In a DM with the bot, the owner
    reads everything (private notes included) and anyone else only their own DMs with
    the owner. The terminal is the owner's own.
    """
    if place.kind == "terminal":
        return None
    if place.kind == "guild":
        if place.guild_id is None:
            raise ValueError("a server place needs its guild id")
        return [guild_scope(place.guild_id)]
    if place.kind == "group_dm":
        if place.channel_id is None:
            raise ValueError("a group DM place needs its channel id")
        return [group_scope(place.channel_id)]
    if place.kind == "dm":
        if asker_id is None:
            return []
        if owner_id is not None and asker_id == owner_id:
            return None
        return [dm_scope(asker_id)]
    raise ValueError(f"unknown place kind {place.kind!r}")


def asked_within(scope: str, channel_id: int | None = None) -> tuple[int | None, Place]:
    """An asker and a place whose readable scopes are exactly `scope` (for an owner that
    is not the asker): how training recalls for an example as someone in its own
    conversation would, without ever reaching past it."""
    kind, _, number = scope.partition(":")
    if kind == "dm":
        return int(number), Place.dm()
    if kind == "group":
        return None, Place("group_dm", channel_id=int(number))
    if kind == "guild":
        return None, Place.guild(int(number))
    if scope == PRIVATE:
        return None, Place.terminal()
    raise ValueError(f"unknown scope {scope!r}")

"""Scopes: who a stored message or memory may be shown to (see the privacy model).

`dm:<user_id>` a DM with that user · `group:<channel_id>` a group DM ·
`guild:<guild_id>` a server · `private` the owner's notes and journals.
A negative id stands for an unknown other side (a deleted user, a server the data
does not name): nobody can ever ask from there, so only the owner sees it.
"""

from __future__ import annotations

PRIVATE = "private"
CONVERSATION_KINDS = ("dm", "group_dm", "guild_text", "thread", "voice", "forum", "other")


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

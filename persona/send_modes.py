"""Where the persona may speak in the owner's name: the `send_modes` table's one home.

A mode is set per place: one server channel, a whole server, the DMs of one person, or
all DMs. `auto` sends the reply at once, `draft` holds it for the owner (persona/drafts.py),
`off` makes no reply. The most specific mode wins — a channel's over its server's, a
person's DMs over all DMs — and where none is set, PERSONA_SEND_MODE does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal, get_args

import psycopg

from persona.errors import ConfigError

Mode = Literal["auto", "draft", "off"]
PlaceKind = Literal["channel", "guild", "user", "dms"]
MODES: tuple[str, ...] = get_args(Mode)
ALL_DMS = 0  # place_id of the `dms` row


@dataclass(frozen=True)
class Place:
    """Where a mode applies: ("channel", id), ("guild", id), ("user", id) for that person's DMs, ("dms", 0)."""

    kind: PlaceKind
    id: int = ALL_DMS

    def describe(self) -> str:
        return {"channel": f"channel {self.id}", "guild": f"server {self.id}", "user": f"DMs with {self.id}", "dms": "all DMs"}[self.kind]


@dataclass(frozen=True)
class SetMode:
    place: Place
    mode: str
    set_at: datetime


def checked(mode: str) -> Mode:
    if mode not in MODES:
        raise ConfigError(f"unknown send mode {mode!r}: use one of {', '.join(MODES)}")
    return mode  # type: ignore[return-value]


def set_mode(conn: psycopg.Connection, place: Place, mode: str) -> None:
    conn.execute(
        "INSERT INTO send_modes (place, place_id, mode) VALUES (%s, %s, %s) "
        "ON CONFLICT (place, place_id) DO UPDATE SET mode = EXCLUDED.mode, set_at = now()",
        (place.kind, place.id, checked(mode)),
    )


def clear(conn: psycopg.Connection, place: Place) -> bool:
    """Drop a place's own mode (it falls back to the next less specific one); False when none was set."""
    return conn.execute("DELETE FROM send_modes WHERE place = %s AND place_id = %s", (place.kind, place.id)).rowcount > 0


def listed(conn: psycopg.Connection) -> list[SetMode]:
    rows = conn.execute("SELECT place, place_id, mode, set_at FROM send_modes ORDER BY place, place_id").fetchall()
    return [SetMode(Place(r[0], r[1]), r[2], r[3]) for r in rows]


def mode_for(conn: psycopg.Connection, default: str, *, channel_id: int, guild_id: int | None, person_id: int, group_dm: bool = False) -> Mode:
    """The mode for a message in `channel_id` (of `guild_id`; None: a DM with `person_id`): the
    most specific one set, else `default`. A group DM is its own place (set by its channel
    id): it sends automatically only where the owner set `auto` for that group."""
    if group_dm:
        row = conn.execute("SELECT mode FROM send_modes WHERE place = 'channel' AND place_id = %s", (channel_id,)).fetchone()
        return row[0] if row else ("draft" if checked(default) == "auto" else checked(default))
    candidates = [("channel", channel_id), ("guild", guild_id)] if guild_id is not None else [("user", person_id), ("dms", ALL_DMS)]
    rows = dict(conn.execute(
        "SELECT place, mode FROM send_modes WHERE (place, place_id) IN ((%s, %s), (%s, %s))",
        (candidates[0][0], candidates[0][1], candidates[1][0], candidates[1][1]),
    ).fetchall())
    for kind, _ in candidates:
        if kind in rows:
            return rows[kind]
    return checked(default)


def forget_channel(conn: psycopg.Connection, channel_id: int) -> int:
    return conn.execute("DELETE FROM send_modes WHERE place = 'channel' AND place_id = %s", (channel_id,)).rowcount


def forget_person(conn: psycopg.Connection, person_id: int) -> int:
    return conn.execute("DELETE FROM send_modes WHERE place = 'user' AND place_id = %s", (person_id,)).rowcount

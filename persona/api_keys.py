"""Keys for `persona serve`: the `api_keys` table's one home.

A key is made for an audience — who asks and where — and every request made with it is
answered as that person in that place would be answered in Discord: recall reads only
the memories `readable_scopes` allows them there. The owner's key (no person) reads
everything, as in the terminal. Only a SHA-256 of each key is stored: keys are 256-bit
random tokens, so a fast hash is as safe as a slow one (password hashing exists for
guessable secrets) and checking a request costs microseconds.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg import sql

from persona.privacy.scopes import Place

PREFIX = "persona-"


@dataclass(frozen=True)
class ApiKey:
    id: int
    name: str
    asker_id: int | None  # None: the owner
    place: Place
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @property
    def is_owner(self) -> bool:
        return self.asker_id is None

    def describe(self) -> str:
        who = "the owner" if self.is_owner else f"user {self.asker_id}"
        where = {"terminal": "everywhere (the owner's terminal)", "dm": "in a DM with the bot",
                 "group_dm": f"in group DM {self.place.channel_id}",
                 "guild": f"in server {self.place.guild_id}" + (f", channel {self.place.channel_id}" if self.place.channel_id else "")}
        return f"{who}, {where[self.place.kind]}"


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def create(conn: psycopg.Connection, *, asker_id: int | None, place: Place, name: str = "") -> tuple[ApiKey, str]:
    """A new key for this audience; returns it and the token, which is shown once and never stored."""
    if asker_id is None and place.kind != "terminal":
        raise ValueError("the owner's key reads everything: make it for the terminal place")
    token = PREFIX + secrets.token_urlsafe(32)
    row = conn.execute(
        "INSERT INTO api_keys (name, token_sha256, asker_id, place_kind, channel_id, guild_id) VALUES (%s, %s, %s, %s, %s, %s) "
        "RETURNING id, created_at",
        (name, _digest(token), asker_id, place.kind, place.channel_id, place.guild_id),
    ).fetchone()
    return ApiKey(row[0], name, asker_id, place, row[1], None, None), token


_COLUMNS = sql.SQL("id, name, asker_id, place_kind, channel_id, guild_id, created_at, last_used_at, revoked_at")


def _key(row: tuple) -> ApiKey:
    return ApiKey(row[0], row[1], row[2], Place(row[3], channel_id=row[4], guild_id=row[5]), row[6], row[7], row[8])


def authenticate(conn: psycopg.Connection, token: str) -> ApiKey | None:
    """The live key `token` is, or None (unknown or revoked; an opt-out deletes the person's keys)."""
    row = conn.execute(sql.SQL("SELECT {} FROM api_keys WHERE token_sha256 = %s AND revoked_at IS NULL").format(_COLUMNS),
                       (_digest(token),)).fetchone()
    return _key(row) if row else None


def mark_used(conn: psycopg.Connection, key_id: int) -> None:
    conn.execute("UPDATE api_keys SET last_used_at = now() WHERE id = %s", (key_id,))


def listed(conn: psycopg.Connection, *, include_revoked: bool = False) -> list[ApiKey]:
    rows = conn.execute(sql.SQL("SELECT {} FROM api_keys WHERE %s OR revoked_at IS NULL ORDER BY id").format(_COLUMNS), (include_revoked,)).fetchall()
    return [_key(r) for r in rows]


def revoke(conn: psycopg.Connection, key_id: int) -> bool:
    """Stop accepting a key (kept, marked revoked, so the list shows what was issued)."""
    return conn.execute("UPDATE api_keys SET revoked_at = now() WHERE id = %s AND revoked_at IS NULL", (key_id,)).rowcount > 0


def delete_for_person(conn: psycopg.Connection, person_id: int) -> int:
    """Delete every key made for a person (opt-out and forget: nothing of theirs is kept)."""
    return conn.execute("DELETE FROM api_keys WHERE asker_id = %s", (person_id,)).rowcount

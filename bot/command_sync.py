"""Slash commands are synced with Discord only when their definitions changed.

discord.py's maintainers advise against syncing on every start: the endpoint is rate
limited per day and a sync changes nothing when the commands are the same. The synced
definitions' fingerprint is kept in PERSONA_HOME (per application and per server), and a
start whose commands have the same fingerprint skips the sync; `persona run
--sync-commands` forces one (e.g. after commands were removed in the developer portal).
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import discord
from discord import app_commands

from persona.files import write_text_whole

log = logging.getLogger(__name__)


def fingerprint(tree: app_commands.CommandTree, guild: discord.abc.Snowflake | None) -> str:
    """A hash of the command definitions Discord would receive for `guild` (None: global)."""
    payload = sorted((command.to_dict(tree) for command in tree.get_commands(guild=guild)), key=lambda c: (c.get("type", 1), c["name"]))
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


async def sync_if_changed(tree: app_commands.CommandTree, *, application_id: int | None, guild: discord.abc.Snowflake | None,
                          record: Path | None, force: bool = False) -> bool:
    """Sync the tree's commands for `guild` unless the last sync recorded in `record` sent
    the same definitions; returns whether it synced. Without `record`, always syncs."""
    key = f"{application_id}:{guild.id if guild else 'global'}"
    seen = _read(record) if record is not None else {}
    current = fingerprint(tree, guild)
    if not force and seen.get(key) == current:
        log.info("slash commands unchanged since the last sync: not synced (persona run --sync-commands forces it)")
        return False
    await tree.sync(guild=guild)
    log.info("slash commands synced %s", f"to server {guild.id}" if guild else "globally (up to an hour to show everywhere)")
    if record is not None:
        record.parent.mkdir(parents=True, exist_ok=True)
        write_text_whole(record, json.dumps(seen | {key: current}, indent=2))
    return True


def _read(record: Path) -> dict[str, str]:
    try:
        data = json.loads(record.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}

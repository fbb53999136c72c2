"""Discord's official data package ("Request all of my data"), as a .zip or a folder.

The package holds only the messages its owner sent. Its layout changed over the years
(see the design notes): folder names with and without the `c` prefix, lower-case,
capitalised or translated top-level folders, `messages.json` or (before 2024)
`messages.csv`, integer or string channel types. Channels are therefore found by the
pattern `*/c?<digits>/channel.json`, case-insensitively, never by fixed names.
"""

from __future__ import annotations

import csv
import logging
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from ingest.files import FileTree
from ingest.ids import synthetic_id
from ingest.loader import Channel, ImportSession, ImportSummary, IngestError, Person, iso_timestamp, snowflake, text_field
from ingest.progress import ImportProgress
from persona.privacy.scopes import channel_scope
from persona.storage.store import Store

log = logging.getLogger(__name__)

SOURCE = "package"
_CHANNEL_FILE = re.compile(r"(?:^|/)c?(\d+)/channel\.json$", re.I)
_USER_FILE = re.compile(r"(?:^|/)user\.json$", re.I)
_INDEX_FILE = re.compile(r"(?:^|/)index\.json$", re.I)
_CSV_HEADER = ["id", "timestamp", "contents", "attachments"]
_DM_LABEL = re.compile(r"^Direct Message with (.+?)(?:#\d{1,4})?$")
_KINDS: dict[Any, str] = {
    0: "guild_text", 5: "guild_text", 1: "dm", 3: "group_dm", 2: "voice", 13: "voice",
    10: "thread", 11: "thread", 12: "thread", 15: "forum", 16: "forum",
    "GUILD_TEXT": "guild_text", "GUILD_NEWS": "guild_text", "GUILD_ANNOUNCEMENT": "guild_text",
    "DM": "dm", "GROUP_DM": "group_dm", "GUILD_VOICE": "voice", "GUILD_STAGE_VOICE": "voice",
    "PUBLIC_THREAD": "thread", "PRIVATE_THREAD": "thread", "ANNOUNCEMENT_THREAD": "thread", "NEWS_THREAD": "thread",
    "GUILD_FORUM": "forum", "GUILD_MEDIA": "forum",
}


def ingest_discord_package(store: Store, path: Path, *, owner_id: int | None, progress: ImportProgress | None = None) -> ImportSummary:
    """Import every channel of the package at `path`; one transaction, nothing stored on error."""
    progress = progress or ImportProgress.quiet()
    with FileTree(path) as tree:
        channel_files = [name for name in tree.names if _CHANNEL_FILE.search(name)]
        if not channel_files:
            raise IngestError(
                f"{path} is not a Discord data package: it has no Messages/c<id>/channel.json "
                "(request it under User Settings → Data & Privacy → Request all of my data)"
            )
        owner, owner_name = _owner(tree, owner_id)
        labels = _index_labels(tree)
        by_lower = {name.lower(): name for name in tree.names}
        with ImportSession(store, SOURCE, str(path)) as session, progress.task(len(channel_files)) as task:
            session.add_person(Person(id=owner, name=owner_name or session.names.get(owner, ""), is_owner=True))
            for channel_file in channel_files:
                folder = channel_file.rsplit("/", 1)[0] if "/" in channel_file else ""
                channel = _channel(tree.read_json(channel_file), tree.describe(channel_file), owner, labels, session)
                count = _import_messages(tree, by_lower, folder, channel, owner, session)
                session.files += 1
                task.advance(files=1, messages=count)
            return session.finish()


def _owner(tree: FileTree, configured: int | None) -> tuple[int, str]:
    """The owner's id (and name) from Account/user.json, else from PERSONA_OWNER_ID."""
    found: int | None = None
    name = ""
    for file in tree.names:
        if _USER_FILE.search(file):
            data = tree.read_json(file)
            if isinstance(data, dict) and str(data.get("id", "")).isdigit():
                found = int(data["id"])
                name = str(data.get("global_name") or data.get("username") or "")
                break
    if found is not None and configured is not None and found != configured:
        raise IngestError(f"this package belongs to user {found}, but PERSONA_OWNER_ID is {configured}: import your own package or fix the setting")
    owner = found if found is not None else configured
    if owner is None:
        raise IngestError("the package has no Account/user.json to tell whose it is: set PERSONA_OWNER_ID to your Discord user id")
    return owner, name


def _index_labels(tree: FileTree) -> dict[int, str]:
    """Channel id → label from Messages/index.json (`null` for deleted channels)."""
    for name in tree.names:
        if _INDEX_FILE.search(name):
            data = tree.read_json(name)
            if isinstance(data, dict):
                return {int(k): v for k, v in data.items() if str(k).isdigit() and isinstance(v, str)}
    return {}


def _channel(data: Any, where: str, owner: int, labels: dict[int, str], session: ImportSession) -> Channel:
    if not isinstance(data, dict) or not str(data.get("id", "")).isdigit():
        raise IngestError(f"{where} has no channel id: is this really a Discord data package?")
    channel_id = int(data["id"])
    kind = _KINDS.get(data.get("type"), "other")
    guild = data.get("guild") if isinstance(data.get("guild"), dict) else {}
    guild_id = int(guild["id"]) if str(guild.get("id", "")).isdigit() else None
    label = labels.get(channel_id)
    recipients = [int(r) for r in data.get("recipients") or [] if str(r).isdigit()]
    other = next((r for r in recipients if r != owner), None)
    if kind == "dm" and other is None:
        # A deleted user ("Deleted User" in recipients) or a DM the package no longer describes.
        other = synthetic_id("package-unknown-dm", channel_id)
        session.add_person(Person(id=other, name="Deleted User"))
    elif kind == "dm":
        match = _DM_LABEL.match(label or "")
        session.add_person(Person(id=other, name=match.group(1) if match else ""))
    # A server channel the package no longer names the server of: only the owner may see it.
    scope_guild = guild_id if guild_id is not None else synthetic_id("package-unknown-guild", channel_id)
    channel = Channel(
        id=channel_id,
        kind=kind,
        scope=channel_scope(kind, channel_id=channel_id, guild_id=scope_guild, other_user_id=other),
        name=data.get("name") or (None if kind == "dm" else _label_name(label)),
        guild_id=guild_id,
        guild_name=guild.get("name"),
        recipients=recipients,
    )
    session.add_channel(channel)
    return channel


def _label_name(label: str | None) -> str | None:
    if not label:
        return None
    return label.split(" in ", 1)[0] if " in " in label else label


def _import_messages(tree: FileTree, by_lower: dict[str, str], folder: str, channel: Channel, owner: int, session: ImportSession) -> int:
    prefix = f"{folder}/" if folder else ""
    json_name = by_lower.get(f"{prefix}messages.json".lower())
    csv_name = by_lower.get(f"{prefix}messages.csv".lower())
    if json_name is not None:
        where = tree.describe(json_name)
        rows: Iterable[tuple[Any, Any, Any, Any]] = _json_rows(tree.iter_json_array(json_name), where)
    elif csv_name is not None:
        where = tree.describe(csv_name)
        rows = _csv_rows(tree, csv_name, where)
    else:
        return 0  # a channel folder without messages: an empty channel
    count = 0
    for number, (raw_id, timestamp, contents, attachments) in enumerate(rows, 1):
        message_id = snowflake(raw_id, f"{where} message {number}")
        created = iso_timestamp(timestamp, f"{where} message {number}")
        contents = text_field(contents, f"{where} message {number}", "Contents")
        attachments = text_field(attachments, f"{where} message {number}", "Attachments")
        content = contents or ""
        urls = attachments.split() if attachments else []
        if not content and not urls:
            session.skip(channel.kind, "empty")
            continue
        session.add_message(message_id, channel.id, owner, created, content, attachments=urls)
        count += 1
    return count


def _json_rows(items: Iterable[Any], where: str) -> Iterator[tuple[Any, Any, Any, Any]]:
    for item in items:
        if not isinstance(item, dict):
            raise IngestError(f"{where} holds something that is not a message: {str(item)[:60]!r}")
        yield item.get("ID"), item.get("Timestamp"), item.get("Contents"), item.get("Attachments")


def _csv_rows(tree: FileTree, name: str, where: str) -> Iterator[tuple[Any, Any, Any, Any]]:
    with tree.open_text(name) as text:
        yield from _parse_csv(csv.reader(text), where)


def _parse_csv(reader: Any, where: str) -> Iterator[tuple[Any, Any, Any, Any]]:
    try:
        header = next(reader, None)
        if header is None:
            return
        if [h.strip().lower() for h in header] != _CSV_HEADER:
            raise IngestError(f"{where} has the header {','.join(header)[:80]!r}, expected ID,Timestamp,Contents,Attachments")
        for row in reader:
            if not row:
                continue
            if len(row) != 4:
                raise IngestError(f"{where} line {reader.line_num} has {len(row)} fields, expected 4 (damaged CSV?)")
            yield row[0], row[1], row[2], row[3]
    except csv.Error as exc:
        raise IngestError(f"{where} line {reader.line_num} is not valid CSV ({exc})") from None
    except UnicodeDecodeError:
        raise IngestError(f"{where} is not UTF-8 text (bad byte near line {reader.line_num}): re-export it or convert it to UTF-8") from None

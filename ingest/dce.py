"""DiscordChatExporter JSON exports: whole conversations, everyone's messages.

Files can be gigabytes, so messages are parsed streaming (ijson, C backend): memory
stays flat in the file size. `guild` and `channel` come before `messages` in the file
and are read first with a short partial parse.

Exporting DMs with DiscordChatExporter needs a user token, which Discord's terms
forbid; persona imports files people already have and does not help make them.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, BinaryIO

import ijson

from ingest.files import find_files, json_error, json_events
from ingest.ids import synthetic_id
from ingest.loader import MAX_ID, Channel, ImportSession, ImportSummary, IngestError, Person, iso_timestamp, snowflake, text_field
from ingest.progress import ImportProgress
from persona.privacy.scopes import channel_scope, group_scope
from persona.storage.store import Store

log = logging.getLogger(__name__)

SOURCE = "dce"
KEPT_TYPES = {"Default", "Reply"}
_KINDS = {
    "GuildTextChat": "guild_text", "GuildNews": "guild_text", "GuildAnnouncement": "guild_text",
    "DirectTextChat": "dm", "DirectGroupTextChat": "group_dm",
    "GuildPublicThread": "thread", "GuildPrivateThread": "thread", "GuildNewsThread": "thread",
    "GuildVoiceChat": "voice", "GuildStageVoice": "voice", "GuildForum": "forum",
}
DM_GUILD_ID = "0"


def ingest_dce(store: Store, paths: list[Path], *, owner_id: int | None, progress: ImportProgress | None = None) -> ImportSummary:
    """Import DiscordChatExporter JSON files (or folders of them) in one transaction."""
    progress = progress or ImportProgress.quiet()
    files = find_files(paths, (".json",), "DiscordChatExporter JSON exports (Export format: JSON)")
    with ImportSession(store, SOURCE, " ".join(map(str, paths))) as session, progress.task(len(files)) as task:
        owner = session.resolve_owner(owner_id, "DiscordChatExporter files hold everyone's messages, and persona must know which are yours")
        for path in files:
            count = _import_file(path, owner, session)
            session.files += 1
            task.advance(files=1, messages=count)
        return session.finish()


def _open(path: Path) -> BinaryIO:
    try:
        return open(path, "rb")
    except OSError as exc:
        raise IngestError(f"cannot read {path}: {exc.strerror}") from None


def _first(path: Path, prefix: str) -> Any:
    """The value at top-level key `prefix`, parsing only as far as it."""
    with _open(path) as stream:
        try:
            return next(iter(ijson.items(json_events(stream, str(path)), prefix)), None)
        except (ijson.JSONError, UnicodeDecodeError) as exc:
            raise json_error(str(path), exc) from None


def _messages_shape(path: Path) -> str | None:
    """The parser event that opens the top-level `messages` (start_array in a real export),
    reading only as far as it; None when there is no such key."""
    with _open(path) as stream:
        try:
            for prefix, event, _ in json_events(stream, str(path)):
                if prefix == "messages":
                    return event if event != "map_key" else None
        except (ijson.JSONError, UnicodeDecodeError) as exc:
            raise json_error(str(path), exc) from None
    return None


def _import_file(path: Path, owner: int, session: ImportSession) -> int:
    guild = _first(path, "guild")
    channel_data = _first(path, "channel")
    if not isinstance(guild, dict) or not isinstance(channel_data, dict) or "id" not in channel_data:
        raise IngestError(f"{path} is not a DiscordChatExporter JSON export (no guild/channel at the top): export with format JSON")
    messages_are = _messages_shape(path)
    if messages_are != "start_array":
        what = "missing" if messages_are is None else f"a JSON {messages_are.removeprefix('start_').replace('map', 'object')}, not a list"
        raise IngestError(f"{path} is not a DiscordChatExporter JSON export (its \"messages\" is {what}): export with format JSON")
    channel_id = int(channel_data["id"])
    kind = _KINDS.get(str(channel_data.get("type")), "other")
    guild_id = int(guild["id"]) if str(guild.get("id", "")) not in ("", DM_GUILD_ID) else None
    where = str(path)

    others: set[int] = set()
    count = 0
    with _open(path) as stream:
        try:
            events = json_events(stream, where)
            for number, message in enumerate(ijson.items(events, "messages.item"), 1):
                author_id = _add_message(message, channel_id, kind, owner, session, f"{where} message {number}")
                if author_id is None:
                    continue
                count += 1
                if author_id != owner:
                    others.add(author_id)
        except (ijson.JSONError, UnicodeDecodeError) as exc:
            raise json_error(str(path), exc) from None

    session.add_channel(
        Channel(
            id=channel_id,
            kind=kind,
            scope=_scope(kind, channel_id, guild_id, others, channel_data),
            name=channel_data.get("name"),
            guild_id=guild_id,
            guild_name=guild.get("name") if guild_id is not None else None,
            parent_id=int(channel_data["categoryId"]) if kind == "thread" and str(channel_data.get("categoryId") or "").isdigit() else None,
            recipients=sorted(others | {owner}) if kind in ("dm", "group_dm") else [],
        )
    )
    return count


def _scope(kind: str, channel_id: int, guild_id: int | None, others: set[int], data: dict[str, Any]) -> str:
    if kind == "dm":
        if len(others) == 1:
            return channel_scope("dm", channel_id=channel_id, guild_id=None, other_user_id=next(iter(others)))
        if len(others) > 1:  # not really a 1:1 conversation: treat it as a group
            return group_scope(channel_id)
        # Only the owner spoke: the other side is unknown, so only the owner may see it.
        return channel_scope("dm", channel_id=channel_id, guild_id=None, other_user_id=synthetic_id("dce-unknown-dm", channel_id))
    if kind == "group_dm":
        return group_scope(channel_id)
    scope_guild = guild_id if guild_id is not None else synthetic_id("dce-unknown-guild", channel_id)
    return channel_scope(kind, channel_id=channel_id, guild_id=scope_guild, other_user_id=None)


def _person(data: Any, owner: int) -> Person | None:
    if not isinstance(data, dict) or not str(data.get("id", "")).isdigit() or int(data["id"]) > MAX_ID:
        return None
    person_id = int(data["id"])
    name = data.get("name") if isinstance(data.get("name"), str) else ""
    nickname = data.get("nickname") if isinstance(data.get("nickname"), str) else None
    return Person(
        id=person_id,
        name=name,
        display_name=str(nickname) if nickname and nickname != name else None,
        is_owner=person_id == owner,
        is_bot=bool(data.get("isBot")),
    )


def _add_message(message: Any, channel_id: int, kind: str, owner: int, session: ImportSession, where: str) -> int | None:
    """Stage one message; return its author id, or None when skipped."""
    if not isinstance(message, dict):
        raise IngestError(f"{where} is not a message object")
    if message.get("type", "Default") not in KEPT_TYPES:
        session.skip(kind, "system")
        return None
    author = _person(message.get("author"), owner)
    if author is None:
        raise IngestError(f"{where} has no author with a valid id: is this a DiscordChatExporter JSON export?")
    message_id = snowflake(message.get("id"), where, "id")
    session.add_person(author)
    mention_ids = []
    mentions = message.get("mentions")
    for mentioned in mentions if isinstance(mentions, list) else ():
        person = _person(mentioned, owner)
        if person is not None:
            session.add_person(person)
            mention_ids.append(person.id)
    content = text_field(message.get("content"), where, "content")
    listed = message.get("attachments") or []
    if not isinstance(listed, list):
        raise IngestError(f"{where}: attachments should be a list, not {type(listed).__name__}")
    attachments = [a["url"] for a in listed if isinstance(a, dict) and isinstance(a.get("url"), str) and a["url"]]
    if not content and not attachments:
        session.skip(kind, "empty")
        return None
    reference = message.get("reference") or {}
    reply_to = reference.get("messageId") if isinstance(reference, dict) else None
    edited = message.get("timestampEdited")
    session.add_message(
        message_id,
        channel_id,
        author.id,
        iso_timestamp(message.get("timestamp"), where),
        content,
        kind="reply" if message.get("type") == "Reply" else "default",
        edited_at=iso_timestamp(edited, where) if edited else None,
        reply_to_id=int(reply_to) if str(reply_to or "").isdigit() and int(reply_to) <= MAX_ID else None,
        attachments=attachments,
        mentions=mention_ids,
    )
    return author.id


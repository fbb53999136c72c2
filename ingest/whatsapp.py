"""WhatsApp "Export chat" files (.txt, or the .zip holding `_chat.txt`).

Android and iOS write different line shapes, and each phone writes dates in its own
locale:

    12/31/21, 10:15 PM - Sam: text              (Android, US)
    31/12/2021, 22:15 - Sam: text               (Android, most locales)
    31.12.21, 22:15 - Sam: text                 (Android, German)
    [31/12/21, 22:15:03] Sam: text              (iOS)
    [12/31/21, 10:15:03 PM] Sam: text           (iOS, US; a narrow no-break space before PM)

Lines without a header continue the previous message. Lines without a `Name:` are
system notices. Whether a date is day-first or month-first is decided per file from
the dates themselves (a part above 12 settles it), else from the clock (12-hour → US).
Times are local to the phone: `--timezone` (default PERSONA_TIMEZONE) says which.
"""

from __future__ import annotations

import io
import logging
import re
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from ingest.files import decode_utf8, find_files
from ingest.ids import synthetic_id
from ingest.loader import Channel, ImportSession, ImportSummary, IngestError, Person
from ingest.progress import ImportProgress
from persona.privacy.scopes import dm_scope, group_scope
from persona.storage.store import Store

log = logging.getLogger(__name__)

SOURCE = "whatsapp"
_SPACE = "[ \u202f\u00a0]"
_HEADER = re.compile(
    rf"^[\u200e\u200f]?\[?(?P<date>\d{{1,4}}[./-]\d{{1,2}}[./-]\d{{1,4}}),?{_SPACE}"
    rf"(?P<time>\d{{1,2}}[:.]\d{{2}}(?:[:.]\d{{2}})?)(?:{_SPACE}?(?P<ampm>[AaPp]\.?{_SPACE}?[Mm]\.?))?\]?"
    rf"(?:{_SPACE}-{_SPACE}|{_SPACE})(?P<rest>.*)$"
)
_MEDIA = re.compile(
    r"[\u200e]?(?:<Media omitted>|<Medien ausgeschlossen>|<Multimedia omitido>|<Médias omis>|"
    r"(?:image|video|audio|sticker|GIF|document|Contact card) omitted|<attached: [^>]*>)",
    re.I,
)
_DELETED = re.compile(r"^[\u200e]?(?:This message was deleted|You deleted this message|Diese Nachricht wurde gelöscht)\.?$", re.I)
_SYSTEM_HINTS = ("end-to-end encrypted", "Ende-zu-Ende-verschlüsselt", "security code changed", "Missed voice call", "Missed video call")
_FILE_NAME = re.compile(r"^WhatsApp (?:Chat with|Chat -|Chat mit|Chat con|Conversa com|Discussion avec) (.+?)(?: \(\d+\))?$", re.I)


@dataclass
class _Message:
    date: str
    time: str
    ampm: str | None
    author: str
    lines: list[str] = field(default_factory=list)


def ingest_whatsapp(store: Store, paths: list[Path], *, owner_id: int | None, me: str | None, timezone: str,
                    progress: ImportProgress | None = None) -> ImportSummary:
    """Import WhatsApp exports; `me` is the owner's name as it appears in the chats."""
    progress = progress or ImportProgress.quiet()
    chats = [(name, text) for path in find_files(paths, (".txt", ".zip"), "WhatsApp 'Export chat' files") for name, text in [_read(path)]]
    zone = ZoneInfo(timezone)
    with ImportSession(store, SOURCE, " ".join(map(str, paths))) as session, progress.task(len(chats)) as task:
        owner = session.resolve_owner(owner_id)
        parsed = [(name, _parse(text)) for name, text in chats]
        senders = Counter(m.author for _, messages in parsed for m in messages)
        if not me or me not in senders:
            listed = ", ".join(name for name, _ in senders.most_common(8)) or "nobody"
            problem = f"{me!r} wrote none of these messages" if me else "persona needs to know which sender is you"
            raise IngestError(f"{problem}: pass --me NAME or set PERSONA_WHATSAPP_NAME (senders: {listed})")
        session.add_person(Person(id=owner, name=session.names.get(owner, me), is_owner=True))
        for chat_name, messages in parsed:
            count = _import_chat(chat_name, messages, owner, me, zone, session)
            session.files += 1
            task.advance(files=1, messages=count)
        return session.finish()


def _read(path: Path) -> tuple[str, str]:
    """(chat name, text) of one export file."""
    name = _FILE_NAME.match(path.stem)
    chat = name.group(1) if name else path.stem
    try:
        if path.suffix.lower() == ".zip":
            with zipfile.ZipFile(path) as archive:
                inner = next((n for n in archive.namelist() if n.lower().endswith(".txt")), None)
                if inner is None:
                    raise IngestError(f"{path} holds no chat .txt: export the chat again (with or without media)")
                return chat, decode_utf8(archive.read(inner), f"{path}:{inner}")
        return chat, decode_utf8(path.read_bytes(), str(path))
    except zipfile.BadZipFile:
        raise IngestError(f"{path} is not a zip archive or is damaged") from None
    except OSError as exc:
        raise IngestError(f"cannot read {path}: {exc.strerror}") from None


def _parse(text: str) -> list[_Message]:
    messages: list[_Message] = []
    current: _Message | None = None
    for line in io.StringIO(text):
        line = line.rstrip("\r\n")
        header = _HEADER.match(line)
        if header is None:
            if current is not None:
                current.lines.append(line)
            continue
        rest = header.group("rest")
        author, sep, body = rest.partition(": ")
        if not sep or len(author) > 80:
            current = None  # a system notice ("Alex added Sam"); following lines are its own
            continue
        current = _Message(header.group("date"), header.group("time"), header.group("ampm"), author.strip("\u200e\u202a\u202c"), [body])
        messages.append(current)
    return messages


def _date_order(messages: list[_Message]) -> str:
    """'ymd', 'dmy' or 'mdy' for this file."""
    parts = [re.split(r"[./-]", m.date) for m in messages]
    if parts and len(parts[0][0]) == 4:
        return "ymd"
    if any(int(p[0]) > 12 for p in parts):
        return "dmy"
    if any(int(p[1]) > 12 for p in parts):
        return "mdy"
    return "mdy" if any(m.ampm for m in messages) else "dmy"


def _timestamp(message: _Message, order: str, zone: ZoneInfo) -> datetime:
    a, b, c = (int(p) for p in re.split(r"[./-]", message.date))
    year, month, day = {"ymd": (a, b, c), "dmy": (c, b, a), "mdy": (c, a, b)}[order]
    if year < 100:
        year += 2000
    clock = [int(p) for p in re.split(r"[:.]", message.time)]
    hour, minute, second = clock[0], clock[1], clock[2] if len(clock) > 2 else 0
    if message.ampm:
        pm = message.ampm.lower().startswith("p")
        hour = hour % 12 + (12 if pm else 0)
    return datetime(year, month, day, hour, minute, second, tzinfo=zone)


def _import_chat(chat: str, messages: list[_Message], owner: int, me: str, zone: ZoneInfo, session: ImportSession) -> int:
    channel_id = synthetic_id("whatsapp-chat", chat)
    others = {m.author for m in messages if m.author != me}
    kind = "dm" if len(others) <= 1 else "group_dm"
    people = {name: synthetic_id("whatsapp-person", name) for name in others}
    for name, person_id in people.items():
        session.add_person(Person(id=person_id, name=name))
    if kind == "dm":
        other_id = next(iter(people.values()), synthetic_id("whatsapp-person", f"unknown:{chat}"))
        scope = dm_scope(other_id)
    else:
        scope = group_scope(channel_id)
    session.add_channel(Channel(id=channel_id, kind=kind, scope=scope, name=chat, recipients=sorted([owner, *people.values()])))

    order = _date_order(messages)
    seen: Counter[tuple[str, str, str]] = Counter()
    count = 0
    for message in messages:
        try:
            when = _timestamp(message, order, zone)
        except ValueError:
            raise IngestError(f"chat {chat!r} has an impossible date {message.date} {message.time}: is it a WhatsApp export?") from None
        raw = "\n".join(message.lines).strip()
        if _DELETED.match(raw):
            session.skip(kind, "deleted")
            continue
        if raw.startswith("\u200e") and any(hint in raw for hint in _SYSTEM_HINTS):
            session.skip(kind, "system")
            continue
        has_media = bool(_MEDIA.search(raw))
        text = _MEDIA.sub("", raw).replace("\u200e", "").strip()
        if not text:
            session.skip(kind, "media_only" if has_media else "empty")
            continue
        # Stable across re-exports: a longer export of the same chat yields the same ids.
        key = (when.isoformat(), message.author, text)
        seen[key] += 1
        message_id = synthetic_id("whatsapp", chat, *key, seen[key])
        author = owner if message.author == me else people[message.author]
        session.add_message(message_id, channel_id, author, when.isoformat(), text,
                            attachments=["whatsapp-media"] if has_media else None)
        count += 1
    return count

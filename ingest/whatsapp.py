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
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from ingest.files import find_files
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
    """Import WhatsApp exports; `me` is the owner's name as it appears in the chats.

    Each file is read twice, streaming: once for its senders and date order, once to
    import; memory stays flat in the size of a chat (a 190 MB chat once took 1.7 GB)."""
    progress = progress or ImportProgress.quiet()
    files = find_files(paths, (".txt", ".zip"), "WhatsApp 'Export chat' files")
    scans = [(path, _scan(path)) for path in files]
    senders = Counter[str]()
    for _, scan in scans:
        senders.update(scan.senders)
    if not me or me not in senders:
        listed = ", ".join(name for name, _ in senders.most_common(8)) or "nobody"
        problem = f"{me!r} wrote none of these messages" if me else "persona needs to know which sender is you"
        raise IngestError(f"{problem}: pass --me NAME or set PERSONA_WHATSAPP_NAME (senders: {listed})")
    zone = ZoneInfo(timezone)
    with ImportSession(store, SOURCE, " ".join(map(str, paths))) as session, progress.task(len(files)) as task:
        owner = session.resolve_owner(owner_id)
        session.add_person(Person(id=owner, name=session.names.get(owner, me), is_owner=True))
        for path, scan in scans:
            with _lines(path) as lines:
                count = _import_chat(_chat_name(path), _messages(lines), scan, owner, me, zone, session)
            session.files += 1
            task.advance(files=1, messages=count)
        return session.finish()


def _chat_name(path: Path) -> str:
    name = _FILE_NAME.match(path.stem)
    return name.group(1) if name else path.stem


@contextmanager
def _lines(path: Path) -> Iterator[Iterator[str]]:
    """The export's lines, decoded as they are read (from the .txt, or the one inside the .zip)."""
    where = str(path)
    try:
        with ExitStack() as stack:
            if path.suffix.lower() == ".zip":
                archive = stack.enter_context(zipfile.ZipFile(path))
                inner = next((n for n in archive.namelist() if n.lower().endswith(".txt")), None)
                if inner is None:
                    raise IngestError(f"{path} holds no chat .txt: export the chat again (with or without media)")
                where = f"{path}:{inner}"
                raw = stack.enter_context(archive.open(inner))
            else:
                raw = stack.enter_context(open(path, "rb"))
            text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline=None)
            yield _decoded(text, where)
    except zipfile.BadZipFile:
        raise IngestError(f"{path} is not a zip archive or is damaged") from None
    except OSError as exc:
        raise IngestError(f"cannot read {where}: {exc.strerror or exc}") from None


def _decoded(text: io.TextIOWrapper, where: str) -> Iterator[str]:
    number = 0
    try:
        for number, line in enumerate(text, 1):  # noqa: B007 - the count names where decoding failed
            yield line.rstrip("\r\n")
    except UnicodeDecodeError:
        raise IngestError(f"{where} is not UTF-8 text (after line {number:,}): re-export it or convert it to UTF-8") from None


def _messages(lines: Iterable[str]) -> Iterator[_Message]:
    """Messages one at a time: a header line starts one, lines without a header continue it."""
    current: _Message | None = None
    for line in lines:
        header = _HEADER.match(line)
        if header is None:
            if current is not None:
                current.lines.append(line)
            continue
        if current is not None:
            yield current
        rest = header.group("rest")
        author, sep, body = rest.partition(": ")
        if not sep or len(author) > 80:
            current = None  # a system notice ("Alex added Sam"); following lines are its own
            continue
        current = _Message(header.group("date"), header.group("time"), header.group("ampm"), author.strip("\u200e\u202a\u202c"), [body])
    if current is not None:
        yield current


@dataclass
class _Scan:
    """What the first pass learns of one file: who wrote, and how its dates read."""

    senders: Counter[str] = field(default_factory=Counter)
    year_first: bool = False
    first_above_12: bool = False
    second_above_12: bool = False
    twelve_hour: bool = False

    def add(self, message: _Message) -> None:
        self.senders[message.author] += 1
        parts = re.split(r"[./-]", message.date)
        self.year_first |= len(parts[0]) == 4
        self.first_above_12 |= int(parts[0]) > 12
        self.second_above_12 |= int(parts[1]) > 12
        self.twelve_hour |= bool(message.ampm)

    @property
    def order(self) -> str:
        """'ymd', 'dmy' or 'mdy' for this file: a part above 12 settles it, else the clock (12-hour → US)."""
        if self.year_first:
            return "ymd"
        if self.first_above_12:
            return "dmy"
        if self.second_above_12:
            return "mdy"
        return "mdy" if self.twelve_hour else "dmy"


def _scan(path: Path) -> _Scan:
    scan = _Scan()
    with _lines(path) as lines:
        for message in _messages(lines):
            scan.add(message)
    return scan


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


def _import_chat(chat: str, messages: Iterable[_Message], scan: _Scan, owner: int, me: str, zone: ZoneInfo, session: ImportSession) -> int:
    channel_id = synthetic_id("whatsapp-chat", chat)
    others = {name for name in scan.senders if name != me}
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

    order = scan.order
    # Identical messages (author, text) at the same time are told apart by their count;
    # an export is in time order, so counting within one timestamp gives the ids a whole-file
    # count gave, without keeping every message of the chat.
    seen: Counter[tuple[str, str, str]] = Counter()
    count = 0
    for message in messages:
        try:
            when = _timestamp(message, order, zone)
        except ValueError:
            raise IngestError(f"chat {chat!r} has an impossible date {message.date} {message.time}: is it a WhatsApp export?") from None
        if seen and next(iter(seen))[0] != when.isoformat():
            seen.clear()
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

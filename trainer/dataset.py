"""The training set: the owner's voice as chat examples, with a fixed held-out split.

Conversations with other people (DiscordChatExporter, WhatsApp, the bot's own
capture): sessions split at pauses; other people are user turns ("Sam: …"), the owner
is the assistant; consecutive messages of one side merge into one turn; loss falls on
the owner's turns only. The owner-only history of the data package (nobody else's
messages exist there): sessions of the owner's consecutive messages, with the channel
as context, so style is learned without inventing other speakers.

Filtered: bot commands, link-only and empty messages, pasted logs/code, near
duplicates. Balanced: a cap per channel and per source. Messages obtained through
Discord's API (`backfill`, `live`) are used only when PERSONA_TRAIN_ON_API_CONTENT is
set (Discord's developer policy). Notes and journals are memory, not voice: not used.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import psycopg

from persona import adapters
from persona.config import Settings, default_of
from persona.history import messages as history
from persona.history.people import stored_owner
from persona.prompts import REPLY_CONTEXT_MESSAGES, Frame, Line, place_label, render, turns_of

log = logging.getLogger(__name__)

SESSION_GAP = timedelta(hours=2)
API_SOURCES = ("backfill", "live")
VOICE_SOURCES = ("package", "dce", "whatsapp", "backfill", "live")
MAX_TURNS = 24

_COMMAND = re.compile(r"^\s*[!/?.$%&;>][A-Za-z]\w*(?:\s|$)")
_LINK_ONLY = re.compile(r"^\s*(?:<?https?://\S+>?\s*)+$")
_NORMALISE = re.compile(r"[\W_]+")
_TAGS = {
    "technical": re.compile(r"\b(?:code|bug|error|rust|python|java|js|api|deploy|git|compile|server|docker|sql|function|linux|gpu|cargo|npm)\b", re.I),
    "creative": re.compile(r"\b(?:poem|story|draw|drawing|paint|song|lyrics|write|writing|novel|sketch|design|compose)\b", re.I),
    "personal": re.compile(r"\b(?:feel|feeling|love|miss|family|mom|dad|sister|brother|tired|sad|happy|anxious|sleep|sick|birthday)\b", re.I),
}


@dataclass
class Options:
    """What shapes the dataset; defaults are the settings' own (declared once, in persona.config)."""

    owner_name: str = default_of("owner_name")
    style_notes: str = default_of("style_notes")
    heldout_fraction: float = default_of("heldout_fraction")
    heldout_after: date | None = None  # everything from this day on is held out too (the setting's default: none)
    max_per_channel: int = default_of("max_examples_per_channel")
    max_per_source: int = default_of("max_examples_per_source")
    allow_api_content: bool = default_of("train_on_api_content")
    examples: str = default_of("train_examples")  # windows | turns
    seed: int = 13

    @classmethod
    def from_settings(cls, settings: Settings) -> Options:
        return cls(owner_name=settings.owner_name, style_notes=settings.style_notes, heldout_fraction=settings.heldout_fraction,
                   heldout_after=settings.heldout_after,
                   max_per_channel=settings.max_examples_per_channel, max_per_source=settings.max_examples_per_source,
                   allow_api_content=settings.train_on_api_content, examples=settings.train_examples)


@dataclass
class Example:
    messages: list[dict[str, str]]
    target_ids: list[int]  # the owner's messages this example teaches
    channel_id: int
    source: str
    kind: str  # dm | group | server
    last_at: str
    tags: list[str] = field(default_factory=list)
    max_seq: int = 0  # highest messages.seq among its messages (the data watermark)
    recalled_ids: list[int] = field(default_factory=list)  # memories put in its system prompt (trainer/recalled.py)
    # Every stored message whose words it holds (its window, and the messages behind its
    # recalled memories): what an adapter trained on it records, and what a forget
    # checks files against (persona/adapter_files.py).
    message_ids: list[int] = field(default_factory=list)
    feedback_id: int | None = None  # the rating a correction came from
    draft_id: int | None = None  # the draft an owner's edit came from (trainer/lessons.py)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Example:
        return cls(**data)


@dataclass
class Dataset:
    train: list[Example]
    heldout: list[Example]
    stats: dict[str, Any]

    def write(self, folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        for name, examples in (("train", self.train), ("heldout", self.heldout)):
            with (folder / f"{name}.jsonl").open("w", encoding="utf-8") as out:
                for example in examples:
                    out.write(json.dumps(example.to_json(), ensure_ascii=False) + "\n")
        (folder / "stats.json").write_text(json.dumps(self.stats, indent=2))
        return folder


def read_examples(path: Path) -> list[Example]:
    with path.open(encoding="utf-8") as lines:
        return [Example.from_json(json.loads(line)) for line in lines if line.strip()]


def build_dataset(conn: psycopg.Connection, options: Options, *, count_tokens: Any = None) -> Dataset:
    """Examples from every channel; the held-out split is read from (and extended in) the database."""
    owner = stored_owner(conn)
    if owner is None:
        from persona.errors import PersonaError

        raise PersonaError("no owner yet: import your Discord data package first (`persona ingest discord-package`)")
    owner_id = owner.id
    owner_name = options.owner_name or owner.name or "me"
    sources = [s for s in VOICE_SOURCES if options.allow_api_content or s not in API_SOURCES]
    filtered: Counter[str] = Counter()
    seen_texts: set[str] = set()
    rng = random.Random(options.seed)

    by_channel: dict[int, list[Example]] = {}
    for channel in history.conversation_channels(conn, owner_id):
        messages = [m for m in history.conversation(conn, channel.id, sources) if _keep(m, owner_id, filtered, seen_texts)]
        frame = Frame(owner_name, options.style_notes, place_label(channel.kind, channel.name, channel.guild_name, channel.dm_name))
        group = "dm" if channel.kind == "dm" else "group" if channel.kind == "group_dm" else "server"
        channel_id = channel.id
        examples = list(_examples(messages, owner_id, frame, channel_id, group, per_turn=options.examples == "turns"))
        if len(examples) > options.max_per_channel:
            filtered["channel_cap"] += len(examples) - options.max_per_channel
            examples = sorted(rng.sample(examples, options.max_per_channel), key=lambda e: e.last_at)
        if examples:
            by_channel[channel_id] = examples

    heldout_ids = _heldout_ids(conn, by_channel, options.heldout_fraction)
    train: list[Example] = []
    heldout: list[Example] = []
    for examples in by_channel.values():
        for example in examples:
            late = options.heldout_after is not None and example.last_at[:10] >= options.heldout_after.isoformat()
            (heldout if late or heldout_ids.intersection(example.target_ids) else train).append(example)
    train = _cap_sources(train, options.max_per_source, rng, filtered)
    rng.shuffle(train)
    stats = _stats(train, heldout, filtered, count_tokens)
    return Dataset(train, heldout, stats)


def _keep(m: history.StoredMessage, owner_id: int, filtered: Counter[str], seen: set[str]) -> bool:
    text = m.content.strip()
    if not text:
        filtered["empty"] += 1
        return False
    if _COMMAND.match(text):
        filtered["bot_command"] += 1
        return False
    if _LINK_ONLY.match(text):
        filtered["link_only"] += 1
        return False
    if _looks_pasted(text):
        filtered["pasted_code_or_log"] += 1
        return False
    if m.author_id == owner_id and len(text) >= 20:
        key = _NORMALISE.sub(" ", text.lower()).strip()
        digest = hashlib.blake2b(key.encode(), digest_size=8).digest().hex()
        if digest in seen:
            filtered["near_duplicate"] += 1
            return False
        seen.add(digest)
    return True


def _looks_pasted(text: str) -> bool:
    if len(text) < 600:
        return False
    if "```" in text or text.count("\n") > 25:
        return True
    letters = sum(ch.isalpha() or ch.isspace() for ch in text)
    return letters / len(text) < 0.6


def _examples(messages: list[history.StoredMessage], owner_id: int, frame: Frame, channel_id: int, group: str, *,
              per_turn: bool = False) -> Iterable[Example]:
    others_present = any(m.author_id != owner_id for m in messages)
    session: list[history.StoredMessage] = []
    for message in messages:
        if session and message.created_at - session[-1].created_at > SESSION_GAP:
            yield from _session_examples(session, owner_id, frame, channel_id, group, others_present, per_turn)
            session = []
        session.append(message)
    if session:
        yield from _session_examples(session, owner_id, frame, channel_id, group, others_present, per_turn)


def _session_examples(session: list[history.StoredMessage], owner_id: int, frame: Frame, channel_id: int, group: str,
                      conversational: bool, per_turn: bool) -> Iterable[Example]:
    """Turns of one session, rendered by the frame replies use (persona.prompts): long
    sessions become examples of at most MAX_TURNS turns, each ending with an owner turn,
    side by side (windows); or one example ends at each owner turn, the messages before it
    that a reply would be given as context (per_turn: it teaches that turn, as the bot is
    asked for it)."""
    by_id = {m.id: m for m in session}
    turns = turns_of([_Tagged(m.speaker, m.content, m.author_id == owner_id, m.id) for m in session])
    if not any(turn[0].is_owner for turn in turns):
        return
    if per_turn:
        windows = [_context_of(turns, end) for end, turn in enumerate(turns) if turn[0].is_owner]
    else:
        windows = [turns[start : start + MAX_TURNS] for start in range(0, len(turns), MAX_TURNS)]
    for window in windows:
        while window and not window[-1][0].is_owner:
            window.pop()
        if not window:
            continue
        window_msgs = [by_id[line.message_id] for turn in window for line in turn]
        taught = window[-1:] if per_turn else window  # what the example's loss falls on
        owner_msgs = [by_id[line.message_id] for turn in taught for line in turn if line.is_owner]
        day = window_msgs[0].created_at.strftime("%Y-%m-%d")
        chat = render(replace(frame, day=day), [line for turn in window for line in turn])
        text = " ".join(m.content for m in owner_msgs)
        tags = [group, owner_msgs[-1].source] + ([t for t, rx in _TAGS.items() if rx.search(text)] or ["chat"])
        yield Example(
            messages=chat, target_ids=[m.id for m in owner_msgs], channel_id=channel_id, source=owner_msgs[-1].source,
            kind=group, last_at=window_msgs[-1].created_at.isoformat(), tags=tags + ([] if conversational else ["owner_only"]),
            max_seq=max(m.seq for m in window_msgs), message_ids=[m.id for m in window_msgs],
        )


def _context_of(turns: list[list[Any]], end: int) -> list[list[Any]]:
    """Turn `end` with the turns before it, as far back as a reply is given context: up
    to REPLY_CONTEXT_MESSAGES messages (the bot's channel history) before it."""
    start, held = end, 0
    while start > 0 and held + len(turns[start - 1]) <= REPLY_CONTEXT_MESSAGES:
        start -= 1
        held += len(turns[start])
    return turns[start : end + 1]


@dataclass(frozen=True)
class _Tagged(Line):
    """A line that remembers which stored message it is."""

    message_id: int = 0


def _heldout_ids(conn: psycopg.Connection, by_channel: dict[int, list[Example]], fraction: float) -> set[int]:
    """The fixed held-out set: stored once per channel (its latest examples), then reused."""
    stored = adapters.heldout(conn)
    ids = set(stored)
    channels_with = set(stored.values())
    new_rows = []
    for channel_id, examples in by_channel.items():
        if channel_id in channels_with or len(examples) < 2:
            continue
        count = max(1, round(len(examples) * fraction))
        for example in sorted(examples, key=lambda e: e.last_at)[-count:]:
            new_rows.extend((i, channel_id) for i in example.target_ids)
    if new_rows:
        adapters.hold_out(conn, new_rows)
        conn.commit()
        ids.update(i for i, _ in new_rows)
    return ids


def _cap_sources(examples: list[Example], cap: int, rng: random.Random, filtered: Counter[str]) -> list[Example]:
    by_source: dict[str, list[Example]] = {}
    for example in examples:
        by_source.setdefault(example.source, []).append(example)
    kept: list[Example] = []
    for items in by_source.values():
        if len(items) > cap:
            filtered["source_cap"] += len(items) - cap
            items = rng.sample(items, cap)
        kept.extend(items)
    return kept


def _stats(train: list[Example], heldout: list[Example], filtered: Counter[str], count_tokens: Any) -> dict[str, Any]:
    tags: Counter[str] = Counter(t for e in train for t in e.tags)
    stats: dict[str, Any] = {
        "train_examples": len(train),
        "heldout_examples": len(heldout),
        "owner_messages": sum(len(e.target_ids) for e in train),
        "filtered": dict(filtered),
        "tags": dict(tags.most_common()),
        "by_source": dict(Counter(e.source for e in train)),
        "by_kind": dict(Counter(e.kind for e in train)),
        "channels": len({e.channel_id for e in train}),
        "max_seq": max((e.max_seq for e in train + heldout), default=0),
    }
    if count_tokens is not None and train:
        stats["train_tokens"] = int(sum(count_tokens(e.messages) for e in train))
        stats["heldout_tokens"] = int(sum(count_tokens(e.messages) for e in heldout))
    return stats

"""Group messages into memories the way conversations read.

Conversation: consecutive messages of one channel, split where the talk paused
(30 minutes by default) and where the next line would overflow the embedding model's
token budget, rendered with date, place and speaker:

    2021-06-26 · #general (Rust Fans)
    Alex: cargo 1.79 is out
    Sam: nice

Notes and journals: split at headings, then at paragraphs, keeping the heading path
so a section still says what it is about.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

TokenCounter = Callable[[Sequence[str]], list[int]]
DEFAULT_GAP = timedelta(minutes=30)


@dataclass(frozen=True)
class ChunkMessage:
    id: int
    created_at: datetime
    speaker: str
    content: str


@dataclass
class Chunk:
    content: str
    message_ids: list[int]
    started_at: datetime
    ended_at: datetime


@dataclass
class _Open:
    header: str
    lines: list[str] = field(default_factory=list)
    ids: list[int] = field(default_factory=list)
    tokens: int = 0
    started_at: datetime | None = None
    ended_at: datetime | None = None

    def close(self) -> Chunk:
        assert self.started_at is not None and self.ended_at is not None
        return Chunk("\n".join([self.header, *self.lines]), self.ids, self.started_at, self.ended_at)


def chunk_conversation(
    messages: Sequence[ChunkMessage],
    *,
    place: str,
    count_tokens: TokenCounter,
    budget: int,
    gap: timedelta = DEFAULT_GAP,
) -> list[Chunk]:
    """Windows of `messages` (one channel, oldest first) under `budget` tokens each."""
    if not messages:
        return []
    lines = [f"{m.speaker}: {m.content or '[attachment]'}" for m in messages]
    line_tokens = bounded_counts(lines, count_tokens, budget)
    chunks: list[Chunk] = []
    current: _Open | None = None
    previous: datetime | None = None
    for message, line, tokens in zip(messages, lines, line_tokens):
        header = f"{message.created_at:%Y-%m-%d} · {place}"
        if current is not None and (_paused(previous, message, gap) or current.tokens + tokens > budget):
            chunks.append(current.close())
            current = None
        if current is None:
            header_tokens = count_tokens([header])[0]
            if header_tokens + tokens > budget:
                # One message longer than the budget: it becomes several memories of its own.
                chunks.extend(_split_long(message, header, line, count_tokens, budget - header_tokens))
                previous = message.created_at
                continue
            current = _Open(header=header, tokens=header_tokens, started_at=message.created_at)
        current.lines.append(line)
        current.ids.append(message.id)
        current.tokens += tokens
        current.ended_at = message.created_at
        previous = message.created_at
    if current is not None:
        chunks.append(current.close())
    return chunks


def _paused(previous: datetime | None, message: ChunkMessage, gap: timedelta) -> bool:
    return previous is not None and message.created_at - previous > gap


def _split_long(message: ChunkMessage, header: str, line: str, count_tokens: TokenCounter, budget: int) -> list[Chunk]:
    return [
        Chunk(f"{header}\n{piece}", [message.id], message.created_at, message.created_at)
        for piece in split_to_budget(line, count_tokens, max(budget, 1))
    ]


_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+|\n+")
# A text with more characters than this many per token of budget is over the budget for
# any tokenizer an embedder uses; it is never tokenized whole (a 1 MB message once took
# 670 MB and 13 s in the tokenizer, 10 MB took 5 GB).
CHARS_PER_TOKEN_BOUND = 8
_BATCH = 512


def fits(text: str, count_tokens: TokenCounter, budget: int) -> bool:
    return len(text) <= budget * CHARS_PER_TOKEN_BOUND and count_tokens([text])[0] <= budget


def bounded_counts(texts: Sequence[str], count_tokens: TokenCounter, budget: int) -> list[int]:
    """Tokens per text, counted in batches; `budget + 1` for a text too long to fit (not tokenized)."""
    longest = budget * CHARS_PER_TOKEN_BOUND
    counts: list[int] = []
    for start in range(0, len(texts), _BATCH):
        batch = texts[start : start + _BATCH]
        counted = iter(count_tokens([t for t in batch if len(t) <= longest]))
        counts.extend(next(counted) if len(t) <= longest else budget + 1 for t in batch)
    return counts


def split_to_budget(text: str, count_tokens: TokenCounter, budget: int) -> list[str]:
    """Pieces of `text` under `budget` tokens: at sentence ends, then at spaces, then by characters.

    Linear in the text: the units are counted once, in batches, and a piece grows by
    adding their counts (joining at a space or a line end adds no token for the
    tokenizers embedders use; each finished piece is checked, and re-split in the rare
    case the sum was short) instead of re-counting the growing piece."""
    if fits(text, count_tokens, budget):
        return [text]
    units = [u for u in _SENTENCE_END.split(text) if u.strip()]
    if len(units) <= 1:
        units = [u for u in text.split(" ") if u]
        if len(units) <= 1:
            return _cut(text, count_tokens, budget)
    pieces: list[str] = []
    current: list[str] = []
    current_tokens = 0
    for unit, tokens in zip(units, bounded_counts(units, count_tokens, budget)):
        if tokens > budget:
            if current:
                pieces.append(" ".join(current))
                current, current_tokens = [], 0
            pieces.extend(split_to_budget(unit, count_tokens, budget))
            continue
        if current and current_tokens + tokens > budget:
            pieces.append(" ".join(current))
            current, current_tokens = [], 0
        current.append(unit)
        current_tokens += tokens
    if current:
        pieces.append(" ".join(current))
    checked: list[str] = []
    for piece, tokens in zip(pieces, bounded_counts(pieces, count_tokens, budget)):
        checked.extend([piece] if tokens <= budget or " " not in piece else _halve(piece, count_tokens, budget))
    return checked


def _halve(piece: str, count_tokens: TokenCounter, budget: int) -> list[str]:
    words = piece.split(" ")
    middle = len(words) // 2
    return [p for half in (" ".join(words[:middle]), " ".join(words[middle:])) if half for p in split_to_budget(half, count_tokens, budget)]


def _cut(text: str, count_tokens: TokenCounter, budget: int) -> list[str]:
    """One giant word: windows of `budget` characters, halved where one is still too long."""
    windows = [text[i : i + budget] for i in range(0, len(text), budget)]
    pieces: list[str] = []
    for window, tokens in zip(windows, bounded_counts(windows, count_tokens, budget)):
        if tokens <= budget or len(window) <= 1:
            pieces.append(window)
        else:
            middle = len(window) // 2
            pieces.extend(_cut(window[:middle], count_tokens, budget) + _cut(window[middle:], count_tokens, budget))
    return pieces


_HEADING = re.compile(r"^(#{1,6})\s+(.*\S)\s*$")


def chunk_note(
    message: ChunkMessage,
    *,
    title: str,
    count_tokens: TokenCounter,
    budget: int,
) -> list[Chunk]:
    """Sections of a markdown note (heading path kept), each under `budget` tokens."""
    sections: list[tuple[list[str], list[str]]] = []  # (heading path, body lines)
    path: list[tuple[int, str]] = []
    body: list[str] = []

    def flush() -> None:
        text = "\n".join(body).strip()
        if text:
            sections.append(([h for _, h in path], [text]))
        body.clear()

    for line in message.content.splitlines():
        heading = _HEADING.match(line)
        if heading:
            flush()
            level = len(heading.group(1))
            path[:] = [(lvl, h) for lvl, h in path if lvl < level] + [(level, heading.group(2))]
        else:
            body.append(line)
    flush()
    if not sections and path:  # headings only
        sections.append(([h for _, h in path], [""]))

    header = f"{message.created_at:%Y-%m-%d} · note: {title}"
    chunks: list[Chunk] = []
    for headings, (text,) in sections:
        prefix = f"{header}\n{' > '.join(headings)}".rstrip() if headings else header
        room = budget - count_tokens([prefix])[0]
        paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()] or [""]
        current: list[str] = []
        for paragraph in paragraphs:
            candidate = "\n\n".join([*current, paragraph])
            if fits(candidate, count_tokens, room):
                current.append(paragraph)
                continue
            if current:
                chunks.append(_note_chunk(prefix, "\n\n".join(current), message))
            if fits(paragraph, count_tokens, room):
                current = [paragraph]
            else:
                chunks.extend(_note_chunk(prefix, piece, message) for piece in split_to_budget(paragraph, count_tokens, max(room, 1)))
                current = []
        if current:
            chunks.append(_note_chunk(prefix, "\n\n".join(current), message))
    return chunks


def _note_chunk(prefix: str, text: str, message: ChunkMessage) -> Chunk:
    return Chunk(f"{prefix}\n{text}".rstrip(), [message.id], message.created_at, message.created_at)

"""Recalled memories inside training examples, framed as the bot frames them at reply time.

An adapter trained only on prompts without memories learns to look past the memory
block: on the demo's history the base SmolLM2 answers "where are you moving to?" with
"I am moving to Lisbon" from a recalled memory, while an adapter trained without
memories invents a city. So a share of the conversational examples
(PERSONA_TRAIN_MEMORY_FRACTION) get what recall finds for their opening turn:

- in the example's own scope only (a server conversation never gets DM memories);
- from before the conversation ended (nothing the owner had not said yet);
- never a memory holding one of the example's own answers (that would teach copying
  the reply, not using what was said before);
- only when the example still fits in max_seq_len with them (a memory block cut in
  half teaches nothing).

The choice of examples depends only on their ids, so the held-out split gets the same
treatment in every run and losses stay comparable between adapter versions.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime

import psycopg

from persona import memory
from persona.history.messages import channel_scopes
from persona.memory.embeddings import Embedder
from persona.privacy.scopes import asked_within
from persona.prompts import CURRENT_FRAME, attach_memories
from trainer.dataset import Example

log = logging.getLogger(__name__)

MEMORIES_PER_EXAMPLE = 3
CHARS_PER_TOKEN = 3.5  # a conservative estimate for chat text; only used to skip examples that would not fit


def add_recalled_memories(conn: psycopg.Connection, embedder: Embedder, examples: list[Example], *, fraction: float,
                          max_seq_len: int, k: int = MEMORIES_PER_EXAMPLE, frame: int = CURRENT_FRAME) -> int:
    """Put recalled memories where prompt frame `frame` quotes them (persona.prompts.attach_memories) in about
    `fraction` of the conversational examples (in place); returns how many got some."""
    if fraction <= 0 or not examples or memory.stored_model(conn) is None:
        return 0
    scopes = channel_scopes(conn)
    added = 0
    for example in examples:
        if "owner_only" in example.tags or not chosen(example, fraction):
            continue
        query = _opening(example)
        if not query:
            continue
        own = set(example.target_ids)
        ended = datetime.fromisoformat(example.last_at)
        asker, place = asked_within(scopes[example.channel_id], example.channel_id)
        found = [m for m in memory.recall(conn, embedder, query, asker_id=asker, place=place, owner_id=None, k=3 * k)
                 if own.isdisjoint(m.message_ids) and m.ended_at <= ended][:k]
        while found and _tokens(example, found) > max_seq_len:
            found.pop()
        if found:
            example.messages = attach_memories(example.messages, [m.content for m in found], frame)
            example.tags.append("recalled")
            example.recalled_ids = [m.id for m in found]
            example.message_ids = sorted({*example.message_ids, *(i for m in found for i in m.message_ids)})
            added += 1
    log.info("recalled memories added to %d of %d examples", added, len(examples))
    return added


def chosen(example: Example, fraction: float, salt: str = "") -> bool:
    """A stable choice by the example's first target message id (`salt`: an independent draw)."""
    digest = hashlib.blake2b(f"{salt}{example.target_ids[0]}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64 < fraction


def _opening(example: Example) -> str:
    """The first thing someone else said: what recall would be asked with at reply time."""
    for message in example.messages:
        if message["role"] == "user":
            lines = message["content"].split("\n")
            if lines and lines[0].startswith("[") and lines[0].endswith("]"):
                lines = lines[1:]  # the context line ("[#general (Server) · 2024-05-01]")
            return "\n".join(lines).strip()
    return ""


def _tokens(example: Example, memories: list[memory.Memory]) -> float:
    text = sum(len(m["content"]) for m in example.messages) + sum(len(m.content) + 24 for m in memories) + 220
    return text / CHARS_PER_TOKEN

"""Recall drills: training examples that teach the persona to answer from what it remembers.

An adapter trained on conversations alone learns the owner's voice and nothing about
the memory block: on the demo's history it answers "what's your cat's name?" with
filler while the recalled memories hold "my cat miso turned four last week". Training
with memories that merely sit beside the conversation (trainer/recalled.py) does not
change that: the answer never depends on them.

A drill is built from a moment in the owner's own history where someone asked a
question and the owner answered it in the first person ("Wait, how old is your cat
now?" → "my cat miso turned four last week!!"):

    system     the persona's prompt + recalled memories, one of which holds that exchange
    user       [place · day]  Theo: Wait, how old is your cat now?
    assistant  my cat miso turned four last week!!

so the only way to the right answer runs through a memory, among others recall finds
for the question (in the conversation's own scope, shuffled), the way the bot frames
memories at reply time. Drills come from training examples only, and never use a
memory that holds a held-out message, so the held-out loss stays an honest measure.
"""

from __future__ import annotations

import itertools
import logging
import random
import re
from dataclasses import replace

import psycopg

from persona import memory
from persona.history.messages import channel_scopes
from persona.memory.embeddings import Embedder
from persona.privacy.scopes import asked_within
from persona.prompts import attach_memories
from trainer.dataset import Example
from trainer.recalled import chosen

log = logging.getLogger(__name__)

DISTRACTORS = 2
MIN_ANSWER_WORDS = 4
_FIRST_PERSON = re.compile(r"\b(?:i|i'm|im|i've|i'll|i'd|my|me|mine|we|we're|our)\b", re.I)


def add_drills(conn: psycopg.Connection, embedder: Embedder, train: list[Example], heldout: list[Example], *,
               fraction: float, seed: int = 13) -> list[Example]:
    """Drills for about `fraction` of the training examples that hold an answered
    question (at most one each); returns them (the caller adds them to the train split)."""
    if fraction <= 0 or not train or memory.stored_model(conn) is None:
        return []
    scopes = channel_scopes(conn)
    held = {i for example in heldout for i in example.message_ids}
    drills: list[Example] = []
    for example in train:
        if "owner_only" in example.tags or "recalled" in example.tags or not chosen(example, fraction, salt="drill:"):
            continue
        exchange = answered_question(example)
        if exchange is None:
            continue
        drill = _drill(conn, embedder, example, exchange, scopes[example.channel_id], held, seed)
        if drill is not None:
            drills.append(drill)
    log.info("recall drills: %d from %d training examples", len(drills), len(train))
    return drills


def answered_question(example: Example) -> tuple[str, str, str] | None:
    """(context line, question line "Name: …?", the owner's first-person answer) of the
    example's first answered question, if any."""
    chat = example.messages
    for asked, answer in itertools.pairwise(chat):
        if asked["role"] != "user" or answer["role"] != "assistant":
            continue
        lines = asked["content"].split("\n")
        context = lines[0] if lines[0].startswith("[") and lines[0].endswith("]") else ""
        question = lines[-1]
        text = answer["content"].strip()
        if question.rstrip().endswith("?") and len(text.split()) >= MIN_ANSWER_WORDS and _FIRST_PERSON.search(text):
            return context or _context_of(chat), question, text
    return None


def _context_of(chat: list[dict[str, str]]) -> str:
    first = next((m["content"].split("\n")[0] for m in chat if m["role"] == "user"), "")
    return first if first.startswith("[") else ""


def _drill(conn: psycopg.Connection, embedder: Embedder, example: Example, exchange: tuple[str, str, str], scope: str,
           held: set[int], seed: int) -> Example | None:
    context, question, answer = exchange
    asker, place = asked_within(scope, example.channel_id)
    first_line = answer.split("\n")[0].strip()
    found = [m for m in memory.recall(conn, embedder, f"{question}\n{answer}", asker_id=asker, place=place, owner_id=None,
                                      k=DISTRACTORS + 4) if held.isdisjoint(m.message_ids)]
    holding = next((m for m in found if first_line in m.content), None)
    if holding is None:
        return None
    others = [m for m in memory.recall(conn, embedder, question, asker_id=asker, place=place, owner_id=None, k=DISTRACTORS + 4)
              if m.id != holding.id and held.isdisjoint(m.message_ids)][:DISTRACTORS]
    chosen = [holding, *others]
    random.Random(f"{seed}:{example.target_ids[0]}").shuffle(chosen)
    user = f"{context}\n{question}" if context else question
    messages = [{"role": "system", "content": example.messages[0]["content"]}, {"role": "user", "content": user},
                {"role": "assistant", "content": answer}]
    return replace(
        example,
        messages=attach_memories(messages, [m.content for m in chosen]),
        tags=[*example.tags, "drill"],
        recalled_ids=[m.id for m in chosen],
        message_ids=sorted({*example.message_ids, *(i for m in chosen for i in m.message_ids)}),
    )


"""Saying "I don't know" when memory has nothing: the persona does not invent facts about its owner.

Measured before this existed: asked 10 questions whose answers are nowhere in the
history ("what car do you drive?"), the adapter answered every one with something made
up, and none said it did not know. Small models invent fluently; what they cannot do is
notice that nothing in the prompt answers the question. So the reply pipeline decides:

1. `asks_about_owner`: the message asks a factual question about the owner ("what's
   your…", "where do you…", "do you have…", "how old are you?") — rules over the
   question's form; greetings ("how are you?"), requests ("can you…") and opinions
   ("what do you think…") are not facts and pass untouched.
2. Grounding found no evidence: none of the owner's remembered sentences the asker may
   read answers it (persona/runtime/grounding.py, the same threshold).

Then the reply says it does not know, in the owner's voice: one of the owner's own
short "not sure"-type lines from places the asker may read, else the model's own
words after a forced "not sure" opening, as long as they are filler ("yet", "tbh", an
emoji): at most 8 tokens, cut at the first clause end or content word.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import psycopg

from persona.history import messages as history

HEDGE = re.compile(r"\b(?:not sure|idk|i don'?t know|dunno|no idea|can'?t remember|don'?t remember|forgot|never told|who knows)\b", re.I)
HEDGE_PHRASES = ("not sure", "idk", "don't know", "dont know", "dunno", "no idea", "can't remember", "cant remember", "forgot", "who knows")
OPENING = "not sure"  # the forced opening when the owner never wrote such a line
MAX_WORDS = 6  # a hedge line longer than this says more than "I don't know"

_SECOND_PERSON = re.compile(r"\b(?:you|your|yours|yourself|u|ur|you'?re|you'?ve|you'?d)\b", re.I)
_FACT_QUESTION = re.compile(
    r"^(?:what|what'?s|whats|where|where'?s|when|when'?s|who|who'?s|whose|which|why|"
    r"how (?:old|long|many|much|often|tall|far|big)|do|did|does|have|has|had|are|were|is|was|r)\b", re.I)
_NOT_A_FACT = re.compile(
    r"\b(?:how (?:are|r) (?:you|u)|how'?s it going|how have you been|what'?s up|whats up|sup|wyd|what are you up to|"
    r"what (?:do|did) (?:you|u) think|do (?:you|u) think|thoughts on|would (?:you|u) rather|"
    r"(?:do|did) (?:you|u) (?:want|wanna)|are (?:you|u) (?:ok|okay|there|around|free|coming|up for)|you (?:ok|okay|there)|"
    r"what should|should i|can i|could i)\b", re.I)
_REQUEST = re.compile(r"^(?:can|could|would|will|wanna|pls|please|let'?s|tell me)\b", re.I)
_MENTION = re.compile(r"<[@#][!&]?\d+>")
_OPENERS = re.compile(r"^(?:(?:ok|okay|so|but|wait|lol|hey|hi|btw|also|and|omg|ngl|oh|ya|yo|hm+|um+|actually|random question)[,!.]?\s+)+")
_QUESTION_SPLIT = re.compile(r"(?<=[?.!])\s+|\n+")


def asks_about_owner(text: str) -> bool:
    """Whether `text` asks a factual question about the person it is addressed to."""
    for sentence in _QUESTION_SPLIT.split(_MENTION.sub("", text)):
        sentence = _OPENERS.sub("", sentence.strip(" ,").lower())
        if not sentence or not (sentence.endswith("?") or _FACT_QUESTION.match(sentence)):
            continue
        if _NOT_A_FACT.search(sentence) or _REQUEST.match(sentence):
            continue
        if _FACT_QUESTION.match(sentence) and _SECOND_PERSON.search(sentence):
            return True
    return False


def owner_hedges(conn: psycopg.Connection, owner_id: int, scopes: list[str] | None) -> list[str]:
    """The owner's own short "don't know" lines in `scopes` (None: all), most used first."""
    lines = history.owner_lines_containing(conn, owner_id, HEDGE_PHRASES, scopes, max_chars=60)
    return [line for line in lines if HEDGE.search(line) and "?" not in line and len(line.split()) <= MAX_WORDS]


def pick(lines: Sequence[str], question: str) -> str:
    """One of `lines`, the same one for the same question (a stable hash, not Python's salted one)."""
    digest = int.from_bytes(hashlib.blake2b(question.encode(), digest_size=4).digest(), "big")
    return lines[digest % len(lines)]


_CLAUSE_END = re.compile(r"[\n.!?,;:]")
_TAIL_WORDS = frozenset(["yet", "either", "tho", "rn", "atm", "sorry", "tbh", "tbf", "fr", "ngl", "honestly", "lowkey", "lol", "lmao", "haha", "hehe", "omg",
                         "idk", "hmm", "hm", "ya", "yeah", "ok", "okay"])


def first_clause(opening: str, continuation: str) -> str:
    """The forced opening and what the model added (decoded without its leading space), up
    to the continuation's first clause end or first word that is not filler: "not sure
    yet tbh 🥲" stays, "not sure but she loves…" becomes "not sure" (measured: the model
    went on "but he's a good kid" — a claim — within its 8 tokens)."""
    cut = _CLAUSE_END.search(continuation)
    kept = []
    for word in (continuation[: cut.start()] if cut else continuation).split():
        bare = word.strip("!?.,~*").lower()
        if bare and any(ch.isalnum() for ch in bare) and bare not in _TAIL_WORDS:
            break
        kept.append(word)
    return " ".join([opening, *kept]).strip()

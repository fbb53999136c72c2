"""The guard before anything is sent in the owner's name: the `guard_terms` table's one home.

Two checks, each turning an automatic reply into a draft with the reason (never dropping
it, never sending it):

- the owner's **never-say list** (`persona guard add|remove|list`, the dashboard): words
  or phrases matched case-insensitively as whole words;
- **offensive language**, scored by alt-profanity-check: a linear SVM over 200k
  human-labelled lines, maintained (released in step with scikit-learn, whose version
  its model is saved with), offline, ~1 ms a reply once loaded, with a probability that
  makes the threshold (PERSONA_GUARD_OFFENSIVE_THRESHOLD) a setting. Word lists such as
  better-profanity were last released in 2020 and match words, not the way they are
  used. It knows English only; the never-say list covers any language.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from functools import cache
from typing import Any

import psycopg

from persona.errors import ConfigError

log = logging.getLogger(__name__)
MAX_TERM = 200


def _normal(term: str) -> str:
    return " ".join(term.casefold().split())


def add(conn: psycopg.Connection, term: str) -> bool:
    """Add a word or phrase; False when it was already there."""
    normal = _normal(term)
    if not normal:
        raise ConfigError("a never-say term needs at least one letter")
    if len(normal) > MAX_TERM:
        raise ConfigError(f"a never-say term has at most {MAX_TERM} characters")
    return conn.execute("INSERT INTO guard_terms (term) VALUES (%s) ON CONFLICT DO NOTHING", (normal,)).rowcount > 0


def remove(conn: psycopg.Connection, term: str) -> bool:
    return conn.execute("DELETE FROM guard_terms WHERE term = %s", (_normal(term),)).rowcount > 0


def terms(conn: psycopg.Connection) -> list[str]:
    return [r[0] for r in conn.execute("SELECT term FROM guard_terms ORDER BY term").fetchall()]


@dataclass(frozen=True)
class Screen:
    """The guard with the never-say list as it was read: `reason(text)` is pure CPU, so a
    streamed reply can be screened piece by piece without a database round trip."""

    never_say: tuple[str, ...]
    offensive_threshold: float  # 1.0: off

    def reason(self, text: str) -> str | None:
        """Why `text` may not go out automatically, or None."""
        folded = text.casefold()
        for term in self.never_say:
            if _as_word(term).search(folded):
                return f"your never-say list has “{term}”"
        if self.offensive_threshold < 1.0 and text.strip():
            score = offensive_score(text)
            if score > self.offensive_threshold:
                return f"it may be offensive (score {score:.2f} > {self.offensive_threshold:.2f})"
        return None


def screen(conn: psycopg.Connection, offensive_threshold: float) -> Screen:
    return Screen(tuple(terms(conn)), offensive_threshold)


@cache
def _as_word(term: str) -> re.Pattern[str]:
    words = r"\s+".join(re.escape(word) for word in term.split())
    return re.compile(rf"(?<!\w){words}(?!\w)")


def offensive_score(text: str) -> float:
    return float(_model()([text])[0])


@cache
def _model() -> Any:
    """alt-profanity-check's predictor, imported on first use (~2 s: scikit-learn and its model)."""
    from profanity_check import predict_prob

    return predict_prob


def warm_up() -> None:
    """Load the offensive-language model now (the bot does it at start, off the event loop)."""
    _model()

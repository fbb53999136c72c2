"""The language each message is written in: detected before it is put into memory, kept with it.

Not while an import stores it: measured (bench/ingest.py, 50,000 messages), detecting
each message there made the import 2.1× slower, while `persona memory build` — which
every import is followed by, and the bot runs every few minutes for what it saw — spends
~10 ms embedding each memory, against ~0.08 ms per message for this. So `fill_missing`
runs first in every memory build (and `persona languages detect` on its own): messages
with no language yet (NULL) get theirs, or `und` (ISO 639's "undetermined") when too
short to tell, and a message whose words change is detected again.

Detected by py3langid (langid.py's maintained fork: a naive Bayes model over byte
n-grams, shipped in the wheel — offline, nothing downloads at run time), restricted to
the languages the owner names (PERSONA_LANGUAGES; default ten). Measured against
lingua-language-detector in bench/language_id.py on chat lines in six languages, among
the same ten: py3langid 60/60 right on ten-word lines and 28/30 on two-to-four-word ones,
~0.05–0.08 ms a line, ~1 s and ~70 MB to load; lingua's high-accuracy mode 60/60 and
27/30 at ~0.25–0.4 ms, ~5 s and ~240 MB; its low-accuracy mode 56/60 and 27/30. As
accurate or more, five times faster, a third of the memory — and the bot's process loads
it too (live capture), beside the model: py3langid. A line with fewer than `MIN_LETTERS`
letters or `MIN_WORDS` words ("lol", "ok 👍", "si") says nothing about its language and
is stored as undetermined: both identifiers guess wildly there.

`text_search_config` names the PostgreSQL text-search configuration for a language
(`simple` where PostgreSQL has none).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

import psycopg

from persona.errors import ConfigError
from persona.language_codes import TEXT_SEARCH

log = logging.getLogger(__name__)

DEFAULT_LANGUAGES = ("en", "es", "pt", "de", "fr", "ru", "it", "nl", "pl", "tr")
UNDETERMINED = "und"  # stored for a line too short to tell (NULL: not looked at yet)
MIN_LETTERS = 8
MIN_WORDS = 2
BATCH = 2000  # messages read and updated together by `fill_missing`
_LETTER = re.compile(r"[^\W\d_]")
_WORD = re.compile(r"[^\W\d_]{2,}")
_NOT_LANGUAGE = re.compile(r"https?://\S+|<[@#:!&a-zA-Z0-9_]+>|@\w+|:\w+:")


def parse(configured: str) -> tuple[str, ...]:
    """PERSONA_LANGUAGES ("de,en") → ("de", "en"); empty → DEFAULT_LANGUAGES. A code
    persona does not know is one line naming the ones it does."""
    codes = tuple(dict.fromkeys(c.strip().lower() for c in configured.split(",") if c.strip()))
    unknown = [c for c in codes if c not in TEXT_SEARCH]
    if unknown:
        raise ConfigError(f"PERSONA_LANGUAGES: {', '.join(unknown)} is not a language persona knows; use ISO 639-1 codes among "
                          f"{', '.join(sorted(TEXT_SEARCH))}")
    return codes or DEFAULT_LANGUAGES


def text_search_config(language: str | None) -> str:
    """PostgreSQL's text-search configuration for `language` (`simple`: none, or undecided)."""
    return (TEXT_SEARCH.get(language or "") or "simple") if language else "simple"


def says_enough(text: str) -> bool:
    """Whether a line holds enough words to tell its language by."""
    text = _NOT_LANGUAGE.sub(" ", text)
    return len(_LETTER.findall(text)) >= MIN_LETTERS and len(_WORD.findall(text)) >= MIN_WORDS


class LanguageDetector:
    """Detects among `languages` (ISO 639-1 codes); with one language, every line that says
    enough is taken to be in it and nothing is loaded."""

    def __init__(self, languages: Sequence[str]) -> None:
        self.languages = tuple(languages)
        self._identifier = _identifier(self.languages) if len(self.languages) > 1 else None

    def detect(self, text: str) -> str | None:
        return self.detect_many([text])[0]

    def detect_many(self, texts: Sequence[str]) -> list[str | None]:
        """The language of each text (None: too short to tell)."""
        found: list[str | None] = []
        for text in texts:
            if not says_enough(text):
                found.append(None)
            elif self._identifier is None:
                found.append(self.languages[0])
            else:
                found.append(str(self._identifier.classify(_NOT_LANGUAGE.sub(" ", text))[0]))
        return found


@cache
def _identifier(languages: tuple[str, ...]) -> Any:
    """py3langid's model restricted to `languages` (one per process and set: ~1 s to load)."""
    from py3langid import langid

    identifier = langid.LanguageIdentifier.from_modelpath(Path(langid.MODEL_DIR) / langid.MODEL_FILE, norm_probs=True)
    identifier.set_languages(list(languages))
    return identifier


@cache
def detector_for(configured: str) -> LanguageDetector:
    return LanguageDetector(parse(configured))


@cache
def configured() -> LanguageDetector:
    """The detector for this process's PERSONA_LANGUAGES (what storing a message and reading
    a question use), read once per process."""
    from persona.config import load_settings

    return detector_for(load_settings().languages)


def fill_missing(conn: psycopg.Connection, detector: LanguageDetector) -> tuple[int, int]:
    """Detect the language of every stored message not looked at yet, a batch per
    transaction: (examined, given a language other than undetermined)."""
    from persona.history import messages

    examined = changed = last = 0
    while rows := messages.undetected(conn, last, BATCH):
        found = detector.detect_many([text for _, text in rows])
        changed += sum(bool(lang) for lang in found)
        messages.set_languages(conn, [(i, lang or UNDETERMINED) for (i, _), lang in zip(rows, found)])
        conn.commit()
        examined += len(rows)
        last = rows[-1][0]
    return examined, changed

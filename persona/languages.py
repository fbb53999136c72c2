"""The language each message is written in: detected when it is stored, kept with it.

Detected by lingua-language-detector, chosen over py3langid, langdetect and fastText's
identifiers because it is offline (its models ship in the wheel: nothing downloads at run
time), built for short and mixed-language text (what chat is), chooses among the
languages it is given only (PERSONA_LANGUAGES: fewer false guesses), and is maintained.
Measured in bench/language_id.py on chat lines in six languages (accuracy, lines left
undecided, time per line). Its low-accuracy mode is used: ~40 MB and ~0.05 ms a line in
batches, against ~250 MB and ~4 ms for the high-accuracy models, and the two differ on
the shortest lines only — which are left undecided here anyway: a line with fewer than
`MIN_LETTERS` letters or `MIN_WORDS` words ("lol", "ok 👍", "si") says nothing about its
language and is stored with none (NULL).

`text_search_config` names the PostgreSQL text-search configuration for a language
(`simple` where PostgreSQL has none).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from functools import cache

import psycopg

from persona.errors import ConfigError

log = logging.getLogger(__name__)

# ISO 639-1 code → PostgreSQL's text-search configuration (None: PostgreSQL has none; `simple` is used).
TEXT_SEARCH: dict[str, str | None] = {
    "en": "english", "es": "spanish", "pt": "portuguese", "de": "german", "fr": "french", "ru": "russian", "it": "italian",
    "nl": "dutch", "sv": "swedish", "da": "danish", "fi": "finnish", "nb": "norwegian", "hu": "hungarian", "ro": "romanian",
    "tr": "turkish", "el": "greek", "ca": "catalan", "id": "indonesian", "lt": "lithuanian", "ga": "irish", "hy": "armenian",
    "eu": "basque", "ar": "arabic", "hi": "hindi", "ta": "tamil", "sr": "serbian",
    "pl": None, "uk": None, "cs": None, "sk": None, "bg": None, "hr": None, "sl": None, "et": None, "lv": None, "he": None,
    "fa": None, "vi": None, "th": None, "ja": None, "zh": None, "ko": None,
}
DEFAULT_LANGUAGES = ("en", "es", "pt", "de", "fr", "ru", "it", "nl", "pl", "tr")
MIN_LETTERS = 8
MIN_WORDS = 2
BATCH = 2000  # lines detected together (lingua's parallel detection: ~6x faster than one by one)
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
        self._detector = _lingua(self.languages) if len(self.languages) > 1 else None

    def detect(self, text: str) -> str | None:
        return self.detect_many([text])[0]

    def detect_many(self, texts: Sequence[str]) -> list[str | None]:
        """The language of each text (None: too short to tell, or no clear winner)."""
        enough = [says_enough(t) for t in texts]
        if self._detector is None:
            return [self.languages[0] if ok else None for ok in enough]
        found: list[str | None] = [None] * len(texts)
        asked = [i for i, ok in enumerate(enough) if ok]
        for start in range(0, len(asked), BATCH):
            chunk = asked[start:start + BATCH]
            cleaned = [_NOT_LANGUAGE.sub(" ", texts[i]) for i in chunk]
            for i, language in zip(chunk, self._detector.detect_languages_in_parallel_of(cleaned)):
                found[i] = language.iso_code_639_1.name.lower() if language is not None else None
        return found


@cache
def _lingua(languages: tuple[str, ...]) -> object:
    from lingua import IsoCode639_1, LanguageDetectorBuilder

    codes = [getattr(IsoCode639_1, code.upper()) for code in languages]
    return LanguageDetectorBuilder.from_iso_codes_639_1(*codes).with_minimum_relative_distance(0.1).with_low_accuracy_mode().build()


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
    """Detect the language of every stored message without one (stored before detection
    existed, or written by hand), a batch per transaction: (examined, given a language)."""
    from persona.history import messages

    examined = changed = last = 0
    while rows := messages.undetected(conn, last, BATCH):
        found = detector.detect_many([text for _, text in rows])
        changed += messages.set_languages(conn, [(i, lang) for (i, _), lang in zip(rows, found) if lang])
        conn.commit()
        examined += len(rows)
        last = rows[-1][0]
    return examined, changed

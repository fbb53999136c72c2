"""Content words: what a line is about, without grammar words or chat filler.

One home for the word lists that topic names (persona/memory/topics.py), fact probes'
key words (trainer/fact_probes.py) and the consistency check
(persona/runtime/consistency.py) leave out — English's always, and the grammar words of
the line's own language when it is another.
"""

from __future__ import annotations

import re
from functools import cache, lru_cache

WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")
# Said everywhere in chat, so they say nothing about what a line is about (with few topics
# listed, class-based TF-IDF alone cannot tell: "lol" is frequent in each of them).
CHAT_FILLER = frozenset(
    ["lol", "lmao", "haha", "hehe", "omg", "ngl", "tbh", "lowkey", "highkey", "fr", "idk", "imo", "btw", "yeah", "yep", "yup", "nah", "okay", "ok", "ya",
     "yes", "sure", "bet", "good", "great", "nice", "cool", "really", "just", "like", "got", "get", "gonna", "wanna", "gotta", "need", "thing", "things",
     "stuff", "day", "today", "time", "know", "think", "mean", "honestly", "literally", "actually", "pretty", "sooo", "soo", "omfg", "lmk", "wait"]
)


@cache
def stop_words(languages: frozenset[str] = frozenset()) -> frozenset[str]:
    """English grammar words (scikit-learn's list), chat filler, and the grammar words of
    `languages` (ISO 639-1; the stop-words package's lists, offline, 33 languages)."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    words = frozenset(ENGLISH_STOP_WORDS) | CHAT_FILLER
    for language in sorted(languages - {"en"}):
        words |= _other_stop_words(language)
    return words


# Question words and chat filler the stop-words lists lack (their accented forms above all).
_MORE_STOP_WORDS = {
    "es": {"cuál", "cuáles", "cuándo", "dónde", "cómo", "qué", "quién", "quiénes", "cuánto", "cuánta", "cuántos", "cuántas", "jaja", "jajaja",
           "jeje", "xd", "vale", "bueno", "porfa", "tío", "tía"},
    "pt": {"qual", "quais", "onde", "quando", "como", "quem", "quanto", "quanta", "quantos", "quantas", "kkk", "kkkk", "né", "tipo", "então"},
    "de": {"wer", "wie", "wo", "wann", "warum", "welche", "welcher", "welches", "wohin", "woher", "haha", "halt", "echt", "mal", "safe"},
    "fr": {"quel", "quelle", "quels", "quelles", "où", "quand", "comment", "combien", "pourquoi", "mdr", "ptdr", "bah", "genre", "trop"},
    "ru": {"что", "где", "когда", "кто", "какой", "какая", "какое", "какие", "сколько", "почему", "куда", "откуда", "ахах", "хаха", "лол"},
}


@cache
def _other_stop_words(language: str) -> frozenset[str]:
    from stop_words import StopWordError, get_stop_words

    try:
        listed = frozenset(w.lower() for w in get_stop_words(language))
    except StopWordError:  # a language it has no list for: its words all count
        listed = frozenset()
    return listed | _MORE_STOP_WORDS.get(language, set())


def content_words(text: str, *, min_length: int = 3, language: str | None = None) -> list[str]:
    """The lowercased words of `text` that carry content, in order: no grammar words (of
    English and of `language`, detected when not given: "ich wohne in porto" → "wohne",
    "porto"), no chat filler, no contractions ("don't"), at least `min_length` characters
    (any number counts: "4" is a fact)."""
    found = language if language is not None else language_of(text)
    stop = stop_words(frozenset({found}) if found else frozenset())
    return [w for w in (m.lower() for m in WORD.findall(text))
            if (len(w) >= min_length or w.isdigit()) and w not in stop and "'" not in w and "’" not in w]


@lru_cache(maxsize=8192)
def language_of(text: str) -> str | None:
    """The language of a line (persona/languages.py; None: too short to tell), remembered
    for the lines a check reads again and again."""
    from persona.languages import configured

    return configured().detect(text)


def stem(word: str) -> str:
    """A crude plural/verb-ending fold, enough to match "cashews" with "cashew" and "loaves" with "loaf"
    when deciding whether two lines share a word (not a linguistic stemmer: no package needed for this)."""
    for ending, replacement in (("ves", "f"), ("ies", "y"), ("es", ""), ("s", ""), ("ing", ""), ("ed", "")):
        if word.endswith(ending) and len(word) - len(ending) >= 3:
            return word[: -len(ending)] + replacement
    return word

"""The words full-text recall matches, in each message's own language.

A memory holds a conversation, and a conversation may switch language. Its `tsv` is the
whole memory's words as they are (PostgreSQL's `simple` configuration: names, slang and
any language match exactly) plus each message's words under the text-search configuration
of the language detected when it was stored (persona/languages.py): German words stemmed
by German's stemmer, as the question's German words are, Russian by Russian's; a language
PostgreSQL has no configuration for, or a line too short to tell, adds nothing beyond
`simple`. `languages` lists the memory's languages
(NULL: not yet indexed this way — rows from before migration 0019 keep their English
lexemes until `index_pending` reaches them, a batch per transaction).

The question side is `query_configs`: the configuration of the question's own language, or
— a question too short to tell — of every configured language; recall ORs the question's
lexemes under each (persona/memory/recall.py).
"""

from __future__ import annotations

import logging

import psycopg

from persona import languages
from persona.words import language_of

log = logging.getLogger(__name__)

BATCH = 1000

_INDEX = """
UPDATE memories m SET tsv = w.lexemes, languages = w.found
FROM (
    SELECT mem.id,
           to_tsvector('simple', mem.content)
             || coalesce(tsvector_agg(to_tsvector(cfg.config::regconfig, msg.content)) FILTER (WHERE cfg.config IS NOT NULL), ''::tsvector)
             AS lexemes,
           coalesce(array_agg(DISTINCT msg.language) FILTER (WHERE msg.language <> 'und'), '{}') AS found
    FROM memories mem
    LEFT JOIN messages msg ON msg.id = ANY(mem.message_ids)
    LEFT JOIN unnest(%(codes)s::text[], %(configs)s::text[]) AS cfg(code, config) ON cfg.code = msg.language
    WHERE mem.id = ANY(%(ids)s)
    GROUP BY mem.id, mem.content
) w
WHERE m.id = w.id
"""


def _mapping() -> dict[str, list[str]]:
    pairs = [(code, config) for code, config in languages.TEXT_SEARCH.items() if config]
    return {"codes": [c for c, _ in pairs], "configs": [c for _, c in pairs]}


def index(conn: psycopg.Connection, memory_ids: list[int]) -> int:
    """(Re-)index these memories' words from their messages' languages (the caller commits)."""
    if not memory_ids:
        return 0
    return conn.execute(_INDEX, {**_mapping(), "ids": memory_ids}).rowcount


def index_pending(conn: psycopg.Connection, *, limit: int | None = None) -> int:
    """Index every memory not yet indexed by language (new ones, and rows from before
    migration 0019), `BATCH` per transaction; at most `limit` (the bot's refresh: a little
    each time). Returns how many."""
    done = 0
    while limit is None or done < limit:
        size = BATCH if limit is None else min(BATCH, limit - done)
        ids = [r[0] for r in conn.execute("SELECT id FROM memories WHERE languages IS NULL ORDER BY id LIMIT %s", (size,)).fetchall()]
        if not ids:
            break
        done += index(conn, ids)
        conn.commit()
    conn.commit()
    return done


def query_configs(question: str) -> list[str]:
    """The text-search configurations to read a question with: its own language's, or (too
    short to tell) every configured language's; `simple` always."""
    found = language_of(question)  # remembered: grounding reads the same question's language
    codes = [found] if found else list(languages.configured().languages)
    return list(dict.fromkeys([*(c for c in (languages.TEXT_SEARCH.get(code) for code in codes) if c), "simple"]))

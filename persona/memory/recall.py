"""Recall: the only way anything reads memory.

`recall(question, asker, place)` turns who asks and where into the readable scopes
(`persona.privacy.scopes`) and searches only those, in SQL. Vector (HNSW, cosine) and
full-text (GIN) candidates, both filtered by scope in the WHERE clause, are fused by
reciprocal rank with a mild preference for recent memories. pgvector's iterative index
scans keep a narrow scope returning k rows when k exist. `search` is the same query for
an explicit scope list: recall's engine, and what the benchmarks measure.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql

from persona.memory.embeddings import Embedder
from persona.memory.lexemes import query_configs
from persona.memory.vectors import check_model
from persona.privacy.scopes import Place, readable_scopes

log = logging.getLogger(__name__)

RRF_K = 60
TEXT_WEIGHT = 1.0  # full-text ranks count this much relative to vector ranks in the fusion
RECENCY_WEIGHT = 0.2  # a memory from today scores up to 20% more than an old one
RECENCY_HALF_LIFE_DAYS = 180
EF_SEARCH = 100


@dataclass(frozen=True)
class Memory:
    id: int
    scope: str
    content: str
    score: float
    started_at: datetime
    ended_at: datetime
    message_ids: list[int]
    channel_id: int | None = None  # set by `opened`

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "scope": self.scope, "score": round(self.score, 6), "content": self.content}


_VECTOR_HITS = sql.SQL("""
    SELECT id, row_number() OVER (ORDER BY distance) AS rank, 1.0 AS weight FROM (
        SELECT id, embedding <=> %(q)s AS distance
        FROM memories
        WHERE embedding IS NOT NULL {filters}
        ORDER BY {order}
        LIMIT %(n)s
    ) nearest
""")
# HNSW (approximate) ordering, and an exact one the index cannot serve: for a small
# scope, reading its rows through the scope index and sorting them is both exact and
# faster than walking the graph until enough rows pass the filter.
_ANN_ORDER = sql.SQL("embedding <=> %(q)s")
_EXACT_ORDER = sql.SQL("(embedding <=> %(q)s) + 0")
EXACT_SCOPE_ROWS = 10_000
_TEXT_HITS = sql.SQL("""
    SELECT id, row_number() OVER (ORDER BY rank_cd DESC, id) AS rank, %(text_weight)s AS weight FROM (
        SELECT id, ts_rank_cd(tsv, query, 32) AS rank_cd
        FROM memories, to_tsquery('simple', %(tsquery)s) AS query
        WHERE tsv @@ query {filters}
        ORDER BY rank_cd DESC, id
        LIMIT %(n)s
    ) matching
""")
# PostgreSQL's full-text ranking has no inverse document frequency, and ANDing every
# word of a chatty question ("what happened to the Zephyrine?") matches nothing. So the
# text query ORs the question's words that are selective: found in fewer than `cap`
# memories (a capped count on the GIN index, cheap even for common words) — read under the
# question's language's configuration and `simple` (persona/memory/lexemes.py).
_SELECTIVE_TERMS = """
SELECT DISTINCT lexeme FROM unnest(%(configs)s::regconfig[]) AS config, unnest(tsvector_to_array(to_tsvector(config, %(text)s))) AS lexeme
WHERE (SELECT count(*) FROM (
          SELECT 1 FROM memories WHERE tsv @@ to_tsquery('simple', quote_literal(lexeme)) LIMIT %(cap)s
      ) AS found) < %(cap)s
"""
# Reciprocal rank fusion, then a mild recency boost: score *= 1 + w * 0.5^(age / half-life).
# An age below zero (a message dated in the future: a phone with a wrong clock) counts
# as today, so the boost never exceeds 1 + w and power() never overflows.
_FUSE = sql.SQL("""
WITH hits AS MATERIALIZED ({hits})
SELECT m.id, m.scope, m.content, m.started_at, m.ended_at, m.message_ids,
       s.rrf * (1 + %(recency)s * power(0.5, greatest(extract(epoch FROM (now() - m.ended_at)), 0) / (86400.0 * %(half_life)s))) AS score
FROM (SELECT id, sum(weight / (%(rrf_k)s + rank)) AS rrf FROM hits GROUP BY id) s
JOIN memories m ON m.id = s.id
ORDER BY score DESC, m.id
LIMIT %(fetch)s
""")
# Belt and braces: opt-out deletes a person's memories; this refuses any that remain.
_NOT_OPTED_OUT = sql.SQL("AND NOT (author_ids && coalesce((SELECT array_agg(id) FROM people WHERE opted_out_at IS NOT NULL), '{}'))")
MODES = ("fused", "vector", "text")


def readable_filter(scopes: list[str] | None) -> sql.Composable:
    """The WHERE conditions (after a leading condition, each starting with AND) that keep
    a query on `memories` inside `scopes` (None: all) and away from opted-out people;
    the query binds `%(scopes)s`. Everything that reads memory filters through this."""
    if scopes is None:
        return _NOT_OPTED_OUT
    return sql.SQL(" ").join([sql.SQL("AND scope = ANY(%(scopes)s)"), _NOT_OPTED_OUT])


def search(conn: psycopg.Connection, embedder: Embedder, query: str, scopes: list[str] | None, *, k: int = 10,
           mode: str = "fused", recency: float = RECENCY_WEIGHT) -> list[Memory]:
    """Top-k memories for `query` within `scopes` (None: all). `mode`: fused, vector or text;
    `recency`: how much more a memory from today counts than an old one (0: not at all)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}")
    if scopes is not None and not scopes:
        return []
    check_model(conn, embedder)
    vector = mode in ("fused", "vector")
    exact = vector and _small_scope(conn, scopes)
    tsquery = selective_tsquery(conn, query) if mode in ("fused", "text") else ""
    if not vector and not tsquery:
        return []
    statement = _statement(scoped=scopes is not None, vector=vector, exact=exact, text=bool(tsquery))
    params = {
        "q": embedder.embed_query(query) if mode != "text" else None, "tsquery": tsquery, "scopes": scopes,
        "n": max(4 * k, 40), "fetch": 2 * k, "rrf_k": RRF_K, "text_weight": TEXT_WEIGHT, "recency": recency, "half_life": RECENCY_HALF_LIFE_DAYS,
    }
    with conn.transaction():
        # pgvector >= 0.8: keep scanning the graph until enough rows pass the scope filter.
        conn.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
        conn.execute(sql.SQL("SET LOCAL hnsw.ef_search = {}").format(sql.Literal(max(EF_SEARCH, 4 * k))))
        rows = conn.execute(statement, params).fetchall()
    return list(_dedupe(Memory(r[0], r[1], r[2], float(r[6]), r[3], r[4], list(r[5])) for r in rows))[:k]


@functools.cache
def _statement(*, scoped: bool, vector: bool, exact: bool, text: bool) -> bytes:
    """The search's SQL for one combination of its parts, composed once (psycopg.sql) and
    kept: composing it anew took ~80 µs of every recall."""
    filters = readable_filter([] if scoped else None)
    parts: list[sql.Composable] = []
    if vector:
        parts.append(_VECTOR_HITS.format(filters=filters, order=_EXACT_ORDER if exact else _ANN_ORDER))
    if text:
        parts.append(_TEXT_HITS.format(filters=filters))
    return _FUSE.format(hits=sql.SQL(" UNION ALL ").join(sql.SQL("({})").format(p) for p in parts)).as_bytes(None)


def _small_scope(conn: psycopg.Connection, scopes: list[str] | None) -> bool:
    if scopes is None:
        return False
    found = conn.execute(
        "SELECT count(*) FROM (SELECT 1 FROM memories WHERE scope = ANY(%s) LIMIT %s) AS capped", (scopes, EXACT_SCOPE_ROWS + 1)
    ).fetchone()[0]
    return int(found) <= EXACT_SCOPE_ROWS


def selective_tsquery(conn: psycopg.Connection, text: str) -> str:
    """`a | b | c` of the words of `text` that are rare enough to be worth matching."""
    estimate = conn.execute("SELECT greatest(reltuples, 0) FROM pg_class WHERE oid = 'memories'::regclass").fetchone()[0]
    cap = max(20, int(float(estimate) * 0.05))
    terms = [r[0] for r in conn.execute(_SELECTIVE_TERMS, {"text": text, "cap": cap, "configs": query_configs(text)}).fetchall()]
    return " | ".join(_quote_lexeme(t) for t in terms)


def _quote_lexeme(lexeme: str) -> str:
    return "'" + lexeme.replace("\\", "\\\\").replace("'", "''") + "'"


def _dedupe(memories: Iterator[Memory]) -> Iterator[Memory]:
    seen: set[str] = set()
    for memory in memories:
        key = memory.content.split("\n", 1)[-1]  # the same words under another date header
        if key in seen:
            continue
        seen.add(key)
        yield memory


def recall(conn: psycopg.Connection, embedder: Embedder, query: str, *, asker_id: int | None, place: Place,
           owner_id: int | None, k: int = 10, mode: str = "fused") -> list[Memory]:
    """What may be remembered for `asker_id` at `place`: the only way anything reads memory."""
    return search(conn, embedder, query, readable_scopes(asker_id, place, owner_id), k=k, mode=mode)


def opened(conn: psycopg.Connection, memory_id: int) -> Memory | None:
    """One memory by id, for the owner's own eyes (the dashboard's explorer opens what
    `recall` returned); no scope rule applies: the owner may read everything."""
    row = conn.execute("SELECT id, scope, content, 0.0, started_at, ended_at, message_ids, channel_id FROM memories WHERE id = %s",
                       (memory_id,)).fetchone()
    return Memory(row[0], row[1], row[2], row[3], row[4], row[5], list(row[6]), row[7]) if row else None

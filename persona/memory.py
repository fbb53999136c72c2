"""Memory: chunks of what was said, embedded, and recalled with scope rules in SQL.

Build (`persona memory build`): messages not yet chunked (`messages.memory_id IS NULL`)
become memories, channel by channel, each channel in its own transaction; then every
memory without a vector is embedded, batch by batch, each batch committed. A kill at
any point loses at most the batch in flight, and nothing is done twice.

Recall: the only way the bot reads memory. Vector (HNSW, cosine) and full-text (GIN)
candidates, both filtered by the asker's readable scopes in the WHERE clause, fused by
reciprocal rank with a mild preference for recent memories. pgvector's iterative index
scans keep a narrow scope returning k rows when k exist.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import psycopg
from psycopg import sql

from persona.chunking import DEFAULT_GAP, Chunk, ChunkMessage, chunk_conversation, chunk_note
from persona.embeddings import Embedder
from persona.errors import PersonaError
from persona.scopes import Place, readable_scopes

log = logging.getLogger(__name__)

INDEX_NAME = "memories_embedding_hnsw"
RRF_K = 60
TEXT_WEIGHT = 1.0  # full-text ranks count this much relative to vector ranks in the fusion
RECENCY_WEIGHT = 0.2  # a memory from today scores up to 20% more than an old one
RECENCY_HALF_LIFE_DAYS = 180
EF_SEARCH = 100


class MemoryConfigError(PersonaError):
    """Memory cannot be used as configured (model switched, dimension mismatch)."""


@dataclass(frozen=True)
class Memory:
    id: int
    scope: str
    content: str
    score: float
    started_at: datetime
    ended_at: datetime
    message_ids: list[int]

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "scope": self.scope, "score": round(self.score, 6), "content": self.content}


# --- the vector column follows the embedding model -----------------------------------------


def stored_model(conn: psycopg.Connection) -> tuple[str, int] | None:
    row = conn.execute("SELECT embed_model, dimension FROM memory_config").fetchone()
    return (row[0], int(row[1])) if row else None


def check_model(conn: psycopg.Connection, embedder: Embedder) -> None:
    """Fail clearly if stored vectors came from another model or have another dimension."""
    stored = stored_model(conn)
    if stored is None:
        return
    name, dimension = stored
    if name != embedder.name:
        raise MemoryConfigError(
            f"memories were embedded with {name} ({dimension}-d) but PERSONA_EMBED_MODEL is now {embedder.name}: "
            "run `persona memory rebuild` to re-embed them, or set PERSONA_EMBED_MODEL back"
        )
    if dimension != embedder.dimension:
        raise MemoryConfigError(
            f"{embedder.name} now gives {embedder.dimension}-d vectors but the stored ones are {dimension}-d: "
            "run `persona memory rebuild`"
        )


def prepare_vectors(conn: psycopg.Connection, embedder: Embedder, *, rebuild: bool = False) -> None:
    """Record the model and type the vector column for its dimension (first use or rebuild)."""
    stored = stored_model(conn)
    if stored is not None and not rebuild:
        check_model(conn, embedder)
        return
    dimension = embedder.dimension
    with conn.transaction():
        conn.execute(sql.SQL("DROP INDEX IF EXISTS {}").format(sql.Identifier(INDEX_NAME)))
        conn.execute("UPDATE memories SET embedding = NULL, embed_model = NULL WHERE embedding IS NOT NULL")
        conn.execute(sql.SQL("ALTER TABLE memories ALTER COLUMN embedding TYPE vector({})").format(sql.Literal(dimension)))
        conn.execute(
            "INSERT INTO memory_config (embed_model, dimension) VALUES (%s, %s) "
            "ON CONFLICT (singleton) DO UPDATE SET embed_model = EXCLUDED.embed_model, dimension = EXCLUDED.dimension, updated_at = now()",
            (embedder.name, dimension),
        )
    log.info("memory vectors: %s, %d dimensions", embedder.name, dimension)


def ensure_index(conn: psycopg.Connection) -> bool:
    """Create the HNSW index if it is missing (after a bulk embed it builds faster); True if built."""
    exists = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (INDEX_NAME,)).fetchone()[0]
    if exists:
        return False
    with conn.transaction():
        conn.execute("SET LOCAL maintenance_work_mem = '512MB'")
        conn.execute(
            sql.SQL("CREATE INDEX IF NOT EXISTS {} ON memories USING hnsw (embedding vector_cosine_ops)").format(sql.Identifier(INDEX_NAME))
        )
    return True


# --- chunking ----------------------------------------------------------------------------------


_CHANNELS_WITH_NEW = "SELECT DISTINCT channel_id FROM messages WHERE memory_id IS NULL"
_UNCHUNKED = """
SELECT m.id, m.created_at, coalesce(nullif(p.display_name, ''), nullif(p.name, ''), 'someone'), m.content, m.author_id,
       m.attachments ->> 0
FROM messages m JOIN people p ON p.id = m.author_id
WHERE m.channel_id = %s AND m.memory_id IS NULL AND p.opted_out_at IS NULL
ORDER BY m.created_at, m.id
"""
_CHANNEL = """
SELECT c.kind, c.name, c.guild_name, c.scope,
       (SELECT coalesce(nullif(p.display_name, ''), p.name) FROM people p
        WHERE c.kind = 'dm' AND p.id = nullif(split_part(c.scope, ':', 2), '')::bigint)
FROM channels c WHERE c.id = %s
"""


def place_label(kind: str, name: str | None, guild_name: str | None, dm_name: str | None) -> str:
    if kind == "dm":
        return f"DM with {dm_name or name or 'someone'}"
    if kind == "group_dm":
        return f"group {name or 'chat'}"
    if kind == "notes":
        return f"notes {name or ''}".strip()
    where = f" ({guild_name})" if guild_name else ""
    return f"#{name or 'channel'}{where}"


def chunk_pending(conn: psycopg.Connection, embedder: Embedder, *, close_open: bool = True, gap: timedelta = DEFAULT_GAP,
                  now: datetime | None = None, on_channel: Callable[[int], None] | None = None) -> int:
    """Turn un-chunked messages into memories (without vectors yet); return how many."""
    budget = max(32, embedder.max_tokens - 16)
    count_tokens = embedder.count_tokens
    now = now or datetime.now(timezone.utc)
    created = 0
    channel_ids = [row[0] for row in conn.execute(_CHANNELS_WITH_NEW).fetchall()]
    conn.commit()
    for channel_id in channel_ids:
        with conn.transaction():
            info = conn.execute(_CHANNEL, (channel_id,)).fetchone()
            if info is None:
                continue
            kind, name, guild_name, scope, dm_name = info
            rows = conn.execute(_UNCHUNKED, (channel_id,)).fetchall()
            messages = [ChunkMessage(r[0], r[1], r[2], r[3]) for r in rows]
            authors = {r[0]: r[4] for r in rows}
            if kind == "notes":
                titles = {r[0]: (r[5] or "note").rsplit("/", 1)[-1].rsplit(".", 1)[0] for r in rows}
                chunks = [c for m in messages for c in chunk_note(m, title=titles[m.id], count_tokens=count_tokens, budget=budget)]
            else:
                chunks = chunk_conversation(messages, place=place_label(kind, name, guild_name, dm_name), count_tokens=count_tokens, budget=budget, gap=gap)
                if chunks and not close_open and now - chunks[-1].ended_at <= gap:
                    chunks.pop()  # the conversation may still be going on: chunk it later
            created += _store_chunks(conn, chunks, scope, channel_id, authors)
        if on_channel is not None:
            on_channel(channel_id)
    return created


def _store_chunks(conn: psycopg.Connection, chunks: list[Chunk], scope: str, channel_id: int, authors: dict[int, int]) -> int:
    for chunk in chunks:
        author_ids = sorted({authors[i] for i in chunk.message_ids})
        memory_id = conn.execute(
            "INSERT INTO memories (scope, channel_id, content, started_at, ended_at, message_ids, author_ids) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id",
            (scope, channel_id, chunk.content, chunk.started_at, chunk.ended_at, chunk.message_ids, author_ids),
        ).fetchone()[0]
        conn.execute("UPDATE messages SET memory_id = %s WHERE id = ANY(%s) AND memory_id IS NULL", (memory_id, chunk.message_ids))
    return len(chunks)


# --- embedding ---------------------------------------------------------------------------------


def unembedded_count(conn: psycopg.Connection) -> int:
    return int(conn.execute("SELECT count(*) FROM memories WHERE embedding IS NULL").fetchone()[0])


def embed_pending(conn: psycopg.Connection, embedder: Embedder, *, batch: int = 256, progress: Callable[[int], None] | None = None) -> int:
    """Embed memories that have no vector yet, committing each batch; return how many."""
    done = 0
    while True:
        rows = conn.execute(
            "SELECT id, content FROM memories WHERE embedding IS NULL ORDER BY id LIMIT %s", (batch,)
        ).fetchall()
        if not rows:
            conn.commit()
            return done
        vectors = embedder.embed_passages([r[1] for r in rows], progress)
        with conn.cursor() as cur:
            cur.executemany(
                "UPDATE memories SET embedding = %s, embed_model = %s WHERE id = %s",
                [(vector, embedder.name, row[0]) for row, vector in zip(rows, vectors)],
            )
        conn.commit()
        done += len(rows)


def build(conn: psycopg.Connection, embedder: Embedder, *, close_open: bool = True, progress: Callable[[int], None] | None = None,
          now: datetime | None = None) -> tuple[int, int]:
    """Chunk what is new and embed what has no vector; (memories created, memories embedded)."""
    prepare_vectors(conn, embedder)
    conn.commit()
    created = chunk_pending(conn, embedder, close_open=close_open, now=now)
    embedded = embed_pending(conn, embedder, progress=progress)
    ensure_index(conn)
    return created, embedded


def refresh(conn: psycopg.Connection, embedder: Embedder, *, now: datetime | None = None) -> tuple[int, int]:
    """For a running bot: chunk conversations that have paused, embed them; cheap when idle."""
    return build(conn, embedder, close_open=False, now=now)


def rebuild(conn: psycopg.Connection, embedder: Embedder, *, progress: Callable[[int], None] | None = None) -> int:
    """Re-embed every memory with the configured model (after switching models)."""
    prepare_vectors(conn, embedder, rebuild=True)
    conn.commit()
    embedded = embed_pending(conn, embedder, progress=progress)
    ensure_index(conn)
    return embedded


# --- forgetting ----------------------------------------------------------------------------------


def forget_memories_of(conn: psycopg.Connection, message_ids: list[int]) -> int:
    """Delete every memory built from any of `message_ids`; their other messages are
    set back to un-chunked so the next build re-chunks them without the forgotten ones."""
    if not message_ids:
        return 0
    deleted = conn.execute(
        "DELETE FROM memories WHERE message_ids && %s::bigint[] RETURNING message_ids", (message_ids,)
    ).fetchall()
    affected = sorted({i for (ids,) in deleted for i in ids})
    if affected:
        conn.execute("UPDATE messages SET memory_id = NULL WHERE id = ANY(%s)", (affected,))
    return len(deleted)


def forget_changed(conn: psycopg.Connection, import_run_id: int) -> int:
    """After an import replaced messages with richer records, drop the memories built
    from the old text (the new text is chunked on the next build)."""
    changed = [r[0] for r in conn.execute(
        "SELECT id FROM messages WHERE import_run_id = %s AND memory_id IS NOT NULL", (import_run_id,)
    ).fetchall()]
    return forget_memories_of(conn, changed)


# --- recall --------------------------------------------------------------------------------------


_VECTOR_HITS = """
    SELECT id, row_number() OVER (ORDER BY distance) AS rank, 1.0 AS weight FROM (
        SELECT id, embedding <=> %(q)s AS distance
        FROM memories
        WHERE embedding IS NOT NULL {filters}
        ORDER BY {order}
        LIMIT %(n)s
    ) nearest
"""
# HNSW (approximate) ordering, and an exact one the index cannot serve: for a small
# scope, reading its rows through the scope index and sorting them is both exact and
# faster than walking the graph until enough rows pass the filter.
_ANN_ORDER = "embedding <=> %(q)s"
_EXACT_ORDER = "(embedding <=> %(q)s) + 0"
EXACT_SCOPE_ROWS = 10_000
_TEXT_HITS = """
    SELECT id, row_number() OVER (ORDER BY rank_cd DESC, id) AS rank, %(text_weight)s AS weight FROM (
        SELECT id, ts_rank_cd(tsv, query, 32) AS rank_cd
        FROM memories, to_tsquery('simple', %(tsquery)s) AS query
        WHERE tsv @@ query {filters}
        ORDER BY rank_cd DESC, id
        LIMIT %(n)s
    ) matching
"""
# PostgreSQL's full-text ranking has no inverse document frequency, and ANDing every
# word of a chatty question ("what happened to the Zephyrine?") matches nothing. So the
# text query ORs the question's words that are selective: found in fewer than `cap`
# memories (a capped count on the GIN index, cheap even for common words).
_SELECTIVE_TERMS = """
SELECT lexeme FROM unnest(tsvector_to_array(to_tsvector('english', %(text)s))) AS lexeme
WHERE (SELECT count(*) FROM (
          SELECT 1 FROM memories WHERE tsv @@ to_tsquery('simple', quote_literal(lexeme)) LIMIT %(cap)s
      ) AS found) < %(cap)s
"""
# Reciprocal rank fusion, then a mild recency boost: score *= 1 + w * 0.5^(age / half-life).
_FUSE = """
WITH hits AS MATERIALIZED ({hits})
SELECT m.id, m.scope, m.content, m.started_at, m.ended_at, m.message_ids,
       s.rrf * (1 + %(recency)s * power(0.5, extract(epoch FROM (now() - m.ended_at)) / (86400.0 * %(half_life)s))) AS score
FROM (SELECT id, sum(weight / (%(rrf_k)s + rank)) AS rrf FROM hits GROUP BY id) s
JOIN memories m ON m.id = s.id
ORDER BY score DESC, m.id
LIMIT %(fetch)s
"""
# Belt and braces: opt-out deletes a person's memories; this refuses any that remain.
_NOT_OPTED_OUT = "AND NOT (author_ids && coalesce((SELECT array_agg(id) FROM people WHERE opted_out_at IS NOT NULL), '{}'))"
MODES = ("fused", "vector", "text")


def search(conn: psycopg.Connection, embedder: Embedder, query: str, scopes: list[str] | None, *, k: int = 10,
           mode: str = "fused", recency: float = RECENCY_WEIGHT) -> list[Memory]:
    """Top-k memories for `query` within `scopes` (None: all). `mode`: fused, vector or text;
    `recency`: how much more a memory from today counts than an old one (0: not at all)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}")
    if scopes is not None and not scopes:
        return []
    check_model(conn, embedder)
    filters = ("AND scope = ANY(%(scopes)s) " if scopes is not None else "") + _NOT_OPTED_OUT
    parts = []
    if mode in ("fused", "vector"):
        order = _EXACT_ORDER if _small_scope(conn, scopes) else _ANN_ORDER
        parts.append(_VECTOR_HITS.format(filters=filters, order=order))
    tsquery = selective_tsquery(conn, query) if mode in ("fused", "text") else ""
    if tsquery:
        parts.append(_TEXT_HITS.format(filters=filters))
    if not parts:
        return []
    statement = _FUSE.format(hits=" UNION ALL ".join(f"({p})" for p in parts))
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
    terms = [r[0] for r in conn.execute(_SELECTIVE_TERMS, {"text": text, "cap": cap}).fetchall()]
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
           owner_id: int | None, k: int = 10) -> list[Memory]:
    """What the bot may remember for this asker at this place: the only way it reads memory."""
    return search(conn, embedder, query, readable_scopes(asker_id, place, owner_id), k=k)

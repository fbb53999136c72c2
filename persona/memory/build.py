"""Building memory: messages not yet in a memory become chunks, and chunks get vectors.

`persona memory build`: un-chunked messages become memories channel by channel, each
channel in its own transaction; then every memory without a vector is embedded, batch
by batch, each batch committed. A kill at any point loses at most the batch in flight,
and nothing is done twice. The running bot calls `refresh` to do the same for
conversations that have paused.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg

from persona import languages
from persona.history import messages as history
from persona.history import people
from persona.memory import lexemes, topics
from persona.memory.chunking import DEFAULT_GAP, Chunk, ChunkMessage, chunk_conversation, chunk_note
from persona.memory.embeddings import Embedder
from persona.memory.vectors import ensure_index, prepare_vectors
from persona.prompts import place_label

log = logging.getLogger(__name__)
REFRESH_REINDEX = 5000  # older memories a bot's refresh re-indexes by language each time (the rest the next time)

Advance = Callable[[int], None]
# A progress bar that needs its total first: `with bar(total) as advance: advance(n)`.
ProgressBar = Callable[[int], AbstractContextManager[Advance]]


@dataclass(frozen=True)
class Built:
    created: int  # new memories
    embedded: int  # memories given a vector
    total: int  # memories in all
    index_built: bool


def chunk_pending(conn: psycopg.Connection, embedder: Embedder, *, close_open: bool = True, gap: timedelta = DEFAULT_GAP,
                  now: datetime | None = None, on_channel: Callable[[int], None] | None = None) -> int:
    """Turn un-chunked messages into memories (without vectors yet); return how many."""
    budget = max(32, embedder.max_tokens - 16)
    count_tokens = embedder.count_tokens
    now = now or datetime.now(UTC)
    created = 0
    channel_ids = history.channels_with_unchunked(conn)
    conn.commit()
    for channel_id in channel_ids:
        with conn.transaction():
            info = history.channel(conn, channel_id)
            if info is None:
                continue
            rows = history.unchunked(conn, channel_id)
            messages = [ChunkMessage(r.id, r.created_at, r.speaker, r.content) for r in rows]
            authors = {r.id: r.author_id for r in rows}
            if info.kind == "notes":
                titles = {r.id: (r.first_attachment or "note").rsplit("/", 1)[-1].rsplit(".", 1)[0] for r in rows}
                chunks = [c for m in messages for c in chunk_note(m, title=titles[m.id], count_tokens=count_tokens, budget=budget)]
            else:
                place = place_label(info.kind, info.name, info.guild_name, info.dm_name)
                chunks = chunk_conversation(messages, place=place, count_tokens=count_tokens, budget=budget, gap=gap)
                if chunks and not close_open and now - chunks[-1].ended_at <= gap:
                    chunks.pop()  # the conversation may still be going on: chunk it later
            created += _store_chunks(conn, chunks, info.scope, channel_id, authors)
        if on_channel is not None:
            on_channel(channel_id)
    return created


def _store_chunks(conn: psycopg.Connection, chunks: list[Chunk], scope: str, channel_id: int, authors: dict[int, int]) -> int:
    stored = []
    for chunk in chunks:
        author_ids = sorted({authors[i] for i in chunk.message_ids})
        memory_id = conn.execute(
            "INSERT INTO memories (scope, channel_id, content, started_at, ended_at, message_ids, author_ids) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id",
            (scope, channel_id, chunk.content, chunk.started_at, chunk.ended_at, chunk.message_ids, author_ids),
        ).fetchone()[0]
        history.mark_chunked(conn, chunk.message_ids, memory_id)
        stored.append(memory_id)
    lexemes.index(conn, stored)  # searchable by their words, in their languages, as they appear
    return len(chunks)


def unembedded_count(conn: psycopg.Connection) -> int:
    return int(conn.execute("SELECT count(*) FROM memories WHERE embedding IS NULL").fetchone()[0])


def embed_pending(conn: psycopg.Connection, embedder: Embedder, *, batch: int = 256, progress: Advance | None = None) -> int:
    """Embed memories that have no vector yet, committing each batch; return how many."""
    done = 0
    while True:
        rows = conn.execute("SELECT id, content FROM memories WHERE embedding IS NULL ORDER BY id LIMIT %s", (batch,)).fetchall()
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


def _no_bar(total: int) -> AbstractContextManager[Advance]:
    return nullcontext(lambda n: None)


def build(conn: psycopg.Connection, embedder: Embedder, *, close_open: bool = True, bar: ProgressBar = _no_bar,
          now: datetime | None = None, reindex_limit: int | None = None) -> Built:
    """Chunk what is new and embed what has no vector (with `bar` over the embedding)."""
    prepare_vectors(conn, embedder)
    conn.commit()
    languages.fill_missing(conn, languages.configured())  # each new message's language, for its memory's words
    created = chunk_pending(conn, embedder, close_open=close_open, now=now)
    lexemes.index_pending(conn, limit=reindex_limit)  # rows from before migration 0019, a batch per transaction
    with bar(unembedded_count(conn)) as advance:
        embedded = embed_pending(conn, embedder, progress=advance)
    index_built = ensure_index(conn)
    _update_topics(conn)
    return Built(created, embedded, count(conn), index_built)


def refresh(conn: psycopg.Connection, embedder: Embedder, *, now: datetime | None = None) -> Built:
    """For a running bot: chunk conversations that have paused, embed them; cheap when idle."""
    return build(conn, embedder, close_open=False, now=now, reindex_limit=REFRESH_REINDEX)


def rebuild(conn: psycopg.Connection, embedder: Embedder, *, bar: ProgressBar = _no_bar) -> int:
    """Re-embed every memory with the configured model (after switching models)."""
    total = count(conn)
    prepare_vectors(conn, embedder, rebuild=True)
    conn.commit()
    with bar(total) as advance:
        embedded = embed_pending(conn, embedder, progress=advance)
    ensure_index(conn)
    owner = people.stored_owner(conn)
    if owner is not None:
        topics.rebuild(conn, owner.id)  # the old centroids are in the old model's space
        conn.commit()
    return embedded


def _update_topics(conn: psycopg.Connection) -> None:
    owner = people.stored_owner(conn)
    topics.update(conn, owner.id if owner else None)
    conn.commit()


def count(conn: psycopg.Connection) -> int:
    return int(conn.execute("SELECT count(*) FROM memories").fetchone()[0])


def counts(conn: psycopg.Connection) -> dict[str, int]:
    row = conn.execute("SELECT count(*), count(embedding) FROM memories").fetchone()
    return {"memories": int(row[0]), "memories_embedded": int(row[1])}

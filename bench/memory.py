"""Benchmark: memory recall at scale, embedding throughput, retrieval quality. One JSON line.

1. A synthetic store of --n memories (384-d, clustered like real text embeddings) over
   ~1,000 scopes of skewed (Zipf) sizes, two of them holding exactly 1% and 0.1% of
   the rows. Loaded with binary COPY into the real schema.
2. HNSW index build time.
3. Top-10 latency (p50/p99 over --queries queries) through persona's own recall SQL
   (`memory.search`, vector mode): unfiltered, 1% scope, 0.1% scope. In the same run,
   the exact answer (sequential scan) gives recall@10, the fraction of scoped queries
   that came back full, and the speed-up over exact search.
4. Embedding throughput of the default model: batched vs one text at a time.
5. Quality on a generated history with known answers (tests/fixtures/known_answers.py):
   hit@5 for vector-only, full-text-only and fused retrieval.

    python bench/memory.py                  # 200,000 memories
    python bench/memory.py --n 1000000
    python bench/memory.py --quality-only  # part 5 alone, against the English-only full-text search of before
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from psycopg import sql

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from _common import fresh_database  # noqa: E402

DIM = 384
WORDS = ["rust", "python", "coffee", "cat", "dog", "train", "work", "game", "music", "sleep", "pizza", "bug", "deploy", "movie", "weekend", "gym", "lunch",
         "guitar", "book"]


class FixedEmbedder:
    """Stands in for the embedding model: recall's SQL is what is measured here."""

    name = "bench-synthetic-384"
    dimension = DIM

    def __init__(self) -> None:
        self.next: np.ndarray | None = None

    def embed_query(self, _text: str) -> np.ndarray:
        assert self.next is not None
        return self.next


LATENT = 48  # sentence embeddings live near a low-dimensional manifold, not in all 384 dimensions
PROJECTION = np.random.default_rng(123).standard_normal((LATENT, DIM)).astype(np.float32) / np.sqrt(LATENT)


def embed_latent(latent: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    vectors = latent @ PROJECTION + 0.05 * rng.standard_normal((len(latent), DIM)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def synthetic_latent(n: int, rng: np.random.Generator, clusters: int = 500) -> np.ndarray:
    """A mixture of topics (clusters) of different spreads in a 48-d latent space."""
    centers = rng.standard_normal((clusters, LATENT)).astype(np.float32)
    spread = rng.uniform(0.3, 0.8, clusters).astype(np.float32)
    labels = rng.integers(0, clusters, n)
    return centers[labels] + spread[labels, None] * rng.standard_normal((n, LATENT)).astype(np.float32)


def scope_assignment(n: int, rng: np.random.Generator, scopes: int = 1000) -> tuple[np.ndarray, str, str]:
    """Scope index per row; two named scopes hold exactly 1% and 0.1% of rows."""
    one_pct, tenth_pct = n // 100, n // 1000
    rest = n - one_pct - tenth_pct
    weights = 1 / np.arange(1, scopes - 1) ** 1.1
    labels = rng.choice(np.arange(2, scopes), size=rest, p=weights / weights.sum())
    assigned = np.concatenate([np.zeros(one_pct, dtype=np.int64), np.ones(tenth_pct, dtype=np.int64), labels])
    rng.shuffle(assigned)
    return assigned, "guild:1", "guild:2"


def load(conn, n: int, seed: int = 5) -> tuple[np.ndarray, np.ndarray, list[str]]:  # noqa: ANN001
    from pgvector.psycopg import register_vector

    from persona import memory

    rng = np.random.default_rng(seed)
    latent = synthetic_latent(n, rng)
    vectors = embed_latent(latent, rng)
    scope_ids, _, _ = scope_assignment(n, rng)
    names = [f"guild:{i + 1}" if i < 2 else (f"dm:{i}" if i % 3 == 0 else f"guild:{i + 1}") for i in range(1000)]
    memory.prepare_vectors(conn, FixedEmbedder())  # type the column vector(384), record the model
    conn.commit()
    register_vector(conn)
    with conn.cursor() as cur, cur.copy(
        "COPY memories (scope, content, embedding, started_at, ended_at, embed_model) FROM STDIN WITH (FORMAT BINARY)"
    ) as copy:
        copy.set_types(["text", "text", "vector", "timestamptz", "timestamptz", "text"])
        now = datetime.now(UTC)
        for i in range(n):
            when = now - timedelta(minutes=i)
            text = f"memory {i}: " + " ".join(WORDS[(i * 7 + j) % len(WORDS)] for j in range(6))
            copy.write_row([names[scope_ids[i]], text, vectors[i], when, when, FixedEmbedder.name])
    conn.commit()
    conn.execute("ANALYZE memories")
    conn.commit()
    return latent, scope_ids, names


def run_queries(conn, embedder: FixedEmbedder, queries: np.ndarray, scopes: list[str] | None) -> tuple[list[float], list[list[int]]]:  # noqa: ANN001
    from persona import memory

    latencies, results = [], []
    for vector in queries:
        embedder.next = vector
        started = time.perf_counter()
        # No recency preference here: recall@10 is measured against pure distance order.
        found = memory.search(conn, embedder, "", scopes, k=10, mode="vector", recency=0.0)
        latencies.append((time.perf_counter() - started) * 1000)
        results.append([m.id for m in found])
    return latencies, results


def exact(conn, queries: np.ndarray, scopes: list[str] | None) -> tuple[list[float], list[list[int]]]:  # noqa: ANN001
    where = sql.SQL("WHERE scope = ANY(%s)" if scopes is not None else "")
    latencies, results = [], []
    for vector in queries:
        with conn.transaction():
            conn.execute("SET LOCAL enable_indexscan = off")
            conn.execute("SET LOCAL enable_bitmapscan = off")
            params = (scopes, vector) if scopes is not None else (vector,)
            started = time.perf_counter()
            rows = conn.execute(sql.SQL("SELECT id FROM memories {} ORDER BY embedding <=> %s LIMIT 10").format(where), params).fetchall()
            latencies.append((time.perf_counter() - started) * 1000)
        results.append([r[0] for r in rows])
    return latencies, results


def pct(values: list[float], q: float) -> float:
    return round(float(np.percentile(values, q)), 2)


def embedding_throughput() -> dict[str, float]:
    from persona.memory.embeddings import Embedder, resolve_embed_model
    from tests.fixtures.known_answers import DISTRACTORS, THINGS

    embedder = Embedder(resolve_embed_model(""))
    rng = np.random.default_rng(1)
    texts = [
        "2023-01-01 · #general (Friends)\n" + "\n".join(
            f"{'Alex' if t % 2 else 'Sam'}: " + DISTRACTORS[rng.integers(len(DISTRACTORS))].format(thing=THINGS[rng.integers(len(THINGS))])
            for t in range(rng.integers(2, 6))
        )
        for _ in range(512)
    ]
    embedder.embed_passages(texts[:8])  # load and warm up
    started = time.perf_counter()
    embedder.embed_passages(texts)
    batched = len(texts) / (time.perf_counter() - started)
    started = time.perf_counter()
    for text in texts[:64]:
        embedder.embed_passages([text])
    single = 64 / (time.perf_counter() - started)
    return {"embed_memories_per_s": round(batched, 1), "embed_one_at_a_time_per_s": round(single, 1)}


def quality(url: str) -> dict[str, float]:
    import importlib

    import psycopg

    from persona import memory
    from persona.languages import configured, fill_missing
    from persona.memory.embeddings import Embedder, resolve_embed_model
    from persona.storage.db import register_vector
    from tests.fixtures import known_answers

    embedder = Embedder(resolve_embed_model(""))
    with psycopg.connect(url) as conn:
        register_vector(conn)
        answers = known_answers.populate(conn)
        fill_missing(conn, configured())  # as an import would have stored them
        memory.build(conn, embedder)
        conn.execute("ANALYZE memories")
        started = time.perf_counter()
        figures = {f"hit_at_5_{mode}": round(rate, 3) for mode, rate in known_answers.hit_rates(conn, embedder, answers).items()}
        seconds = time.perf_counter() - started
        figures["known_answer_questions"] = len(answers)
        # The previous version in the same run: English lexemes of the whole memory, the question read as English only.
        conn.execute("UPDATE memories SET tsv = to_tsvector('english', content)")
        conn.commit()
        recall = importlib.import_module("persona.memory.recall")  # the module (persona.memory.recall is also its function's name)
        by_language, recall.query_configs = recall.query_configs, lambda _question: ["english"]
        try:
            started = time.perf_counter()
            english = known_answers.hit_rates(conn, embedder, answers)
            english_seconds = time.perf_counter() - started
        finally:
            recall.query_configs = by_language
        figures |= {f"hit_at_5_{mode}_english_only": round(rate, 3) for mode, rate in english.items() if mode != "vector"}
        figures["quality_queries_time_vs_english_only"] = round(seconds / english_seconds, 2)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--exact-queries", type=int, default=100, help="exact scans are slow: fewer of them")
    parser.add_argument("--quality-only", action="store_true", help="only part 5: hit@5 on the known answers (a minute)")
    args = parser.parse_args()

    import psycopg
    from psycopg.conninfo import make_conninfo

    from persona import memory
    from persona.storage.db import register_vector
    from persona.storage.embedded import start_embedded

    figures: dict[str, object] = {"bench": "memory", "machine": f"{platform.machine()} {os.cpu_count()} cores", "n": args.n}
    if args.quality_only:
        with tempfile.TemporaryDirectory(prefix="persona-bench-") as tmp:
            admin = make_conninfo(start_embedded(Path(tmp) / "pg"), dbname="postgres")
            print(json.dumps({"bench": "memory", "part": "quality", **quality(fresh_database(admin, "bench_quality"))}))
        return
    with tempfile.TemporaryDirectory(prefix="persona-bench-") as tmp:
        admin = make_conninfo(start_embedded(Path(tmp) / "pg"), dbname="postgres")
        url = fresh_database(admin, "bench_memory")
        with psycopg.connect(url) as conn:
            register_vector(conn)
            started = time.perf_counter()
            latent, scope_ids, names = load(conn, args.n)
            figures["load_s"] = round(time.perf_counter() - started, 1)
            started = time.perf_counter()
            memory.ensure_index(conn)
            figures["index_build_s"] = round(time.perf_counter() - started, 1)
            conn.execute("ANALYZE memories")
            conn.commit()
            conn.autocommit = True  # each query its own transaction: SET LOCAL must not leak between them

            rng = np.random.default_rng(9)
            embedder = FixedEmbedder()
            largest = int(np.bincount(scope_ids)[2:].argmax()) + 2  # big enough for the filtered-HNSW path
            cases = {"unfiltered": (None, np.arange(args.n)), "scope_1pct": (["guild:1"], np.flatnonzero(scope_ids == 0)),
                     "scope_0.1pct": (["guild:2"], np.flatnonzero(scope_ids == 1)),
                     "scope_largest": ([names[largest]], np.flatnonzero(scope_ids == largest))}
            for label, (scopes, members) in cases.items():
                # Queries near stored memories of that scope, as real questions are near real memories.
                picks = latent[rng.choice(members, args.queries)]
                queries = embed_latent(picks + 0.3 * rng.standard_normal(picks.shape).astype(np.float32), rng)
                latencies, approx = run_queries(conn, embedder, queries, scopes)
                exact_latencies, truth = exact(conn, queries[: args.exact_queries], scopes)
                recall = np.mean([len(set(a) & set(t)) / max(1, len(t)) for a, t in zip(approx, truth)])
                figures[f"{label}_rows"] = len(members)
                figures[f"{label}_p50_ms"] = pct(latencies, 50)
                figures[f"{label}_p99_ms"] = pct(latencies, 99)
                figures[f"{label}_recall_at_10"] = round(float(recall), 4)
                figures[f"{label}_full_fraction"] = round(sum(len(a) == 10 for a in approx) / len(approx), 4)
                figures[f"{label}_exact_p50_ms"] = pct(exact_latencies, 50)
                figures[f"{label}_speedup_vs_exact"] = round(pct(exact_latencies, 50) / max(pct(latencies, 50), 1e-6), 1)
        figures.update(embedding_throughput())
        figures.update(quality(fresh_database(admin, "bench_quality")))
    print(json.dumps(figures))


if __name__ == "__main__":
    main()

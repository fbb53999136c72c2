"""Benchmark: topics (persona/memory/topics.py) at scale, one JSON line.

A synthetic history of --n owner memories (384-d vectors from --planted latent topics,
the same generator as bench/memory.py) over ~1,000 scopes of Zipf sizes, one owner
message per memory whose words come from its planted topic's own vocabulary plus chat
filler. Figures:

1. Clustering (`topics.rebuild`, what each `persona memory build` that grew memory by
   more than a tenth runs): seconds, and agreement with the planted topics (adjusted Rand
   index). Baseline in the same run: full k-means (`KMeans`, n_init 3) on the same
   vectors — persona uses it up to 20,000 memories and mini-batches above.
2. A small build (1% new memories) joining the nearest topics (`topics.assign_new`).
3. Listing (`topics.topics_for`, what `/persona topics` and `/persona status` run):
   p50/p99 for the owner's terminal (everything) and for a scope holding 1% of rows;
   whether each listed topic's first word comes from its planted topic's vocabulary.
   Baseline in the same run: clustering the readable memories on request instead
   (fetch their vectors, k-means), which is what listing would cost without stored topics.

    python bench/topics.py                 # 50,000 memories, 40 planted topics
    python bench/topics.py --n 200000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from psycopg import sql

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from _common import fresh_database  # noqa: E402
from memory import LATENT, FixedEmbedder, embed_latent, scope_assignment  # noqa: E402

OWNER, OTHER = 1, 2
FILLER = ["lol", "ngl", "tbh", "honestly", "ok", "ya", "the", "and", "was", "so"]


def letters(number: int) -> str:
    out = ""
    while True:
        number, digit = divmod(number, 26)
        out += "abcdefghijklmnopqrstuvwxyz"[digit]
        if not number:
            return out


def planted_history(n: int, planted: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(latent vectors, planted topic per row): topics of different spreads, as bench/memory.py draws them."""
    centres = rng.standard_normal((planted, LATENT)).astype(np.float32)
    spread = rng.uniform(0.3, 0.8, planted).astype(np.float32)
    labels = rng.integers(0, planted, n)
    return centres[labels] + spread[labels, None] * rng.standard_normal((n, LATENT)).astype(np.float32), labels


def vocabulary(topic: int) -> list[str]:
    """Six made-up words of one planted topic (letters only: names are built from words of 3+ letters)."""
    return [f"zq{letters(topic)}x{letters(j)}" for j in range(6)]


def load(conn, n: int, planted: int, seed: int = 7) -> np.ndarray:  # noqa: ANN001
    """Owner memories with one message each; returns the planted topic per row (row i is memory and message i + 1)."""
    from pgvector.psycopg import register_vector

    from persona import memory

    rng = np.random.default_rng(seed)
    latent, labels = planted_history(n, planted, rng)
    vectors = embed_latent(latent, rng)
    scope_ids, _, _ = scope_assignment(n, rng)
    names = [f"guild:{i + 1}" if i < 2 or i % 3 else f"dm:{i}" for i in range(1000)]
    conn.execute("INSERT INTO people (id, name, is_owner) VALUES (%s, 'owner', true), (%s, 'friend', false)", (OWNER, OTHER))
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO channels (id, kind, scope, guild_id) VALUES (%s, %s, %s, %s)",
                        [(i + 1, "dm" if s.startswith("dm:") else "guild_text", s, None if s.startswith("dm:") else int(s.split(":")[1]))
                         for i, s in enumerate(names)])
    memory.prepare_vectors(conn, FixedEmbedder())
    conn.commit()
    register_vector(conn)
    now = datetime.now(UTC)
    with conn.cursor() as cur, cur.copy("COPY messages (id, channel_id, author_id, source, scope, created_at, content) FROM STDIN") as copy:
        for i in range(n):
            words = [vocabulary(int(labels[i]))[j] for j in rng.integers(0, 6, 3)] + list(rng.choice(FILLER, 4))
            copy.write_row([i + 1, int(scope_ids[i]) + 1, OWNER, "dce", names[scope_ids[i]], now - timedelta(minutes=i), " ".join(words)])
    with conn.cursor() as cur, cur.copy(
        "COPY memories (scope, channel_id, content, embedding, started_at, ended_at, embed_model, message_ids, author_ids) "
        "FROM STDIN WITH (FORMAT BINARY)"
    ) as copy:
        copy.set_types(["text", "int8", "text", "vector", "timestamptz", "timestamptz", "text", "int8[]", "int8[]"])
        for i in range(n):
            when = now - timedelta(minutes=i)
            copy.write_row([names[scope_ids[i]], int(scope_ids[i]) + 1, f"memory {i}", vectors[i], when, when, FixedEmbedder.name, [i + 1], [OWNER]])
    conn.execute("ANALYZE memories")
    conn.commit()
    return labels


def pct(values: list[float], q: float) -> float:
    return round(float(np.percentile(values, q)), 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50_000)
    parser.add_argument("--planted", type=int, default=40)
    parser.add_argument("--queries", type=int, default=50)
    args = parser.parse_args()

    import psycopg
    from psycopg.conninfo import make_conninfo
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_rand_score

    from persona.memory import topics
    from persona.privacy.scopes import Place
    from persona.storage.db import register_vector
    from persona.storage.embedded import start_embedded

    figures: dict[str, object] = {"bench": "topics", "machine": f"{platform.machine()} {os.cpu_count()} cores", "n": args.n,
                                  "planted": args.planted}
    with tempfile.TemporaryDirectory(prefix="persona-bench-") as tmp:
        admin = make_conninfo(start_embedded(Path(tmp) / "pg"), dbname="postgres")
        url = fresh_database(admin, "bench_topics")
        with psycopg.connect(url) as conn:
            register_vector(conn)
            planted = load(conn, args.n, args.planted)
            newest = int(args.n * 0.01)  # held back: the "small build"
            conn.execute("CREATE TEMP TABLE held AS SELECT id, embedding FROM memories ORDER BY id LIMIT %s", (newest,))
            conn.execute("UPDATE memories SET embedding = NULL WHERE id IN (SELECT id FROM held)")
            started = time.perf_counter()
            clustered = topics.rebuild(conn, OWNER)
            conn.commit()
            figures["rebuild_s"] = round(time.perf_counter() - started, 2)
            figures["topics"] = topics.topic_count(conn)
            rows = conn.execute("SELECT id, topic_id, embedding FROM memories WHERE topic_id IS NOT NULL ORDER BY id").fetchall()
            ids = np.array([r[0] for r in rows])
            ours = np.array([r[1] for r in rows])
            truth = planted[ids - 1]
            figures["rebuild_adjusted_rand"] = round(float(adjusted_rand_score(truth, ours)), 4)
            vectors = np.array([r[2].to_numpy() for r in rows], dtype=np.float32)
            started = time.perf_counter()
            full = KMeans(n_clusters=figures["topics"], n_init=3, random_state=0).fit_predict(vectors)
            figures["baseline_full_kmeans_s"] = round(time.perf_counter() - started, 2)
            figures["baseline_full_kmeans_adjusted_rand"] = round(float(adjusted_rand_score(truth, full)), 4)
            figures["clustered"] = clustered

            conn.execute("UPDATE memories m SET embedding = h.embedding FROM held h WHERE m.id = h.id")
            started = time.perf_counter()
            figures["assigned_new"] = topics.assign_new(conn, OWNER)
            conn.commit()
            figures["assign_new_ms"] = round((time.perf_counter() - started) * 1000, 1)

            one_pct = Place.guild(1)  # scope guild:1 holds exactly 1% of rows
            for label, asker, place in (("terminal", OWNER, Place.terminal()), ("scope_1pct", OTHER, one_pct)):
                latencies = []
                for _ in range(args.queries):
                    started = time.perf_counter()
                    listed = topics.topics_for(conn, asker_id=asker, place=place, owner_id=OWNER)
                    latencies.append((time.perf_counter() - started) * 1000)
                    conn.rollback()
                figures[f"list_{label}_p50_ms"] = pct(latencies, 50)
                figures[f"list_{label}_p99_ms"] = pct(latencies, 99)
                figures[f"list_{label}_topics"] = len(listed)
                figures[f"list_{label}_names_from_one_planted_topic"] = round(
                    statistics.mean(_named_by_majority(conn, t, planted) for t in listed), 4) if listed else None
                # Baseline: cluster what this asker may read, on request.
                where = sql.SQL("" if place.kind == "terminal" else "AND scope = 'guild:1'")
                on_request = []
                for _ in range(3):
                    started = time.perf_counter()
                    readable = conn.execute(sql.SQL("SELECT embedding FROM memories WHERE embedding IS NOT NULL {}").format(where)).fetchall()
                    matrix = np.array([r[0].to_numpy() for r in readable], dtype=np.float32)
                    k = max(2, min(topics.MAX_TOPICS, round(len(matrix) / topics.MEMORIES_PER_TOPIC)))
                    KMeans(n_clusters=k, n_init=1, random_state=0).fit(matrix)
                    on_request.append((time.perf_counter() - started) * 1000)
                    conn.rollback()
                figures[f"baseline_cluster_on_request_{label}_p50_ms"] = pct(on_request, 50)
                figures[f"list_{label}_speedup_vs_on_request"] = round(pct(on_request, 50) / max(pct(latencies, 50), 1e-6), 1)
    print(json.dumps(figures))


def _named_by_majority(conn, topic, planted: np.ndarray) -> float:  # noqa: ANN001
    """1 when the topic's first word belongs to the planted topic most of its memories came from."""
    if not topic.words:
        return 0.0
    rows = conn.execute("SELECT id FROM memories WHERE topic_id = %s", (topic.id,)).fetchall()
    majority = int(np.bincount(planted[np.array([r[0] for r in rows]) - 1]).argmax())
    return float(topic.words[0] in vocabulary(majority))


if __name__ == "__main__":
    main()

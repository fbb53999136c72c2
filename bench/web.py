"""Benchmark: every page of `persona web` with a big history. One JSON line.

Loads --messages messages (default 1,000,000: 400 channels of every kind, 2,000 people,
six sources, five years) and --memories memories (default 200,000, random 384-d unit
vectors under the real embedding model's name, HNSW index built) with binary COPY into
the real schema, 5,000 logged replies; starts `persona web` as its own process, logs in
with the one-time link, and times each page --repeat times with a real HTTP client
(p50/p95 ms; `first_ms`: the first view, which computes the whole-table aggregates the
dashboard then keeps until the tables change, and loads the embedder on the first
memory search). Baseline in the same run: the same pages on an empty database (what the
page costs before any data), so `scale_ratio` says what the data adds. Goal: every page
< 300 ms p95 at 1M messages / 200k memories.

    python bench/web.py                                   # 1M messages, 200k memories
    python bench/web.py --messages 100000 --memories 20000
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from _common import fresh_database, start_server  # noqa: E402

OWNER = 10**17
SOURCES = ("package", "dce", "whatsapp", "obsidian", "text", "live")
PAGES = ("/", "/memory?q=what+car+do+you+drive&asker=owner&place=terminal", "/memory?q=coffee+this+morning&asker={friend}&place=channel:{guild_channel}",
         "/adapters", "/replies", "/replies?rating=down", "/privacy", "/import", "/playground")


def load(url: str, n_messages: int, n_memories: int, seed: int = 7) -> dict[str, int]:
    """The big history, COPYed straight into the real schema (the bench owns this database)."""
    import psycopg
    from pgvector.psycopg import register_vector

    from persona import memory
    from persona.memory.embeddings import Embedder, resolve_embed_model

    rng = np.random.default_rng(seed)
    embedder = Embedder(resolve_embed_model(""))
    start = datetime(2021, 1, 1, tzinfo=UTC)
    span_s = 5 * 365 * 86400
    with psycopg.connect(url) as conn:
        register_vector(conn)
        people = [(OWNER, "owner", True)] + [(OWNER + i, f"friend{i}", False) for i in range(1, 2001)]
        with conn.cursor().copy("COPY people (id, name, is_owner) FROM STDIN") as copy:
            for row in people:
                copy.write_row(row)
        channels = []
        for c in range(400):
            cid = 5 * 10**17 + c
            if c % 4 == 0:
                friend = OWNER + 1 + (c % 2000)
                channels.append((cid, "dm", None, None, f"dm:{friend}"))
            elif c % 4 == 1:
                channels.append((cid, "group_dm", f"group{c}", None, f"group:{cid}"))
            elif c % 4 == 2:
                guild = 6 * 10**17 + c % 10
                channels.append((cid, "guild_text", f"chan{c}", guild, f"guild:{guild}"))
            else:
                channels.append((cid, "notes", f"notes{c}", None, "private"))
        with conn.cursor().copy("COPY channels (id, kind, name, guild_id, scope) FROM STDIN") as copy:
            for row in channels:
                copy.write_row(row)
        chosen = rng.integers(0, len(channels), n_messages)
        authors = np.where(rng.random(n_messages) < 0.4, OWNER, OWNER + 1 + rng.integers(0, 2000, n_messages))
        seconds = np.sort(rng.integers(0, span_s, n_messages))
        sources = rng.integers(0, len(SOURCES), n_messages)
        with conn.cursor().copy("COPY messages (id, channel_id, author_id, source, scope, created_at, content) FROM STDIN") as copy:
            for i in range(n_messages):
                channel = channels[chosen[i]]
                copy.write_row((10**18 + i, channel[0], int(authors[i]), SOURCES[sources[i]], channel[4],
                                start + timedelta(seconds=int(seconds[i])), f"message {i} about coffee and cars and cats"))
        memory.prepare_vectors(conn, embedder)
        vectors = rng.standard_normal((n_memories, embedder.dimension)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        with conn.cursor().copy("COPY memories (scope, channel_id, content, embedding, started_at, ended_at, embed_model, message_ids) "
                                "FROM STDIN WITH (FORMAT BINARY)") as copy:
            copy.set_types(["text", "int8", "text", "vector", "timestamptz", "timestamptz", "text", "int8[]"])
            for i in range(n_memories):
                channel = channels[i % len(channels)]
                when = start + timedelta(seconds=int(rng.integers(0, span_s)))
                copy.write_row([channel[4], channel[0], f"memory {i}: i drive an old truck, coffee every morning", vectors[i], when, when,
                                embedder.name, [10**18 + (i * 5) % n_messages]])
        conn.execute("INSERT INTO replies (channel_id, asker_id, scope, prompt, completion, base_model, latency_ms) "
                     "SELECT %s, %s, 'dm:1', '[{\"role\": \"user\", \"content\": \"hi\"}]'::jsonb, 'reply ' || g, 'bench', 900 "
                     "FROM generate_series(1, 5000) g", (channels[0][0], OWNER + 1))
        conn.execute("INSERT INTO feedback (reply_id, rater_id, rating, via) SELECT id, %s, -1, 'command' FROM replies WHERE id %% 7 = 0", (OWNER,))
        conn.commit()
        memory.ensure_index(conn)
        conn.execute("ANALYZE")
        conn.commit()
    guild_channel = next(c[0] for c in channels if c[1] == "guild_text")
    return {"friend": OWNER + 3, "guild_channel": guild_channel}


def time_pages(url: str, home: Path, fill: dict[str, int], repeat: int) -> dict[str, dict[str, float]]:
    import httpx

    persona = Path(sys.executable).parent / "persona"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PERSONA_")} | {
        "DATABASE_URL": url, "PERSONA_HOME": str(home), "PERSONA_OWNER_ID": str(OWNER), "PERSONA_LOG_LEVEL": "WARNING"}
    web, port = start_server("persona web", lambda port: [str(persona), "web", "--port", str(port)], env, 60, ready="/login", keep_stdout=True)
    try:
        link = re.search(r"(http://\S+)", web.stdout.readline()).group(1)  # printed before it served
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120, follow_redirects=True)
        assert client.get(link, follow_redirects=False).status_code == 303  # logged in; no page rendered yet
        figures = {}
        for page in PAGES:
            path = page.format(**fill)
            began = time.perf_counter()
            assert client.get(path).status_code == 200, path  # cold: aggregates computed, the first memory search loads the embedder
            cold = (time.perf_counter() - began) * 1000
            times = []
            for _ in range(repeat):
                began = time.perf_counter()
                response = client.get(path)
                times.append((time.perf_counter() - began) * 1000)
                assert response.status_code == 200, (path, response.status_code)
            times.sort()
            figures[path.split("?")[0] + ("?" + path.split("?")[1][:24] if "?" in path else "")] = {
                "p50_ms": round(statistics.median(times), 1), "p95_ms": round(times[max(0, int(len(times) * 0.95) - 1)], 1),
                "first_ms": round(cold, 1)}
        return figures
    finally:
        web.terminate()
        web.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--memories", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()

    import psycopg
    from psycopg.conninfo import make_conninfo

    from persona.storage.embedded import start_embedded

    with tempfile.TemporaryDirectory(prefix="persona-bench-web-") as tmp:
        admin = make_conninfo(start_embedded(Path(tmp) / "pg"), dbname="postgres")
        empty = fresh_database(admin, "bench_web_empty")
        big = fresh_database(admin, "bench_web_big")
        began = time.perf_counter()
        with psycopg.connect(empty) as conn:
            conn.execute("INSERT INTO people (id, name, is_owner) VALUES (%s, 'owner', true), (%s, 'friend', false)", (OWNER, OWNER + 3))
            conn.execute("INSERT INTO channels (id, kind, name, guild_id, scope) VALUES (%s, 'guild_text', 'general', 1, 'guild:1')", (5 * 10**17,))
        fill = load(big, args.messages, args.memories)
        load_s = time.perf_counter() - began
        baseline = time_pages(empty, Path(tmp) / "home-empty", {"friend": OWNER + 3, "guild_channel": 5 * 10**17}, args.repeat)
        at_scale = time_pages(big, Path(tmp) / "home-big", fill, args.repeat)
    worst = max(v["p95_ms"] for v in at_scale.values())
    print(json.dumps({
        "bench": "web", "messages": args.messages, "memories": args.memories, "repeat": args.repeat, "load_s": round(load_s, 1),
        "pages": {page: {**at_scale[page], "empty_p50_ms": baseline[page]["p50_ms"],
                         "scale_ratio": round(at_scale[page]["p50_ms"] / max(baseline[page]["p50_ms"], 0.1), 1)} for page in at_scale},
        "worst_p95_ms": worst, "goal_p95_ms": 300, "goal_met": worst < 300,
    }))


if __name__ == "__main__":
    main()

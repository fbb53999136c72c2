"""Benchmark: what one hostile API key does to another key's replies. One JSON line.

`persona serve` (its own process, the bundled SmolLM2 by default, a history with built
memories) answers a friend's key asking short questions one after another — first
alone (the baseline, same run), then while a hostile key hammers it from --hostile
threads with the largest requests the limits allow (every message at
PERSONA_SERVE_MAX_MESSAGE_CHARS, the conversation at PERSONA_SERVE_MAX_PROMPT_CHARS),
retrying the moment it is refused. Reported per setting of the per-key rate limit (the
default 30 a minute, and `off`: only the concurrency limit and the turn order hold the
hostile key back): the friend's p50/p99 alone and under attack, their ratio (goal ≤ 2),
what the hostile key got answered and refused, and how fast a 1 MB message is refused
(goal < 50 ms).

    python bench/api_abuse.py                       # SmolLM2, 12 questions, 2 hostile threads
    python bench/api_abuse.py --model tiny --questions 20
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from _common import fresh_database, start_server  # noqa: E402

FRIEND, HOSTILE = 222222222222222222, 333333333333333333
QUESTIONS = ["hey what's up", "what are you up to tonight?", "did you see the game", "what car do you drive these days?",
             "any plans this weekend?", "how was work"]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def ask(client: object, key: str, body: dict[str, object]) -> tuple[int, float]:
    started = time.perf_counter()
    response = client.post("/v1/chat/completions", headers={"Authorization": f"Bearer {key}"}, json=body)  # type: ignore[attr-defined]
    return response.status_code, time.perf_counter() - started


def run_setting(url: str, base_model: str, home: Path, keys: dict[str, str], per_minute: int, questions: int, hostile_threads: int,
                max_tokens: int) -> dict[str, object]:
    import httpx

    env = {**{k: v for k, v in os.environ.items() if not k.startswith("PERSONA_")}, "DATABASE_URL": url, "PERSONA_HOME": str(home),
           "PERSONA_BASE_MODEL": base_model, "PERSONA_OWNER_ID": "80351110224678912", "PERSONA_LOG_LEVEL": "WARNING",
           "PERSONA_SERVE_KEY_PER_MINUTE": str(per_minute), "PERSONA_SERVE_MAX_WAITING": "64"}
    server, port = start_server("persona serve", lambda p: [str(REPO / ".venv" / "bin" / "persona"), "serve", "--port", str(p)], env, 300)
    try:
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=600)
        friendly = [{"model": "persona", "messages": [{"role": "user", "content": QUESTIONS[i % len(QUESTIONS)]}], "max_tokens": max_tokens,
                     "temperature": 0} for i in range(questions)]
        ask(client, keys["friend"], friendly[0])  # warm: the model's first call
        alone = [ask(client, keys["friend"], body)[1] for body in friendly]

        huge = "lol " * 1000  # 4,000 characters: the largest message allowed
        hostile_body = {"model": "persona", "messages": [{"role": "user", "content": huge}, {"role": "assistant", "content": huge},
                                                         {"role": "user", "content": huge}, {"role": "user", "content": huge[:3900]}],
                        "max_tokens": max_tokens, "temperature": 0}
        megabyte = {"model": "persona", "messages": [{"role": "user", "content": "x" * 1_000_000}]}
        refusals = [ask(client, keys["hostile"], megabyte) for _ in range(5)]
        assert all(status in (400, 413) for status, _ in refusals), refusals

        stop = threading.Event()
        outcomes: dict[int, int] = {}
        lock = threading.Lock()

        def hammer() -> None:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=600) as own:
                while not stop.is_set():
                    status, _ = ask(own, keys["hostile"], hostile_body)
                    with lock:
                        outcomes[status] = outcomes.get(status, 0) + 1

        workers = [threading.Thread(target=hammer, daemon=True) for _ in range(hostile_threads)]
        for worker in workers:
            worker.start()
        time.sleep(1.0)  # the attack is under way before the friend asks
        attacked = [ask(client, keys["friend"], body)[1] for body in friendly]
        stop.set()
        for worker in workers:
            worker.join(timeout=600)
    finally:
        server.terminate()
        server.wait(timeout=60)
    return {
        "friend_alone_p50_s": round(statistics.median(alone), 2), "friend_alone_p99_s": round(percentile(alone, 0.99), 2),
        "friend_attacked_p50_s": round(statistics.median(attacked), 2), "friend_attacked_p99_s": round(percentile(attacked, 0.99), 2),
        "p99_ratio": round(percentile(attacked, 0.99) / percentile(alone, 0.99), 2),
        "hostile_answered": outcomes.get(200, 0), "hostile_refused_429": outcomes.get(429, 0),
        "hostile_other": {str(k): v for k, v in outcomes.items() if k not in (200, 429)},
        "megabyte_refused_ms": round(1000 * statistics.median(t for _, t in refusals), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=("tiny", "smollm2"), default="smollm2")
    parser.add_argument("--questions", type=int, default=12)
    parser.add_argument("--hostile", type=int, default=2, help="hostile threads")
    parser.add_argument("--max-tokens", type=int, default=24)
    args = parser.parse_args()

    import psycopg
    from psycopg.conninfo import make_conninfo

    from persona import api_keys, memory
    from persona.memory.embeddings import Embedder, resolve_embed_model
    from persona.privacy.scopes import Place
    from persona.storage.db import Database
    from persona.storage.embedded import start_embedded
    from persona.storage.store import Store
    from tests.fixtures import voice
    from tests.fixtures.tiny_model import build_tiny_model

    with tempfile.TemporaryDirectory(prefix="persona-bench-abuse-") as tmp:
        admin = make_conninfo(start_embedded(Path(tmp) / "pg"), dbname="postgres")
        url = fresh_database(admin, "bench_abuse")
        store = Store(Database(url=url))
        with psycopg.connect(url) as conn:
            voice.populate(conn, sessions=48)
        with store.connect() as conn:
            memory.build(conn, Embedder(resolve_embed_model("")))
            keys = {name: api_keys.create(conn, asker_id=who, place=Place.dm(9_200_000_000_000_000 + i), name=name)[1]
                    for i, (name, who) in enumerate([("friend", FRIEND), ("hostile", HOSTILE)])}
            conn.commit()
        base = "" if args.model == "smollm2" else str(build_tiny_model(Path(tmp) / "tiny"))
        settings = {"rate_limit_default": 30, "rate_limit_off": 1_000_000}
        results = {name: run_setting(url, base, Path(tmp) / f"home-{name}", keys, per_minute, args.questions, args.hostile, args.max_tokens)
                   for name, per_minute in settings.items()}
    worst = max(float(r["p99_ratio"]) for r in results.values())  # type: ignore[arg-type]
    slowest_refusal = max(float(r["megabyte_refused_ms"]) for r in results.values())  # type: ignore[arg-type]
    print(json.dumps({"bench": "api_abuse", "model": args.model, "questions": args.questions, "hostile_threads": args.hostile,
                      "max_tokens": args.max_tokens, **results, "worst_p99_ratio": worst, "goal_p99_ratio": 2.0,
                      "megabyte_refused_ms": slowest_refusal, "goal_refused_ms": 50, "goal_met": worst <= 2.0 and slowest_refusal < 50}))


if __name__ == "__main__":
    main()

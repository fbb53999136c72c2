"""Benchmark: a mention through the fake Discord, end to end, one JSON line.

The real discord.py client against tests/fake_discord on 127.0.0.1, a memory of ~470
memories (the known-answer history) with the bundled MiniLM, and a base model. Each
reply's time is split into context fetch (channel history over REST), recall, prompt
build, generation and send; p50/p99 over --mentions mentions sent one after another,
then the same number from --concurrent askers at once (queue wait included: one model
generates one reply at a time). Baseline in the same run: the overhead budget of the
issue, everything but generation ≤ 50 ms p99.

    python bench/reply.py                      # tiny random model: measures the pipeline
    python bench/reply.py --model smollm2 --mentions 10 --concurrent 5
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from _common import fresh_database  # noqa: E402


def pct(values: list[float], q: float) -> float:
    return round(float(np.percentile(values, q)), 2) if values else 0.0


def summarise(timings: list[dict[str, float]], prefix: str) -> dict[str, float]:
    figures: dict[str, float] = {}
    for part in ("context_fetch", "queue_wait", "recall", "evidence", "prompt", "generate", "send", "total"):
        values = [t.get(part, 0.0) for t in timings]
        figures[f"{prefix}{part}_p50_ms"] = pct(values, 50)
        figures[f"{prefix}{part}_p99_ms"] = pct(values, 99)
    # Grounding's evidence search (persona/runtime/grounding.py) is work outside generation too.
    overhead = [t["context_fetch"] + t["recall"] + t.get("evidence", 0.0) + t["prompt"] + t["send"] for t in timings]
    figures[f"{prefix}overhead_p99_ms"] = pct(overhead, 99)
    tokens = sum(t["new_tokens"] for t in timings)
    seconds = sum(t["generate"] for t in timings) / 1000
    figures[f"{prefix}tokens_per_s"] = round(tokens / seconds, 1) if seconds else 0.0
    return figures


async def drive(engine, mentions: int, concurrent: int) -> tuple[list[dict[str, float]], list[dict[str, float]]]:  # noqa: ANN001
    from bot.client import PersonaBot
    from bot.services import Services
    from tests.fake_discord.server import BOT_ID, FakeDiscord
    from tests.fixtures.known_answers import (
        CHANNEL_ID,
        FRIEND_ID,
        GUILD_ID,
        OWNER_ID,
        PARAPHRASED,
    )

    fake = FakeDiscord(owner_id=OWNER_ID)
    fake.add_user(OWNER_ID, "alex")
    askers = [FRIEND_ID + i for i in range(max(concurrent, 1))]
    for asker in askers:
        fake.add_user(asker, f"friend{asker % 100}")
    fake.add_guild(GUILD_ID, "Friends", [CHANNEL_ID])
    for i in range(20):
        fake.message(CHANNEL_ID, askers[i % len(askers)], f"earlier chatter {i}")
    await fake.start()
    fake.patch()
    services = Services(engine, engine.store, OWNER_ID, reply_timeout=600, per_user_rate=10_000, max_pending=10_000)
    bot = PersonaBot(services)
    runner = asyncio.create_task(bot.start("bench-token"))
    try:
        await asyncio.wait_for(bot.wait_until_ready(), 30)
        chat = bot.get_cog("Chat")
        questions = [q for _, q in PARAPHRASED]

        async def wait_sent(n: int) -> None:
            while len(fake.sent) < n:
                await asyncio.sleep(0.005)

        for i in range(mentions):
            await fake.post(CHANNEL_ID, askers[0], f"<@{BOT_ID}> {questions[i % len(questions)]}", mentions=[BOT_ID])
            await wait_sent(i + 1)
        sequential = list(chat.timings)
        chat.timings.clear()
        base = len(fake.sent)
        for i in range(mentions):
            await fake.post(CHANNEL_ID, askers[i % len(askers)], f"<@{BOT_ID}> {questions[i % len(questions)]}", mentions=[BOT_ID])
        await wait_sent(base + mentions)
        return sequential, list(chat.timings)
    finally:
        await bot.close()
        await asyncio.gather(runner, return_exceptions=True)
        await fake.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mentions", type=int, default=100)
    parser.add_argument("--concurrent", type=int, default=10)
    parser.add_argument("--model", choices=("tiny", "smollm2"), default="tiny")
    args = parser.parse_args()

    import psycopg
    from psycopg.conninfo import make_conninfo

    from persona import memory
    from persona.config import Settings
    from persona.memory.embeddings import Embedder, resolve_embed_model
    from persona.runtime.generation import GenerationSettings, Generator
    from persona.runtime.model import resolve_base_model
    from persona.runtime.reply import ReplyEngine
    from persona.storage.db import Database
    from persona.storage.embedded import start_embedded
    from persona.storage.store import Store
    from tests.fixtures import known_answers
    from tests.fixtures.tiny_model import build_tiny_model

    with tempfile.TemporaryDirectory(prefix="persona-bench-reply-") as tmp:
        admin = make_conninfo(start_embedded(Path(tmp) / "pg"), dbname="postgres")
        url = fresh_database(admin, "bench_reply")
        store = Store(Database(url=url))
        embedder = Embedder(resolve_embed_model(""))
        with psycopg.connect(url) as conn:
            known_answers.populate(conn)
        with store.connect() as conn:
            memory.build(conn, embedder)
        base = "" if args.model == "smollm2" else str(build_tiny_model(Path(tmp) / "tiny"))
        generator = Generator(resolve_base_model(base), GenerationSettings.from_settings(Settings.model_construct(), max_new_tokens=40))
        engine = ReplyEngine(store, embedder, generator, owner_id=known_answers.OWNER_ID, owner_name="Alex")
        started = time.perf_counter()
        sequential, concurrent = asyncio.run(drive(engine, args.mentions, args.concurrent))
        elapsed = time.perf_counter() - started
    figures = {"bench": "reply", "machine": f"{platform.machine()} {os.cpu_count()} cores", "model": args.model,
               "mentions": args.mentions, "concurrent_askers": args.concurrent, "seconds": round(elapsed, 1)}
    figures |= summarise(sequential, "")
    figures |= summarise(concurrent, "concurrent_")
    figures["overhead_budget_p99_ms"] = 50.0
    figures["overhead_within_budget"] = figures["overhead_p99_ms"] <= 50.0
    print(json.dumps(figures))


if __name__ == "__main__":
    main()

"""Benchmark: mentions through the fake Discord, end to end, one JSON line.

The real discord.py client against tests/fake_discord on 127.0.0.1, a memory of ~470
memories (the known-answer history) with the bundled MiniLM, a base model, and the
reply pipeline as shipped (grounding, "not sure", the consistency check). Each reply's
time is split into context fetch (channel history over REST), queue wait, recall,
evidence, prompt build, generation, the consistency check and send; p50/p99 over
--mentions mentions sent one after another, then for each --concurrency level that
many askers at once. Time to first visible text is measured with
PERSONA_DISCORD_DELIVERY=stream (--delivery stream). Generators:

- `local`: in this process through transformers (one generation at a time: the queue is the wait);
- `llama.cpp`: in this process through llama.cpp (PERSONA_ENGINE=llama.cpp, `--model smollm2`);
- `openai`: a real `persona serve` process on the same database, through
  PERSONA_ENGINE=openai (persona/runtime/engines/openai_compatible.py) — the HTTP hop and the server's
  own queue are measured, not mocked;
- `vllm`: a real vLLM (the CPU build, `make vllm` → .venv-vllm) serving the same base
  model, through PERSONA_ENGINE=openai: it batches concurrent requests.

Baseline in the same run: the overhead budget of issue 13, everything but generation
and queueing ≤ 20 ms p99 at 10 concurrent askers.

    python bench/reply.py                      # tiny random model: measures the pipeline
    python bench/reply.py --model smollm2 --mentions 10 --concurrency 1,10 --generator local,llama.cpp,openai
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from _common import fresh_database, start_server  # noqa: E402


def pct(values: list[float], q: float) -> float:
    return round(float(np.percentile(values, q)), 2) if values else 0.0


def summarise(timings: list[dict[str, float]], prefix: str) -> dict[str, float]:
    figures: dict[str, float] = {}
    for part in ("context_fetch", "queue_wait", "recall", "evidence", "prompt", "generate", "check", "repair", "send", "first_text", "total"):
        values = [t.get(part, 0.0) for t in timings]
        figures[f"{prefix}{part}_p50_ms"] = pct(values, 50)
        figures[f"{prefix}{part}_p99_ms"] = pct(values, 99)
    # Work outside generation and queueing: grounding's evidence search and the consistency check count too.
    overhead = [t["context_fetch"] + t["recall"] + t.get("evidence", 0.0) + t["prompt"] + t["send"] for t in timings]
    figures[f"{prefix}overhead_without_check_p99_ms"] = pct(overhead, 99)
    figures[f"{prefix}overhead_p99_ms"] = pct([o + t.get("check", 0.0) for o, t in zip(overhead, timings)], 99)
    figures[f"{prefix}new_tokens_p50"] = pct([t["new_tokens"] for t in timings], 50)
    tokens = sum(t["new_tokens"] for t in timings)
    seconds = sum(t["generate"] for t in timings) / 1000
    figures[f"{prefix}tokens_per_s"] = round(tokens / seconds, 1) if seconds else 0.0  # per reply, while it generates
    # All askers of a level start together: their tokens over the time the last one took is what the machine delivered.
    last = max((t["total"] for t in timings), default=0.0) / 1000
    figures[f"{prefix}throughput_tokens_per_s"] = round(tokens / last, 1) if last else 0.0
    return figures


async def drive(engine, mentions: int, levels: list[int], delivery: str, slots: int) -> tuple[list[dict[str, float]], dict[int, list[dict[str, float]]]]:  # noqa: ANN001
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
    askers = [FRIEND_ID + i for i in range(max([*levels, 1]))]
    for asker in askers:
        fake.add_user(asker, f"friend{asker % 100}")
    fake.add_guild(GUILD_ID, "Friends", [CHANNEL_ID])
    for i in range(20):
        fake.message(CHANNEL_ID, askers[i % len(askers)], f"earlier chatter {i}")
    await fake.start()
    fake.patch()
    services = Services(engine, engine.store, OWNER_ID, reply_timeout=600, per_user_rate=10_000, max_pending=10_000, delivery=delivery,
                        generation_slots=slots, send_mode="auto")
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
        together: dict[int, list[dict[str, float]]] = {}
        for level in levels:
            chat.timings.clear()
            base = len(fake.sent)
            for i in range(level):
                await fake.post(CHANNEL_ID, askers[i], f"<@{BOT_ID}> {questions[i % len(questions)]}", mentions=[BOT_ID])
            while len(chat.timings) < level:  # every reply sent (streamed ones are edited, not re-sent)
                await asyncio.sleep(0.005)
            await wait_sent(base + level)
            together[level] = list(chat.timings)
        return sequential, together
    finally:
        await bot.close()
        await asyncio.gather(runner, return_exceptions=True)
        await fake.stop()


def _serve(url: str, base: str, home: Path, owner_id: int) -> tuple[subprocess.Popen[str], int]:
    """`persona serve` on the benchmark's database, in its own process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PERSONA_") and k != "DATABASE_URL"}
    env |= {"DATABASE_URL": url, "PERSONA_HOME": str(home), "PERSONA_BASE_MODEL": base, "PERSONA_OWNER_ID": str(owner_id),
            "PERSONA_REPLY_MAX_TOKENS": "40", "PERSONA_SERVE_MAX_WAITING": "1000", "PERSONA_LOG_LEVEL": "WARNING"}
    persona = str(Path(sys.executable).parent / "persona")
    return start_server("persona serve", lambda port: [persona, "serve", "--port", str(port)], env, 300)


def _vllm(model_dir: Path) -> tuple[subprocess.Popen[str], int]:
    """vLLM (CPU) serving `model_dir` from .venv-vllm, in its own process."""
    python = REPO / ".venv-vllm" / "bin" / "python"
    if not python.exists():
        raise SystemExit("--generator vllm needs vLLM: `make vllm` installs it into .venv-vllm")
    return start_server("vLLM", lambda port: [str(python), "-m", "vllm.entrypoints.openai.api_server", "--model", str(model_dir),
                                        "--served-model-name", "base", "--max-model-len", "2048", "--port", str(port)],
                  {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "2"}, 900)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mentions", type=int, default=100, help="sent one after another")
    parser.add_argument("--concurrency", default="10", help="comma-separated numbers of askers at once, e.g. 1,10,50")
    parser.add_argument("--model", choices=("tiny", "smollm2"), default="tiny")
    parser.add_argument("--generator", default="local", help="comma-separated: local, llama.cpp, openai (a persona serve), vllm (needs `make vllm`)")
    parser.add_argument("--delivery", choices=("typing", "stream"), default="stream")
    parser.add_argument("--adapter", default="", help="an adapter folder of the base model for the in-process generators "
                        "(e.g. the demo's, $PERSONA_HOME/demo/adapters/v1/adapter): replies as short as a trained voice makes them")
    args = parser.parse_args()
    levels = [int(n) for n in args.concurrency.split(",") if n.strip()]
    generators = [g.strip() for g in args.generator.split(",") if g.strip()]

    import psycopg
    from psycopg.conninfo import make_conninfo

    from persona import api_keys, memory
    from persona.config import Settings
    from persona.memory.embeddings import Embedder, resolve_embed_model
    from persona.privacy.scopes import Place
    from persona.runtime.engines.base import GenerationSettings
    from persona.runtime.engines.openai_compatible import OpenAICompatibleGenerator
    from persona.runtime.engines.transformers_engine import TransformersGenerator
    from persona.runtime.grounding import GroundingSettings
    from persona.runtime.model import load_base_model, load_tokenizer, resolve_base_model
    from persona.runtime.reply import ReplyEngine
    from persona.storage.db import Database
    from persona.storage.embedded import start_embedded
    from persona.storage.store import Store
    from tests.fixtures import known_answers
    from tests.fixtures.tiny_model import build_tiny_model

    defaults = Settings.model_construct()
    results: dict[str, object] = {}
    with tempfile.TemporaryDirectory(prefix="persona-bench-reply-") as tmp:
        admin = make_conninfo(start_embedded(Path(tmp) / "pg"), dbname="postgres")
        url = fresh_database(admin, "bench_reply")
        store = Store(Database(url=url))
        embedder = Embedder(resolve_embed_model(""))
        with psycopg.connect(url) as conn:
            known_answers.populate(conn)
        with store.connect() as conn:
            memory.build(conn, embedder)
            _, owner_key = api_keys.create(conn, asker_id=None, place=Place.terminal())
            conn.commit()
        base = "" if args.model == "smollm2" else str(build_tiny_model(Path(tmp) / "tiny"))
        spec = resolve_base_model(base)
        generation = GenerationSettings.from_settings(defaults, max_new_tokens=40)
        for name in generators:
            server = None
            if name == "openai":
                server, port = _serve(url, base, Path(tmp) / "serve-home", known_answers.OWNER_ID)
                generator = OpenAICompatibleGenerator(spec, generation, base_url=f"http://127.0.0.1:{port}/v1", api_key=owner_key)
                generator.use_adapter(None, None)
            elif name == "vllm":
                folder = Path(tmp) / "served-model"  # vLLM reads safetensors: the base model saved once as a Hugging Face folder
                if not folder.exists():
                    load_base_model(spec).save_pretrained(folder)
                    load_tokenizer(spec).save_pretrained(folder)
                server, port = _vllm(folder)
                generator = OpenAICompatibleGenerator(spec, generation, base_url=f"http://127.0.0.1:{port}/v1", model="base", timeout_s=600)
                generator.use_adapter(None, None)
            elif name == "llama.cpp":
                from persona.runtime.engines.llamacpp import LlamaCppGenerator

                if not spec.gguf_file:
                    raise SystemExit("--generator llama.cpp needs a GGUF base model: use --model smollm2")
                generator = LlamaCppGenerator(spec, generation)
            else:
                generator = TransformersGenerator(spec, generation)
            if args.adapter and name in ("local", "llama.cpp"):
                generator.use_adapter(1, args.adapter)
            # The pipeline as shipped: grounding, "not sure" and the consistency check on their defaults.
            engine = ReplyEngine(store, embedder, generator, owner_id=known_answers.OWNER_ID, owner_name="Alex",
                                 grounding=GroundingSettings.from_settings(defaults), say_unknown=defaults.say_unknown,
                                 consistency_policy=defaults.consistency)
            started = time.perf_counter()
            try:
                sequential, together = asyncio.run(drive(engine, args.mentions, levels, args.delivery,
                                                         1 if name in ("local", "llama.cpp") else 10_000))
            finally:
                if server is not None:
                    server.send_signal(signal.SIGINT)
                    try:
                        server.wait(timeout=60)
                    except subprocess.TimeoutExpired:
                        server.kill()
            figures: dict[str, object] = {"seconds": round(time.perf_counter() - started, 1)}
            figures |= summarise(sequential, "")
            for level, timings in together.items():
                figures |= summarise(timings, f"at_{level}_")
            results[name] = figures
    budget = 20.0
    out = {"bench": "reply", "machine": f"{platform.machine()} {os.cpu_count()} cores", "model": args.model, "adapter": args.adapter or None,
           "mentions": args.mentions,
           "concurrency": levels, "delivery": args.delivery, "overhead_budget_p99_ms": budget, "generators": results}
    out["overhead_within_budget"] = {name: figures.get("at_10_overhead_p99_ms", figures["overhead_p99_ms"]) <= budget  # type: ignore[operator]
                                     for name, figures in results.items()}
    print(json.dumps(out))


if __name__ == "__main__":
    main()

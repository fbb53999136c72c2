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

`--reuse on,off` runs every generator once per setting, the same mentions each time:
`reuse_on` keeps each place's prompt prefix (PERSONA_PREFIX_CACHE_MB, frame 2),
`reuse_off` reads every prompt from the start (PERSONA_PREFIX_CACHE_MB=0), and
`today` (with `--reuse on,off,today`) is the release before it: frame 1 (memories in the
system prompt), the last 12 lines as context, no reuse. Each reports first text and
whole reply p50/p99 and the prompt tokens the model read per reply, for --mentions in
one channel and again with 5 channels taking turns (`five_channels_*`). Replies are
greedy in these runs, so every setting times the same replies.

    python bench/reply.py                      # tiny random model: measures the pipeline
    python bench/reply.py --model smollm2 --mentions 10 --concurrency 1,10 --generator local,llama.cpp,openai
    python bench/reply.py --model smollm2 --adapter $DEMO/adapters/v1/adapter --generator local --reuse on,off,today --mentions 20
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


async def drive(engine, mentions: int, levels: list[int], delivery: str, slots: int, *, channels: int = 1,  # noqa: ANN001
                window: tuple[int, int] | None = None, prepare_ahead: int = 1) -> tuple[list[dict[str, float]], dict[int, list[dict[str, float]]]]:
    """Mentions one after another (taking turns over `channels` channels of one server),
    then each concurrency level; the reply timings of each. `window`: the Chat cog's
    sticky window (shortest, longest) instead of its default."""
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
    places = [CHANNEL_ID + i for i in range(channels)]
    fake.add_guild(GUILD_ID, "Friends", places)
    for place in places:
        for i in range(20):
            fake.message(place, askers[i % len(askers)], f"earlier chatter {i}")
    await fake.start()
    fake.patch()
    services = Services(engine, engine.store, OWNER_ID, reply_timeout=600, per_user_rate=10_000, max_pending=10_000, delivery=delivery,
                        generation_slots=slots, send_mode="auto", prepare_ahead=prepare_ahead,
                        max_sends_per_hour=10**9, max_sends_per_hour_per_channel=10**9)  # a bench, not a person: no hourly limit
    bot = PersonaBot(services)
    runner = asyncio.create_task(bot.start("bench-token"))
    try:
        await asyncio.wait_for(bot.wait_until_ready(), 30)
        chat = bot.get_cog("Chat")
        if window is not None:
            from persona.runtime.window import StickyWindow

            chat.window = StickyWindow(*window)
        questions = [q for _, q in PARAPHRASED]

        async def wait_sent(n: int) -> None:
            while len(fake.sent) < n:
                await asyncio.sleep(0.005)

        for i in range(mentions):
            await fake.post(places[i % channels], askers[0], f"<@{BOT_ID}> {questions[i % len(questions)]}", mentions=[BOT_ID])
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


SETTINGS = {"reuse_on", "reuse_off", "today"}


def run(engine, mentions: int, levels: list[int], delivery: str, slots: int, channels: int = 1,  # noqa: ANN001
        window: tuple[int, int] | None = None, prefix: str = "", prepare_ahead: int = 1) -> dict[str, object]:
    started = time.perf_counter()
    sequential, together = asyncio.run(drive(engine, mentions, levels, delivery, slots, channels=channels, window=window,
                                             prepare_ahead=prepare_ahead))
    figures: dict[str, object] = {f"{prefix}seconds": round(time.perf_counter() - started, 1)}
    figures |= summarise(sequential, prefix)
    for level, timings in together.items():
        figures |= summarise(timings, f"{prefix}at_{level}_")
    return figures


def compare(engine, setting: str, args: argparse.Namespace, levels: list[int], slots: int, cache_mb: int) -> dict[str, object]:  # noqa: ANN001
    """One setting's figures: --mentions in one channel (with the concurrency levels), then 5 channels taking turns."""
    from persona.prompts import CURRENT_FRAME
    from persona.runtime.prefix_cache import PrefixCache, SequenceStates

    generator = engine.generator
    if not hasattr(generator, "prefixes"):
        raise SystemExit("--reuse compares the in-process engines: local, llama.cpp")
    kept = cache_mb * 2**20 if setting == "reuse_on" else 0
    engine.frame_version = 1 if setting == "today" else CURRENT_FRAME
    window = (12, 12) if setting == "today" else None  # the last 12 lines, as before the sticky window
    figures: dict[str, object] = {"prefix_cache_mb": kept // 2**20, "frame": engine.frame_version}
    for channels, prefix in ((1, ""), (5, "five_channels_")):
        counter = PrefixCache(kept) if isinstance(generator.prefixes, PrefixCache) else SequenceStates(kept)
        generator.prefixes = counter
        if hasattr(generator, "llm"):
            generator.llm.reset()
        result = run(engine, args.mentions, levels if channels == 1 else [], args.delivery, slots, channels, window, prefix, args.prepare_ahead)
        replies = args.mentions + (sum(levels) if channels == 1 else 0)
        figures |= result
        figures[f"{prefix}first_text_p50_s"] = round(float(result[f"{prefix}first_text_p50_ms"]) / 1000, 3)  # type: ignore[arg-type]
        figures[f"{prefix}first_text_p99_s"] = round(float(result[f"{prefix}first_text_p99_ms"]) / 1000, 3)  # type: ignore[arg-type]
        figures[f"{prefix}reply_p50_s"] = round(float(result[f"{prefix}total_p50_ms"]) / 1000, 3)  # type: ignore[arg-type]
        figures[f"{prefix}reply_p99_s"] = round(float(result[f"{prefix}total_p99_ms"]) / 1000, 3)  # type: ignore[arg-type]
        figures[f"{prefix}prompt_tokens_per_reply"] = round(counter.read_tokens / replies, 1)
        figures[f"{prefix}prompt_tokens_in_prompts_per_reply"] = round(counter.prompt_tokens / replies, 1)
        figures[f"{prefix}share_of_prompt_read"] = round(counter.share_read(), 3)
        figures[f"{prefix}memory_tokens_per_reply"] = memory_tokens(engine, replies)
        if args.show_replies:
            with engine.store.connect() as conn:
                said = [r[0] for r in conn.execute("SELECT completion FROM replies ORDER BY id DESC LIMIT %s", (replies,))]
            print(json.dumps({"setting": setting, "channels": channels, "replies": said[::-1]}), file=sys.stderr)
    return figures


def model_only(engine, mentions: int, cache_mb: int) -> dict[str, object]:  # noqa: ANN001
    """The first run's prompts (one channel, in order) given to the model alone, with and
    without reuse, in blocks on, off, off, on (so a drift of the shared machine falls on
    both): generation time and time to the first text without Discord, recall or the check."""
    from persona.runtime.prefix_cache import PrefixCache, SequenceStates

    generator = engine.generator
    with engine.store.connect() as conn:
        prompts = [row[0] for row in conn.execute("SELECT prompt FROM replies ORDER BY id LIMIT %s", (mentions,))]
    timings: dict[str, list[tuple[float, float]]] = {"reuse_on": [], "reuse_off": []}
    counters: dict[str, object] = {}
    for setting in ("reuse_on", "reuse_off", "reuse_off", "reuse_on"):
        kept = cache_mb * 2**20 if setting == "reuse_on" else 0
        counter = PrefixCache(kept) if isinstance(generator.prefixes, PrefixCache) else SequenceStates(kept)
        generator.prefixes = counters[setting] = counter
        if hasattr(generator, "llm"):
            generator.llm.reset()
        for prompt in prompts:
            started = time.perf_counter()
            first: list[float] = []
            generator.generate(prompt, greedy=True, place="bench", on_text=lambda _text, seen=first: seen or seen.append(time.perf_counter()))
            done = time.perf_counter()
            timings[setting].append((done - started, (first[0] if first else done) - started))
    figures: dict[str, object] = {"prompts": len(prompts)}
    for setting, values in timings.items():
        counter = counters[setting]
        figures[setting] = {"generate_p50_s": round(float(np.percentile([v[0] for v in values], 50)), 3),
                            "generate_p99_s": round(float(np.percentile([v[0] for v in values], 99)), 3),
                            "first_text_p50_s": round(float(np.percentile([v[1] for v in values], 50)), 3),
                            "prompt_tokens_per_reply": round(counter.read_tokens / len(prompts), 1),  # type: ignore[attr-defined]
                            "prompt_tokens_in_prompts_per_reply": round(counter.prompt_tokens / len(prompts), 1)}  # type: ignore[attr-defined]
    return figures


def memory_tokens(engine, replies: int) -> float:  # noqa: ANN001
    """Mean tokens of the quoted memories in the last `replies` logged prompts: new with
    each question, so read by every reply whatever is reused."""
    from persona.prompts import MEMORY_PREAMBLE

    with engine.store.connect() as conn:
        prompts = [row[0] for row in conn.execute("SELECT prompt FROM replies ORDER BY id DESC LIMIT %s", (replies,))]
    counts = []
    for prompt in prompts:
        quoted = "".join(m["content"][m["content"].index(MEMORY_PREAMBLE):] for m in prompt if MEMORY_PREAMBLE in m["content"])
        counts.append(len(engine.generator.tokenizer(quoted, add_special_tokens=False)["input_ids"]) if quoted else 0)
    return round(sum(counts) / len(counts), 1) if counts else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mentions", type=int, default=100, help="sent one after another")
    parser.add_argument("--concurrency", default="10", help="comma-separated numbers of askers at once, e.g. 1,10,50")
    parser.add_argument("--model", choices=("tiny", "smollm2"), default="tiny")
    parser.add_argument("--generator", default="local", help="comma-separated: local, llama.cpp, openai (a persona serve), vllm (needs `make vllm`)")
    parser.add_argument("--delivery", choices=("typing", "stream"), default="stream")
    parser.add_argument("--reuse", default="", help="comma-separated settings to compare in one run: on, off, today (frame 1, "
                        "last 12 lines, no reuse); each gets its own JSON object (reuse_on, reuse_off, today)")
    parser.add_argument("--adapter", default="", help="an adapter folder of the base model for the in-process generators "
                        "(e.g. the demo's, $PERSONA_HOME/demo/adapters/v1/adapter): replies as short as a trained voice makes them")
    parser.add_argument("--show-replies", action="store_true", help="with --reuse: each run's replies as JSON lines on stderr")
    parser.add_argument("--prepare-ahead", type=int, default=1, help="waiting askers' recall, evidence and prompt made this many at a "
                        "time while the model answers someone else (bot/cogs/chat.py); 0: each in its turn, as before")
    args = parser.parse_args()
    levels = [int(n) for n in args.concurrency.split(",") if n.strip()]
    generators = [g.strip() for g in args.generator.split(",") if g.strip()]
    reuse = [f"reuse_{r.strip()}" if r.strip() in ("on", "off") else r.strip() for r in args.reuse.split(",") if r.strip()]
    if any(r not in SETTINGS for r in reuse):
        raise SystemExit("--reuse takes on, off and today")

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
        # --reuse compares settings on the same replies: greedy, so with and without reuse they are word for word the same.
        generation = GenerationSettings.from_settings(defaults, max_new_tokens=40, greedy=True if reuse else None)
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
                generator = LlamaCppGenerator(spec, generation, prefix_cache_mb=defaults.prefix_cache_mb)
            else:
                generator = TransformersGenerator(spec, generation, prefix_cache_mb=defaults.prefix_cache_mb)
            if args.adapter and name in ("local", "llama.cpp"):
                generator.use_adapter(1, args.adapter)
            # The pipeline as shipped: grounding, "not sure" and the consistency check on their defaults.
            engine = ReplyEngine(store, embedder, generator, owner_id=known_answers.OWNER_ID, owner_name="Alex",
                                 grounding=GroundingSettings.from_settings(defaults), say_unknown=defaults.say_unknown,
                                 consistency_policy=defaults.consistency)
            slots = 1 if name in ("local", "llama.cpp") else 10_000
            try:
                if reuse:
                    results[name] = {setting: compare(engine, setting, args, levels, slots, defaults.prefix_cache_mb) for setting in reuse}
                    results[name]["model_only"] = model_only(engine, args.mentions, defaults.prefix_cache_mb)
                else:
                    results[name] = run(engine, args.mentions, levels, args.delivery, slots, prepare_ahead=args.prepare_ahead)
            finally:
                if server is not None:
                    server.send_signal(signal.SIGINT)
                    try:
                        server.wait(timeout=60)
                    except subprocess.TimeoutExpired:
                        server.kill()
    budget = 20.0
    if reuse:
        out: dict[str, object] = {"bench": "reply", "machine": f"{platform.machine()} {os.cpu_count()} cores", "model": args.model,
                                  "adapter": args.adapter or None, "mentions": args.mentions, "concurrency": levels, "delivery": args.delivery,
                                  "prepare_ahead": args.prepare_ahead}
        out |= results[generators[0]]  # type: ignore[arg-type]  # reuse_on, reuse_off (, today) of the first generator
        out["generators"] = results
        print(json.dumps(out))
        return
    out = {"bench": "reply", "machine": f"{platform.machine()} {os.cpu_count()} cores", "model": args.model, "adapter": args.adapter or None,
           "mentions": args.mentions, "prepare_ahead": args.prepare_ahead,
           "concurrency": levels, "delivery": args.delivery, "overhead_budget_p99_ms": budget, "generators": results}
    out["overhead_within_budget"] = {name: figures.get("at_10_overhead_p99_ms", figures["overhead_p99_ms"]) <= budget  # type: ignore[operator]
                                     for name, figures in results.items()}
    print(json.dumps(out))


if __name__ == "__main__":
    main()

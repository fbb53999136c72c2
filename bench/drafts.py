"""Benchmark: do the owner's edits teach the persona? And how fast does a decision go out? One JSON line.

**Learning from edits.** The demo's kind of generated history (demo/sample.py) with 45% of
each channel held out (`--heldout`), an adapter trained on the rest with the demo's settings
(`--steps`); the held-out windows, oldest first, are split into an *edit pool* and a
disjoint *evaluation set* (the newest `--eval`). Then, in rounds up to 25, 50 and 100
edits: the active adapter drafts a reply (greedy) to each pool context, the "owner"
edits the draft into their real held-out line (`persona.drafts.approve(..., text=real)`,
via the CLI, so it is trained on), and the incremental retrain runs as the nightly job
does (SFT on the edits and replayed examples, then DPO on the draft/edit pairs). After
each round the new candidate is made active (the gate's verdict is reported, not obeyed)
and measured on the evaluation set:

- `approval_proxy`: share of greedy drafts within a normalised edit distance of 0.5 of
  the owner's real line (1 - Levenshtein distance / longer length ≥ 0.5);
- `similarity`: mean of that similarity (1: the real line);
- `eval_loss`: mean loss per owner token of the real lines (lower: more like the owner).

The baseline is round 0, the adapter before any edit, measured in the same run.

**Decision to message.** The real discord.py client against tests/fake_discord, a tiny
model, draft mode: `--clicks` drafts sent with Discord's Send button (the bot posts at
once) and as many approved from the CLI/dashboard side (`drafts.approve`: the bot wakes
on PostgreSQL's NOTIFY), and, as the baseline of the previous step, as many with the
listener stopped (the bot's loop alone, every DELIVER_EVERY_S); p50/p99 from the
decision to the reply in the channel.

    python bench/drafts.py                       # edits 25,50,100; 10 steps; 20 clicks
    python bench/drafts.py --edits 10,20 --steps 6 --retrain-steps 6 --clicks 10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.memory_use import history_home
from trainer.evaluate import last_assistant


def _similarity(draft: str, real: str) -> float:
    from rapidfuzz.distance import Levenshtein

    return Levenshtein.normalized_similarity(draft.strip(), real.strip())


def _drafts_for(model: Any, tokenizer: Any, contexts: list[list[dict[str, str]]], generation: Any) -> list[str]:
    from persona.runtime.engines.transformers_engine import generate

    return [generate(model, tokenizer, context, generation).text for context in contexts]


def _measure(spec: Any, adapter: str, examples: list[Any], options: Any, generation: Any) -> dict[str, Any]:
    from peft import PeftModel

    from persona.runtime.model import load_base_model, load_tokenizer
    from trainer.evaluate import heldout_loss

    tokenizer = load_tokenizer(spec)
    model = PeftModel.from_pretrained(load_base_model(spec), adapter)
    model.eval()
    contexts = [e.messages[: last_assistant(e.messages)] for e in examples]
    reals = [e.messages[last_assistant(e.messages)]["content"] for e in examples]
    drafted = _drafts_for(model, tokenizer, contexts, generation)
    similarities = [_similarity(d, r) for d, r in zip(drafted, reals, strict=True)]
    loss = heldout_loss(model, tokenizer, examples, options.max_seq_len, options.batch_size)
    return {"approval_proxy": round(sum(s >= 0.5 for s in similarities) / len(similarities), 3),
            "similarity": round(statistics.fmean(similarities), 3), "eval_loss": round(loss, 4) if loss is not None else None,
            "example": {"real": reals[-1], "draft": drafted[-1]}}


def learning(root: Path, edits: list[int], steps: int, retrain_steps: int, eval_count: int, heldout: float) -> dict[str, Any]:
    from persona import adapters, drafts
    from persona.replies import LoggedReply
    from persona.runtime.engines.base import GenerationSettings
    from persona.runtime.model import load_base_model, load_tokenizer, resolve_base_model
    from trainer import pipeline
    from trainer.sft import TrainOptions

    settings, store = history_home("drafts", root)
    # By default nearly half of each channel held out: enough windows for 100 edits and a disjoint
    # evaluation set; no fact probes (what is measured here is the voice; the gate's verdict is only reported).
    settings = settings.model_copy(update={"heldout_fraction": heldout, "eval_fact_probes": 0})
    started = time.perf_counter()
    first = pipeline.run(store, settings, incremental=False, max_steps=steps, eval_samples=0, quiet=True)
    with store.connect() as conn:
        if adapters.active(conn) is None or adapters.active(conn).id != first.version:
            adapters.activate(conn, first.version)
        first_path = adapters.get(conn, first.version).path
    with store.connect() as conn:
        dataset = pipeline.prepared_dataset(conn, settings)
    held = sorted(dataset.heldout, key=lambda e: e.last_at)
    wanted = max(edits)
    if len(held) < wanted + eval_count:
        wanted = max(1, len(held) - eval_count)
        edits = sorted({min(n, wanted) for n in edits})
    pool, evaluation = held[:wanted], held[-eval_count:]
    spec = resolve_base_model(settings.base_model, settings.models_dir)
    options = TrainOptions.from_settings(settings)
    generation = GenerationSettings.from_settings(settings).overridden(greedy=True, max_new_tokens=32)
    rounds = [{"edits": 0, "version": first.version, "gate": first.status, **_measure(spec, first_path, evaluation, options, generation)}]
    print(json.dumps({"round": rounds[-1]}, ensure_ascii=False), file=sys.stderr, flush=True)  # what a stopped run still shows
    done = 0
    for target in edits:
        with store.connect() as conn:
            current = adapters.active(conn)
        tokenizer = load_tokenizer(spec)
        from peft import PeftModel

        model = PeftModel.from_pretrained(load_base_model(spec), current.path)
        model.eval()
        batch = pool[done:target]
        contexts = [e.messages[: last_assistant(e.messages)] for e in batch]
        drafted = _drafts_for(model, tokenizer, contexts, generation)
        with store.connect() as conn:
            for example, context, draft in zip(batch, contexts, drafted, strict=True):
                real = example.messages[last_assistant(example.messages)]["content"]
                logged = LoggedReply(scope="bench", prompt=context, completion=draft, memory_ids=[], adapter_version=current.id,
                                     base_model=spec.name, latency_ms=0, asker_id=1, channel_id=example.channel_id, guild_id=None,
                                     trigger_message_id=example.target_ids[-1] if example.target_ids else 1, context_author_ids=(1,))
                held_draft = drafts.create(conn, logged, asker_name="friend", asker_text=context[-1]["content"], place_label="bench",
                                           ttl=timedelta(hours=1))
                drafts.approve(conn, held_draft.id, via="cli", text=real[: drafts.MAX_TEXT] or "ok")
            conn.commit()
        done = target
        outcome = pipeline.run(store, settings, incremental=True, max_steps=retrain_steps, eval_samples=0, quiet=True)
        with store.connect() as conn:
            if outcome.version and adapters.active(conn).id != outcome.version:
                adapters.activate(conn, outcome.version)
            version = adapters.get(conn, outcome.version)
        rounds.append({"edits": target, "version": outcome.version, "gate": outcome.status, "dpo": (outcome.metrics or {}).get("dpo"),
                       **_measure(spec, version.path, evaluation, options, generation)})
        print(json.dumps({"round": rounds[-1]}, ensure_ascii=False), file=sys.stderr, flush=True)
    return {"heldout_windows": len(held), "evaluated_on": len(evaluation), "rounds": rounds, "minutes": round((time.perf_counter() - started) / 60, 1)}


def clicks(count: int) -> dict[str, Any]:
    """Decision → reply in the channel, through the real discord.py client and the fake Discord."""
    from psycopg.conninfo import make_conninfo

    from bench._common import fresh_database
    from bot.client import PersonaBot
    from bot.services import Services
    from persona import drafts, memory
    from persona.memory.embeddings import Embedder, resolve_embed_model
    from persona.runtime.engines.base import GenerationSettings
    from persona.runtime.engines.transformers_engine import TransformersGenerator
    from persona.runtime.model import resolve_base_model
    from persona.runtime.reply import ReplyEngine
    from persona.storage.db import Database
    from persona.storage.embedded import start_embedded
    from persona.storage.store import Store
    from tests.fake_discord.server import BOT_ID, FakeDiscord
    from tests.fixtures.tiny_model import build_tiny_model

    owner, friend, guild, channel = 100, 200, 300, 400
    with tempfile.TemporaryDirectory(prefix="persona-bench-drafts-") as folder:
        admin = make_conninfo(start_embedded(Path(folder) / "pg"), dbname="postgres")
        store = Store(Database(url=fresh_database(admin, "bench_drafts")))
        with store.connect() as conn:
            memory.build(conn, Embedder(resolve_embed_model("")))
        tiny = build_tiny_model(Path(folder) / "tiny")
        generator = TransformersGenerator(resolve_base_model(str(tiny)), GenerationSettings(8, 0.8, 0.9, 1.0))
        engine = ReplyEngine(store, Embedder(resolve_embed_model("")), generator, owner_id=owner, owner_name="Alex")

        async def main() -> dict[str, list[float]]:
            fake = FakeDiscord(owner_id=owner)
            fake.add_user(owner, "alex")
            fake.add_user(friend, "sam")
            fake.add_guild(guild, "Bench", [channel])
            await fake.start()
            fake.patch()
            services = Services(engine, store, owner, reply_timeout=120, per_user_rate=10_000, max_pending=10_000, send_mode="draft")
            bot = PersonaBot(services)
            runner = asyncio.create_task(bot.start("bench-token"))
            # the last: the previous version's way, the bot's 2-second loop alone (its NOTIFY listener stopped)
            timings: dict[str, list[float]] = {"discord_click": [], "cli_approval": [], "cli_approval_loop_only": []}
            try:
                await asyncio.wait_for(bot.wait_until_ready(), 30)
                owner_dm = str(700_000_000_000_000_000 + owner % 1_000_000)
                for kind in timings:
                    if kind == "cli_approval_loop_only":
                        bot.get_cog("Drafts")._listener.cancel()  # type: ignore[union-attr]
                    for i in range(count):
                        await fake.post(channel, friend, f"<@{BOT_ID}> {kind} {i}", mentions=[BOT_ID])
                        while len([m for m in fake.sent if m["channel_id"] == owner_dm]) < sum(len(v) for v in timings.values()) + 1:
                            await asyncio.sleep(0.005)
                        dm = [m for m in fake.sent if m["channel_id"] == owner_dm][-1]
                        send_id = next(c["custom_id"] for row in dm["components"] for c in row["components"] if ":send:" in c["custom_id"])
                        before = len([m for m in fake.sent if m["channel_id"] == str(channel)])
                        start = time.perf_counter()
                        if kind == "discord_click":
                            await fake.click(owner, dm, send_id)
                        else:
                            def approve(draft_id: int = int(send_id.rsplit(":", 1)[1])) -> None:
                                with store.connect() as conn:
                                    drafts.approve(conn, draft_id, via="cli")
                                    conn.commit()
                            await asyncio.to_thread(approve)
                        while len([m for m in fake.sent if m["channel_id"] == str(channel)]) == before:
                            await asyncio.sleep(0.002)
                        timings[kind].append(time.perf_counter() - start)
            finally:
                await bot.close()
                await asyncio.gather(runner, return_exceptions=True)
                await fake.stop()
            return timings

        measured = asyncio.run(main())
    return {kind: {"p50_s": round(statistics.median(v), 3), "p99_s": round(sorted(v)[min(len(v) - 1, int(len(v) * 0.99))], 3), "n": len(v)}
            for kind, v in measured.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edits", default="25,50,100", help="Edit counts after which to retrain and measure.")
    parser.add_argument("--heldout", type=float, default=0.45, help="Share of each channel held out (edit pool + evaluation set).")
    parser.add_argument("--steps", type=int, default=10, help="Training steps of the first adapter.")
    parser.add_argument("--retrain-steps", type=int, default=10, help="Training steps of each retrain on the edits.")
    parser.add_argument("--eval", type=int, default=30, help="Held-out windows the drafts are measured on.")
    parser.add_argument("--clicks", type=int, default=20, help="Decisions timed each way (0: skip).")
    parser.add_argument("--skip-learning", action="store_true")
    args = parser.parse_args()
    result: dict[str, Any] = {"bench": "drafts", "machine": platform.processor() or platform.machine()}
    if args.clicks:
        result["decision_to_message"] = clicks(args.clicks)
        print(json.dumps(result["decision_to_message"]), file=sys.stderr, flush=True)
    if not args.skip_learning:
        with tempfile.TemporaryDirectory(prefix="persona-bench-edits-") as root:
            result["learning"] = learning(Path(root), [int(n) for n in args.edits.split(",")], args.steps, args.retrain_steps, args.eval,
                                          args.heldout)
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    main()

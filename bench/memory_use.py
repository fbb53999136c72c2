"""Does the persona use what it recalls? Fact questions on the demo's history.

Two adapters are trained on the same generated history with the same step budget:
one on plain examples (PERSONA_TRAIN_MEMORY_FRACTION=0) and one where a share of the
examples carry recalled memories (trainer/recalled.py). Each answers the fact
questions below with memory recall on, greedily; an answer counts when it contains the
fact's key word. The base model with the same memories is the baseline of the same run.

    python bench/memory_use.py [--steps 40] [--fraction 0.5]

Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

QUESTIONS = [
    ("what's your cat's name?", "miso"), ("how old is miso?", "four"),
    ("which bike shop do you work at?", "sprocket"), ("what street is your shop on?", "alder"),
    ("where are you moving to?", "lisbon"), ("when is the move?", "march"),
    ("are you allergic to anything?", "cashew"), ("can you eat cashews?", "allergic"),
    ("how old is your sourdough starter?", "three"), ("what's your starter called?", "gerald"),
]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--fraction", type=float, default=0.5)
    args = parser.parse_args()

    from demo import sample
    from demo.run import DemoOptions, demo_settings
    from ingest.dce import ingest_dce
    from ingest.discord_package import ingest_discord_package
    from persona import adapters, memory
    from persona.config import Settings
    from persona.memory.embeddings import Embedder, resolve_embed_model
    from persona.privacy.scopes import Place
    from persona.runtime.generation import GenerationSettings, Generator
    from persona.runtime.model import resolve_base_model
    from persona.runtime.reply import ReplyEngine, ReplyRequest
    from persona.storage.store import open_store
    from trainer import pipeline

    home = Path(tempfile.mkdtemp(prefix="persona-bench-memory-use-"))
    settings = demo_settings(Settings.model_construct().model_copy(update={"home": home}), DemoOptions())
    store = open_store(settings)
    package, dce = sample.write(home / "sample", sample.generate(7))
    ingest_discord_package(store, package, owner_id=sample.OWNER.id)
    ingest_dce(store, [dce], owner_id=sample.OWNER.id)
    embedder = Embedder(resolve_embed_model(""))
    with store.connect() as conn:
        memory.build(conn, embedder)

    versions: dict[str, tuple[int, str, float, float]] = {}
    for label, fraction in (("plain", 0.0), ("with_memories", args.fraction)):
        run_settings = settings.model_copy(update={"train_memory_fraction": fraction})
        started = time.perf_counter()
        outcome = pipeline.run(store, run_settings, incremental=False, trigger="cli", eval_samples=0, max_steps=args.steps, quiet=True)
        with store.connect() as conn:
            path = adapters.get(conn, outcome.version).path
        versions[label] = (outcome.version, path, outcome.metrics["heldout_loss"]["candidate"], time.perf_counter() - started)

    generator = Generator(resolve_base_model(""), GenerationSettings.from_settings(settings, max_new_tokens=32, greedy=True))
    engine = ReplyEngine(store, embedder, generator, owner_id=sample.OWNER.id, owner_name=sample.OWNER.display)
    used: dict[str, int] = {}
    recalled = 0
    answers: dict[str, list[str]] = {}
    for label, adapter in (("base", None), *((k, v) for k, v in versions.items())):
        generator.use_adapter(adapter[0] if adapter else None, adapter[1] if adapter else None)
        used[label] = 0
        answers[label] = []
        for question, word in QUESTIONS:
            reply = engine.reply(ReplyRequest(text=question, asker_id=sample.OWNER.id, asker_name="you", place=Place.terminal()))
            used[label] += word in reply.text.lower()
            answers[label].append(reply.text)
            if label == "base":
                recalled += any(word in m.content.lower() for m in reply.memories)
    print(json.dumps({
        "questions": len(QUESTIONS), "steps": args.steps, "fraction": args.fraction,
        "fact_recalled_in_memories": recalled,
        "fact_used_in_answer": used,
        "heldout_loss": {k: round(v[2], 4) for k, v in versions.items()},
        "train_seconds": {k: round(v[3], 1) for k, v in versions.items()},
        "answers": answers,
    }, ensure_ascii=False))


if __name__ == "__main__":
    main()

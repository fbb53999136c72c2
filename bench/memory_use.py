"""Does the persona use what it recalls? Fact questions on two generated histories.

For each history (the demo's, and a second one with other facts planted the same way),
adapters are trained with the same step budget, one per variant:

- `plain`: conversations only (PERSONA_TRAIN_MEMORY_FRACTION=0, no drills);
- `drills`: plus recall drills (trainer/drills.py, PERSONA_TRAIN_DRILL_FRACTION).

Each answers the fact questions greedily with memory recall on, as the bot would —
without grounding, and with it (persona/runtime/grounding.py: the owner's remembered
sentences that answer the question pull the reply towards their words) — and again
with recall off (did the answer come from memory, or from the weights?). An answer
counts when it contains the fact's key word. The base model with the same memories is
the baseline of the same run. Questions whose answer is nowhere in the history measure
invention: how often grounding found (wrong) evidence for them, how often a reply
says it does not know (a word list: "not sure", "idk", "no idea", …), and with
PERSONA_SAY_UNKNOWN (persona/runtime/unknowns.py) how many of them get a "not sure" and
how many answerable questions wrongly do. The consistency check's policies are measured
by bench/honesty.py on a history with 20 planted facts.

    python bench/memory_use.py [--steps 40] [--drills 0] [--histories demo,second]
                               [--boost 5 --copy-weight 0.5 --threshold 0.45] [--frames 1,2]

With `--frames 1,2` every adapter answers in both prompt frames (persona/prompts.py):
what moving the memories from the system prompt to after the newest message costs — in
fact use, and in held-out loss with memories: the adapter's loss on the owner's held-out
replies when every held-out example is given the memories recall finds for it, quoted
where each frame puts them (`heldout_loss_with_memories`).

Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from demo import sample
from persona.runtime.unknowns import HEDGE

QUESTIONS = {
    "demo": [
        ("what's your cat's name?", "miso"), ("how old is miso?", "four"),
        ("which bike shop do you work at?", "sprocket"), ("what street is your shop on?", "alder"),
        ("where are you moving to?", "lisbon"), ("when is the move?", "march"),
        ("are you allergic to anything?", "cashew"), ("can you eat cashews?", "allergic"),
        ("how old is your sourdough starter?", "three"), ("what's your starter called?", "gerald"),
    ],
    "second": [
        ("what's your dog's name?", "biscuit"), ("what kind of dog do you have?", "corgi"),
        ("what instrument are you learning?", "cello"), ("how often are your cello lessons?", "two"),
        ("where did you grow up?", "tromsø"), ("what does your sister do?", "pilot"),
        ("what's your sister's name?", "nadia"), ("which gym do you climb at now?", "boulderhaus"),
        ("what street is the new gym on?", "pine"), ("where does your sister fly to?", "reykjavik"),
    ],
}
SECOND_FACTS = [
    (sample.DM_THEO, sample.THEO, "What's your dog called again?", "my dog is called biscuit, tiny corgi with zero chill ✨"),
    (sample.GENERAL, sample.KAI, "What instrument are you learning?", "i'm learning the cello, two lessons a week and my neighbours hate me lol"),
    (sample.KITCHEN, sample.LENA, "Where did you grow up?", "i grew up in tromsø, way up north, so winters here feel like nothing"),
    (sample.GROUP, sample.PRIYA, "What's your sister doing now?", "my sister nadia is a pilot now!! flies to reykjavik every week 🥲"),
    (sample.SEND_IT, sample.MARCUS, "Which gym are you climbing at now?", "switched to boulderhaus on pine street, the walls are so good ngl"),
]
UNANSWERABLE = ["what car do you drive?", "what's your brother's name?", "where did you go to university?", "what's your middle name?",
                "what's your favourite band?", "do you have kids?", "what phone do you have?", "what's your favourite movie?",
                "how tall are you?", "what did you have for breakfast?"]


def history_home(name: str, root: Path, facts: list[Any] | None = None, seed: int = 11) -> tuple[Any, Any]:
    """(settings, store) of a fresh home with `name`'s history imported and its memory built
    (`demo`: the demo's; otherwise one with `facts` planted, default the second history's)."""
    from demo.run import DemoOptions, demo_settings
    from ingest.dce import ingest_dce
    from ingest.discord_package import ingest_discord_package
    from persona import memory
    from persona.config import Settings
    from persona.memory.embeddings import Embedder, resolve_embed_model
    from persona.storage.store import open_store

    home = root / name
    settings = demo_settings(Settings.model_construct().model_copy(update={"home": home}), DemoOptions())
    store = open_store(settings)
    history = sample.generate(7) if name == "demo" else sample.generate(seed, facts=facts or SECOND_FACTS)
    package, dce = sample.write(home / "sample", history)
    ingest_discord_package(store, package, owner_id=sample.OWNER.id)
    ingest_dce(store, [dce], owner_id=sample.OWNER.id)
    with store.connect() as conn:
        memory.build(conn, Embedder(resolve_embed_model("")))
    return settings, store


def answer_all(engine: Any, questions: list[str], *, recall: bool, grounding: Any = None, say_unknown: bool = False,
               consistency: str = "off") -> list[Any]:
    """The engine's replies to `questions`, asked by the owner in the terminal."""
    from persona.privacy.scopes import Place
    from persona.runtime.grounding import GroundingSettings
    from persona.runtime.reply import ReplyRequest

    k, configured, unknown, policy = engine.k, engine.grounding, engine.say_unknown, engine.consistency
    engine.k = k if recall else 0
    engine.grounding = grounding or GroundingSettings()
    engine.say_unknown, engine.consistency = say_unknown, consistency
    try:
        return [engine.reply(ReplyRequest(text=q, asker_id=sample.OWNER.id, asker_name="you", place=Place.terminal())) for q in questions]
    finally:
        engine.k, engine.grounding, engine.say_unknown, engine.consistency = k, configured, unknown, policy


def heldout_loss_with_memories(store: Any, engine: Any, heldout: Path, frames: tuple[int, ...], max_len: int) -> dict[str, float | None]:
    """Loss per owner token on the held-out examples that recall finds memories for, with the memories in each frame."""
    from trainer.dataset import read_examples
    from trainer.evaluate import heldout_loss
    from trainer.recalled import add_recalled_memories

    losses: dict[str, float | None] = {}
    for frame in frames:
        examples = read_examples(heldout)
        with store.connect() as conn:
            add_recalled_memories(conn, engine.embedder, examples, fraction=1.0, max_seq_len=max_len, frame=frame)
        given = [e for e in examples if "recalled" in e.tags]
        loss = heldout_loss(engine.generator.model, engine.generator.tokenizer, given, max_len)
        losses[f"frame{frame}"] = round(loss, 4) if loss is not None else None
        losses["examples"] = len(given)
    return losses


def measure(name: str, root: Path, steps: int, drills: float, grounding: Any, frames: tuple[int, ...] = (2,),
            adapter: Path | None = None) -> dict[str, Any]:
    from persona import adapters, memory
    from persona.memory.embeddings import Embedder, resolve_embed_model
    from persona.privacy.scopes import Place
    from persona.runtime.engines.base import GenerationSettings
    from persona.runtime.engines.transformers_engine import TransformersGenerator
    from persona.runtime.model import resolve_base_model
    from persona.runtime.reply import ReplyEngine
    from trainer import pipeline

    settings, store = history_home(name, root)
    trained: dict[str, tuple[int, str, float, float]] = {}
    heldout_file: Path | None = None
    if adapter is not None:  # an adapter trained before (e.g. the demo's, frame 1 or 2): served as it is, nothing trained
        trained["given"] = (1, str(adapter), float("nan"), 0.0)
        heldout_file = adapter.parent / "data" / "heldout.jsonl"
    for label, fraction in () if adapter is not None else (("plain", 0.0), *((("drills", drills),) if drills > 0 else ())):
        run_settings = settings.model_copy(update={"train_memory_fraction": 0.0, "train_drill_fraction": fraction})
        started = time.perf_counter()
        outcome = pipeline.run(store, run_settings, incremental=False, trigger="cli", eval_samples=0, max_steps=steps, quiet=True)
        with store.connect() as conn:
            path = adapters.get(conn, outcome.version).path
        heldout_file = Path(path).parent / "data" / "heldout.jsonl"
        trained[label] = (outcome.version, path, outcome.metrics["heldout_loss"]["candidate"], time.perf_counter() - started)

    generator = TransformersGenerator(resolve_base_model(""), GenerationSettings.from_settings(settings, max_new_tokens=32, greedy=True))
    engine = ReplyEngine(store, Embedder(resolve_embed_model("")), generator, owner_id=sample.OWNER.id, owner_name=sample.OWNER.display)
    questions = QUESTIONS[name]
    figures: dict[str, Any] = {name: {} for name in ("fact_used", "fact_used_grounded", "fact_used_without_recall", "unanswerable_hedged",
                                                     "unanswerable_hedged_grounded", "unanswerable_with_evidence", "answers_grounded",
                                                     "unanswerable_grounded", "evidence_ms_p50", "unanswerable_said_unknown",
                                                     "answerable_said_unknown", "unanswerable_with_say_unknown")}
    asked = [q for q, _ in questions]

    def used(replies: list[Any]) -> int:
        return sum(word in r.text.lower() for r, (_, word) in zip(replies, questions))

    served = [(f"{label}@frame{frame}" if len(frames) > 1 else label, adapter, frame)
              for frame in frames for label, adapter in (("base", None), *trained.items())]
    loss_with_memories: dict[str, Any] = {}
    for label, adapter in (("base", None), *trained.items()):
        generator.use_adapter(adapter[0] if adapter else None, adapter[1] if adapter else None)
        if heldout_file is not None and len(frames) > 1:
            loss_with_memories[label] = heldout_loss_with_memories(store, engine, heldout_file, frames, settings.max_seq_len)
    for label, adapter, frame in served:
        generator.use_adapter(adapter[0] if adapter else None, adapter[1] if adapter else None)
        engine.frame_version = frame  # where the prompt quotes the memories (persona/prompts.py)
        grounded = answer_all(engine, asked, recall=True, grounding=grounding)
        unknown = answer_all(engine, UNANSWERABLE, recall=True)
        unknown_grounded = answer_all(engine, UNANSWERABLE, recall=True, grounding=grounding)
        figures["fact_used"][label] = used(answer_all(engine, asked, recall=True))
        figures["fact_used_grounded"][label] = used(grounded)
        figures["fact_used_without_recall"][label] = used(answer_all(engine, asked, recall=False))
        figures["unanswerable_hedged"][label] = sum(bool(HEDGE.search(r.text)) for r in unknown)
        figures["unanswerable_hedged_grounded"][label] = sum(bool(HEDGE.search(r.text)) for r in unknown_grounded)
        figures["unanswerable_with_evidence"][label] = sum(bool(r.evidence) for r in unknown_grounded)
        figures["answers_grounded"][label] = [r.text for r in grounded]
        figures["unanswerable_grounded"][label] = [r.text for r in unknown_grounded]
        figures["evidence_ms_p50"][label] = round(statistics.median(r.timings_ms.get("evidence", 0.0) for r in grounded + unknown_grounded), 1)
        # PERSONA_SAY_UNKNOWN (the default): "not sure" when nothing in memory answers a question about the owner.
        honest_unknown = answer_all(engine, UNANSWERABLE, recall=True, grounding=grounding, say_unknown=True)
        honest_known = answer_all(engine, asked, recall=True, grounding=grounding, say_unknown=True)
        figures["unanswerable_said_unknown"][label] = sum(r.said_unknown for r in honest_unknown)
        figures["answerable_said_unknown"][label] = sum(r.said_unknown for r in honest_known)
        figures["unanswerable_with_say_unknown"][label] = [r.text for r in honest_unknown]
    with store.connect() as conn:
        recalled = sum(any(word in m.content.lower() for m in memory.recall(conn, engine.embedder, question, asker_id=sample.OWNER.id,
                                                                             place=Place.terminal(), owner_id=sample.OWNER.id, k=engine.k))
                       for question, word in questions)
    return {"questions": len(questions), "unanswerable": len(UNANSWERABLE), "fact_in_recalled_memories": recalled, **figures,
            "heldout_loss": {k: round(v[2], 4) if v[2] == v[2] else None for k, v in trained.items()},  # NaN: not trained here
            "heldout_loss_with_memories": loss_with_memories, "train_seconds": {k: round(v[3], 1) for k, v in trained.items()}}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--drills", type=float, default=0.0, help="PERSONA_TRAIN_DRILL_FRACTION of a drills variant (0: none)")
    parser.add_argument("--histories", default="demo,second")
    parser.add_argument("--boost", type=float, default=None, help="PERSONA_GROUNDING_BOOST (default: the settings' default)")
    parser.add_argument("--copy-weight", type=float, default=None, help="PERSONA_GROUNDING_COPY_WEIGHT")
    parser.add_argument("--threshold", type=float, default=None, help="PERSONA_GROUNDING_THRESHOLD")
    parser.add_argument("--adapter", type=Path, default=None, help="serve this adapter folder (trained before on the same history, "
                        "e.g. the demo's adapters/v1/adapter) instead of training one: one history only")
    parser.add_argument("--frames", default="2", help="comma-separated prompt frames to serve every adapter in (1: memories in the "
                        "system prompt, as before 0017; 2: after the newest message): what the frame costs or buys")
    args = parser.parse_args()
    frames = tuple(int(f) for f in args.frames.split(","))
    from persona.config import Settings
    from persona.runtime.grounding import GroundingSettings

    chosen = {"grounding_boost": args.boost, "grounding_copy_weight": args.copy_weight, "grounding_threshold": args.threshold}
    grounding = GroundingSettings.from_settings(Settings.model_construct(**{k: v for k, v in chosen.items() if v is not None}))
    root = Path(tempfile.mkdtemp(prefix="persona-bench-memory-use-"))
    results = {name: measure(name, root, args.steps, args.drills, grounding, frames, args.adapter) for name in args.histories.split(",")}
    print(json.dumps({"bench": "memory_use", "steps": args.steps, "drills": args.drills, "frames": frames, "grounding": asdict(grounding),
                      "histories": results},
                     ensure_ascii=False))


if __name__ == "__main__":
    main()

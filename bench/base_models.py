"""Base models side by side: base vs adapter for each, on the demo's history, one JSON line.

Each model trains the same number of steps with the demo's settings (batch 4, up to 256
tokens, learning rate 1e-3) through the real pipeline (`trainer.pipeline.run`: its own
training process, evaluation, promotion gate), and the figures come from the
evaluation it writes:

- held-out loss, base model and adapter;
- owner-likeness (0 = as owner-like as other people's messages, 1 = as the owner's own
  held-out messages) and the real-vs-generated discriminator's accuracy (0.5 = the
  replies cannot be told from the owner's), base and adapter (trainer/likeness.py);
- fact use: the evaluation's fact probes (questions the owner answered, asked again with
  recall and grounding), replies stating the fact, base and adapter;
- training tokens/s, and the peak resident memory of the training process (training and
  evaluation both run in it).

Each model runs in a child process of its own, so the peak memory is that model's.
The baseline of each row is its base model in the same run.

    python bench/base_models.py                          # smollm2 and gemma-3-270m, 30 steps
    python bench/base_models.py --models smollm2 --steps 10
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))


def measure(model: str, root: Path, steps: int, samples: int, probes: int) -> dict[str, Any]:
    """Train and evaluate `model` on a fresh copy of the demo's history (in this process)."""
    from memory_use import history_home

    from persona import adapters
    from trainer import pipeline

    settings, store = history_home("demo", root)
    settings = settings.model_copy(update={"base_model": model, "eval_fact_probes": probes})
    started = time.perf_counter()
    outcome = pipeline.run(store, settings, incremental=False, trigger="cli", eval_samples=samples, max_steps=steps, quiet=True)
    seconds = time.perf_counter() - started
    with store.connect() as conn:
        folder = Path(adapters.get(conn, outcome.version).path).parent
    result = json.loads((folder / "result.json").read_text())
    metrics, train = result["metrics"], result["train"]
    likeness = metrics.get("owner_likeness") or {}
    facts = metrics.get("fact_use") or {}

    def pair(table: dict[str, Any], adapter_key: str = "adapter") -> dict[str, Any]:
        return {"base": _round(table.get("base")), "adapter": _round(table.get(adapter_key))}

    return {
        "steps": train["steps"], "heldout_examples": metrics.get("heldout_examples"),
        "heldout_loss": pair(metrics["heldout_loss"], "candidate"),
        "owner_likeness": pair(likeness),
        "real_vs_generated_accuracy": pair(metrics.get("real_vs_generated_accuracy") or {}),
        "generated_samples": len(metrics.get("samples", [])),
        "fact_use": {"probes": facts.get("probes", 0), "in_recalled_memories": facts.get("in_recalled_memories", 0),
                     "with_evidence": facts.get("with_evidence", 0), "base": facts.get("base"), "adapter": facts.get("adapter")},
        "train_tokens_per_s": train.get("tokens_per_s"), "train_seconds": round(train["seconds"], 1),
        # ru_maxrss of the children: the largest finished child, here the training process.
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024),
        "pipeline_seconds": round(seconds, 1),
        "adapter_samples": [s.get("adapter") for s in metrics.get("samples", [])[:3]],
    }


def _round(value: Any) -> Any:
    return round(value, 4) if isinstance(value, float) else value


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", default="smollm2,gemma-3-270m", help="PERSONA_BASE_MODEL values ('smollm2': the bundled default)")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--samples", type=int, default=32, help="held-out contexts to generate replies for (at most the split's)")
    parser.add_argument("--probes", type=int, default=10, help="PERSONA_EVAL_FACT_PROBES")
    parser.add_argument("--only", help=argparse.SUPPRESS)  # one model, in this process (how the parent runs each)
    parser.add_argument("--root", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.only is not None:
        model = "" if args.only == "smollm2" else args.only
        print(json.dumps(measure(model, Path(args.root), args.steps, args.samples, args.probes), ensure_ascii=False))
        return
    root = Path(tempfile.mkdtemp(prefix="persona-bench-base-models-"))
    results: dict[str, Any] = {}
    for model in args.models.split(","):
        command = [sys.executable, __file__, "--only", model, "--root", str(root / model.replace("/", "_")), "--steps", str(args.steps),
                   "--samples", str(args.samples), "--probes", str(args.probes)]
        done = subprocess.run(command, capture_output=True, text=True)
        lines = done.stdout.strip().splitlines()
        if done.returncode != 0 or not lines:
            results[model] = {"error": (done.stderr.strip().splitlines() or ["no output"])[-1]}
            continue
        results[model] = json.loads(lines[-1])
    print(json.dumps({"bench": "base_models", "steps": args.steps, "samples": args.samples, "models": results}, ensure_ascii=False))


if __name__ == "__main__":
    main()

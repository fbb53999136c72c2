"""Benchmark: LoRA training throughput and memory (CPU), one JSON line.

The same synthetic Discord-like conversations (1 to 12 turns, 2 to 40 words a
message: short messages make padding the main waste) are trained on in several ways,
each run in its own process so peak memory is its own:

- `chunked`: persona's default — length-grouped batches (`trainer.encoding`), the
  loss from hidden states a chunk at a time (`trainer.loss`), freed memory returned
  to the OS (`trainer.allocator`);
- `full_loss`: the same batches with the model's own loss (full fp32 logits) and
  glibc's default allocator settings: the previous version;
- `chunked_glibc_default`: the chunked loss without `trainer.allocator` (what each of
  the two changes is worth);
- `packed`: padding-free rows (transformers' DataCollatorWithFlattening, positions
  restarting per example) with the chunked loss;
- `plain`: padded batches in random order with the chunked loss.

Figures per run: real (non-padding) tokens per second, the share of real tokens in
the batches, and peak resident memory. Models: the bundled SmolLM2-135M and, when its
package is installed, Gemma 3 270M (`--models smollm2,gemma-3-270m`).

    python bench/train.py                 # 8 steps of SmolLM2, 3 of Gemma, batch 8 × up to 512 tokens
    python bench/train.py --steps 30 --models smollm2
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from _common import wait_with_peak_rss  # noqa: E402

WORDS = ["lol", "yeah", "ok", "sure", "maybe", "tomorrow", "game", "rust", "python", "coffee", "work", "sleep", "pizza", "bug", "fix", "deploy", "weekend",
         "movie", "honestly", "kinda", "fr", "lowkey"]


def conversations(n: int, seed: int = 5) -> list[list[dict[str, str]]]:
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        chat = [{"role": "system", "content": "You are Alex, chatting on Discord."}]
        for _turn in range(rng.randint(1, 6)):
            chat.append({"role": "user", "content": "sam: " + " ".join(rng.choices(WORDS, k=rng.randint(2, 40)))})
            chat.append({"role": "assistant", "content": " ".join(rng.choices(WORDS, k=rng.randint(2, 40)))})
        rows.append(chat)
    return rows


VARIANTS = {  # name: (grouping, chunked loss, freed memory returned to the OS: trainer/allocator.py)
    "chunked": ("length", True, True),
    "full_loss": ("length", False, False),
    "chunked_glibc_default": ("length", True, False),
    "packed": ("packed", True, True),
    "plain": ("none", True, True),
}


def worker(model: str, variant: str, steps: int, batch: int, out: Path) -> None:
    from persona.runtime.model import resolve_base_model
    from trainer.sft import TrainOptions, train

    grouping, chunked, trim = VARIANTS[variant]
    if trim:
        from trainer.allocator import return_freed_memory

        return_freed_memory()
    rows = conversations(steps * batch * 2)
    options = TrainOptions(max_steps=steps, batch_size=batch, grouping=grouping, chunked_loss=chunked, eval_steps=10_000, patience=0,
                           max_seq_len=512)
    result = train(resolve_base_model("" if model == "smollm2" else model), rows, [], out / f"{model}-{variant}", options)
    (out / f"{model}-{variant}.json").write_text(json.dumps({"tokens_per_s": result.tokens_per_s, "real_token_fraction": result.real_token_fraction,
                                                             "seconds": result.seconds, "steps": result.steps}))


def run_child(model: str, variant: str, steps: int, batch: int, out: Path) -> dict[str, float]:
    with tempfile.TemporaryFile("w+") as errors:
        child = subprocess.Popen([sys.executable, __file__, "--worker", variant, "--models", model, "--steps", str(steps), "--batch", str(batch),
                                  "--out", str(out)], stdout=subprocess.DEVNULL, stderr=errors, text=True)
        peak_mb = wait_with_peak_rss(child)
        errors.seek(0)
        tail = errors.read()[-2000:]
    if child.returncode != 0:
        raise SystemExit(f"{model} {variant} run failed: {tail}")
    figures = json.loads((out / f"{model}-{variant}.json").read_text())
    return figures | {"peak_rss_mb": round(peak_mb, 1)}


def available(model: str) -> bool:
    if model == "smollm2":
        return True
    from persona.errors import ConfigError
    from persona.runtime.model import resolve_base_model

    try:
        resolve_base_model(model)
    except ConfigError as exc:
        print(f"skipping {model}: {exc}", file=sys.stderr)
        return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--gemma-steps", type=int, default=3, help="Gemma 3 270M trains ~3x slower: fewer steps")
    parser.add_argument("--gemma-variants", default="chunked,full_loss")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--models", default="smollm2,gemma-3-270m")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--worker")
    parser.add_argument("--out")
    args = parser.parse_args()
    if args.worker:
        worker(args.models, args.worker, args.steps, args.batch, Path(args.out))
        return
    figures: dict[str, dict[str, dict[str, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="persona-bench-train-") as tmp:
        for model in [m for m in args.models.split(",") if available(m)]:
            gemma = model.startswith("gemma")
            steps = args.gemma_steps if gemma else args.steps
            variants = (args.gemma_variants if gemma else args.variants).split(",")
            runs = {variant: run_child(model, variant, steps, args.batch, Path(tmp)) | {"steps": steps} for variant in variants}
            base = runs.get("full_loss")
            for variant, run in runs.items():
                if base and variant != "full_loss":
                    run["speed_vs_full_loss"] = round(run["tokens_per_s"] / base["tokens_per_s"], 2) if base["tokens_per_s"] else None
                    run["rss_vs_full_loss"] = round(run["peak_rss_mb"] / base["peak_rss_mb"], 2)
            figures[model] = runs
    print(json.dumps({
        "bench": "train", "machine": f"{platform.machine()} {os.cpu_count()} cores", "lora": "r16 all-linear, fp32",
        "batch": args.batch, "max_seq_len": 512, "runs": figures,
    }))


if __name__ == "__main__":
    main()

"""Benchmark: LoRA training throughput on the bundled SmolLM2-135M (CPU), one JSON line.

The same synthetic Discord-like conversations (1 to 12 turns, 2 to 40 words a
message: short messages make padding the main waste) are trained on twice, each run
in its own process so peak memory is its own:

- length-grouped batches (persona's default: `trainer.encoding.length_grouped_order`)
- plain padded batches in random order (the baseline)

Figures: real (non-padding) tokens per second, the share of real tokens in the
batches, and peak resident memory of each process.

    python bench/train.py                 # 10 steps, batch 8
    python bench/train.py --steps 30
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

WORDS = "lol yeah ok sure maybe tomorrow game rust python coffee work sleep pizza bug fix deploy weekend movie honestly kinda fr lowkey".split()


def conversations(n: int, seed: int = 5) -> list[list[dict[str, str]]]:
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        chat = [{"role": "system", "content": "You are Alex, chatting on Discord."}]
        for turn in range(rng.randint(1, 6)):
            chat.append({"role": "user", "content": "sam: " + " ".join(rng.choices(WORDS, k=rng.randint(2, 40)))})
            chat.append({"role": "assistant", "content": " ".join(rng.choices(WORDS, k=rng.randint(2, 40)))})
        rows.append(chat)
    return rows


def worker(grouping: str, steps: int, batch: int, out: Path) -> None:
    from persona.runtime.model import resolve_base_model
    from trainer.sft import TrainOptions, train

    rows = conversations(steps * batch * 2)
    options = TrainOptions(max_steps=steps, batch_size=batch, grouping=grouping, eval_steps=10_000, patience=0, max_seq_len=512)
    result = train(resolve_base_model(""), rows, [], out / grouping, options)
    (out / f"{grouping}.json").write_text(json.dumps({"tokens_per_s": result.tokens_per_s, "real_token_fraction": result.real_token_fraction,
                                                      "seconds": result.seconds, "steps": result.steps}))


def run_child(grouping: str, steps: int, batch: int, out: Path) -> dict[str, float]:
    with tempfile.TemporaryFile("w+") as errors:
        child = subprocess.Popen([sys.executable, __file__, "--worker", grouping, "--steps", str(steps), "--batch", str(batch), "--out", str(out)],
                                 stdout=subprocess.DEVNULL, stderr=errors, text=True)
        peak_mb = wait_with_peak_rss(child)
        errors.seek(0)
        tail = errors.read()[-2000:]
    if child.returncode != 0:
        raise SystemExit(f"{grouping} run failed: {tail}")
    figures = json.loads((out / f"{grouping}.json").read_text())
    return figures | {"peak_rss_mb": round(peak_mb, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--worker")
    parser.add_argument("--out")
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.steps, args.batch, Path(args.out))
        return
    with tempfile.TemporaryDirectory(prefix="persona-bench-train-") as tmp:
        grouped = run_child("length", args.steps, args.batch, Path(tmp))
        plain = run_child("none", args.steps, args.batch, Path(tmp))
    print(json.dumps({
        "bench": "train", "machine": f"{platform.machine()} {os.cpu_count()} cores", "model": "SmolLM2-135M-Instruct (bundled, fp32, LoRA r16 all-linear)",
        "steps": args.steps, "batch": args.batch,
        "grouped_tokens_per_s": grouped["tokens_per_s"], "grouped_real_token_fraction": grouped["real_token_fraction"],
        "grouped_peak_rss_mb": grouped["peak_rss_mb"],
        "plain_tokens_per_s": plain["tokens_per_s"], "plain_real_token_fraction": plain["real_token_fraction"],
        "plain_peak_rss_mb": plain["peak_rss_mb"],
        "speedup": round(grouped["tokens_per_s"] / plain["tokens_per_s"], 2) if plain["tokens_per_s"] else None,
    }))


if __name__ == "__main__":
    main()

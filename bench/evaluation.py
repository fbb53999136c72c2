"""The evaluation's reply sampling: 50 held-out contexts generated in batches
(trainer/evaluate.sample_replies) vs one at a time (the previous version), with the
bundled SmolLM2-135M on CPU and the bot's sampling settings. Also the time of the
measures themselves (likeness, discriminator, range, relevance) on those replies.
One JSON line.

    python bench/evaluation.py [--contexts 50] [--tokens 40] [--batch 16]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

LINES = ["did you finish the overhang?", "what are you up to tonight", "how was the bakery shift", "lol did you see that",
         "are you coming to the gym tomorrow", "ok but which crag is better", "what did you think of the movie",
         "my starter died again", "omg the weather", "who's bringing snacks"]


def contexts(n: int, seed: int = 5) -> list[list[dict[str, str]]]:
    """Reply prompts as the evaluation builds them: a system line, a few lines of chat, the owner's turn to answer."""
    rng = random.Random(seed)
    made = []
    for i in range(n):
        chat = "\n".join(f"{rng.choice(['kim', 'sam', 'priya'])}: {rng.choice(LINES)}" for _ in range(rng.randint(1, 6)))
        made.append([{"role": "system", "content": "You are Alex. Reply as Alex would, in Alex's voice."},
                     {"role": "user", "content": f"[#general · 2026-12-0{i % 9 + 1}]\n{chat}"}])
    return made


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contexts", type=int, default=50)
    parser.add_argument("--tokens", type=int, default=40)
    parser.add_argument("--batch", type=int, default=16)
    args = parser.parse_args()

    import torch

    from persona.memory.embeddings import Embedder, resolve_embed_model
    from persona.runtime.engines.base import GenerationSettings
    from persona.runtime.engines.transformers_engine import generate
    from persona.runtime.model import load_base_model, load_tokenizer, resolve_base_model
    from trainer.evaluate import sample_replies
    from trainer.likeness import attribution_ceiling, discriminate
    from trainer.voice_range import range_and_relevance

    torch.set_num_threads(os.cpu_count() or 1)
    spec = resolve_base_model("")
    tokenizer, model = load_tokenizer(spec), load_base_model(spec).eval()
    generation = GenerationSettings(max_new_tokens=args.tokens, temperature=0.8, top_p=0.9, repetition_penalty=1.1)
    prompts = contexts(args.contexts)

    started = time.perf_counter()
    one_by_one = []
    for context in prompts:
        torch.manual_seed(13)
        one_by_one.append(generate(model, tokenizer, context, generation).text)
    sequential_s = time.perf_counter() - started

    started = time.perf_counter()
    batched = sample_replies(model, tokenizer, prompts, generation, batch_size=args.batch)
    batched_s = time.perf_counter() - started

    embedder = Embedder(resolve_embed_model(""))
    rng = random.Random(3)
    owner = [rng.choice(["ya ya", "love that", "lol same", "omg yes", "no way", "fr fr"]) + rng.choice(["", " 🥲", "!!"]) for _ in range(400)]
    others = [rng.choice(LINES) for _ in range(400)]
    started = time.perf_counter()
    discriminate(one_by_one, batched)
    attribution_ceiling(owner[:300], others[:300], owner[300:], others[300:])
    range_and_relevance(embedder, owner[:300], owner[300:], one_by_one, {"base": batched, "adapter": one_by_one})
    measures_s = time.perf_counter() - started

    print(json.dumps({
        "bench": "evaluation", "model": spec.name, "contexts": args.contexts, "max_new_tokens": args.tokens, "batch": args.batch,
        "one_at_a_time_s": round(sequential_s, 2), "batched_s": round(batched_s, 2),
        "batched_speedup": round(sequential_s / batched_s, 2) if batched_s else None,
        "mean_words": {"one_at_a_time": round(sum(len(t.split()) for t in one_by_one) / len(one_by_one), 1),
                       "batched": round(sum(len(t.split()) for t in batched) / len(batched), 1)},
        "empty_replies": {"one_at_a_time": sum(not t for t in one_by_one), "batched": sum(not t for t in batched)},
        "measures_s": round(measures_s, 2), "cpus": os.cpu_count(),
    }))


if __name__ == "__main__":
    main()

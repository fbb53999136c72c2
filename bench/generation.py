"""Local generation on a CPU: PERSONA_LOCAL_PRECISION fp32 (the baseline) vs bf16 vs int8.

The bundled SmolLM2-135M through persona's `Generator`, a reply prompt with five
memories (as the bot builds them), greedy, `--tokens` new tokens; per precision the
prompt time (one new token), the decode rate, the reply time, the ratio to fp32 in the
same run, and whether the greedy reply is word for word fp32's. One JSON line.

    python bench/generation.py [--tokens 40] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

MEMORIES = [f"<memory>\n2024-03-0{i} · #general\nkim: question {i} about climbing and bread?\n"
            f"Alex: my answer {i} is about the overhang and gerald the starter, it was a long day at the shop fr\n</memory>" for i in range(1, 6)]
MESSAGES = [{"role": "system", "content": "You are Alex. Reply as Alex would, in Alex's voice.\n" + "\n".join(MEMORIES)},
            {"role": "user", "content": "[#general · 2026-12-02]\nkim: hey, what are you up to tonight?"}]


def measure(precision: str, tokens: int, repeats: int) -> dict[str, object]:
    from persona.runtime.generation import GenerationSettings, Generator
    from persona.runtime.model import resolve_base_model

    started = time.perf_counter()
    generator = Generator(resolve_base_model(""), GenerationSettings(max_new_tokens=tokens, temperature=0.8, top_p=0.9,
                                                                       repetition_penalty=1.1, greedy=True), precision=precision)
    load_s = time.perf_counter() - started
    generator.generate(MESSAGES, max_new_tokens=2)  # warm-up
    prompt = []
    for _ in range(repeats):
        mark = time.perf_counter()
        generator.generate(MESSAGES, max_new_tokens=1)
        prompt.append(time.perf_counter() - mark)
    replies = []
    for _ in range(repeats):
        mark = time.perf_counter()
        reply = generator.generate(MESSAGES)
        replies.append(time.perf_counter() - mark)
    prompt_s, reply_s = statistics.median(prompt), statistics.median(replies)
    return {"load_s": round(load_s, 2), "prompt_s": round(prompt_s, 3), "reply_s": round(reply_s, 3), "new_tokens": reply.new_tokens,
            "decode_tokens_per_s": round((reply.new_tokens - 1) / max(1e-6, reply_s - prompt_s), 1),
            "tokens_per_s": round(reply.new_tokens / reply_s, 1), "text": reply.text}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    import torch

    from persona.runtime.generation import PRECISIONS
    from persona.runtime.model import count_chat_tokens, load_tokenizer, resolve_base_model

    rows = {precision: measure(precision, args.tokens, args.repeats) for precision in PRECISIONS}
    baseline = rows["fp32"]
    for precision, row in rows.items():
        row["decode_vs_fp32"] = round(float(row["decode_tokens_per_s"]) / float(baseline["decode_tokens_per_s"]), 2)
        row["prompt_vs_fp32"] = round(float(baseline["prompt_s"]) / float(row["prompt_s"]), 2)
        row["same_reply_as_fp32"] = row["text"] == baseline["text"]
    prompt_tokens = count_chat_tokens(load_tokenizer(resolve_base_model("")), MESSAGES)
    print(json.dumps({"bench": "generation", "machine": f"{platform.machine()} {os.cpu_count()} cores", "threads": torch.get_num_threads(),
                      "model": "SmolLM2-135M-Instruct", "prompt_tokens": prompt_tokens, "max_new_tokens": args.tokens, "precisions": rows},
                     ensure_ascii=False))


if __name__ == "__main__":
    main()

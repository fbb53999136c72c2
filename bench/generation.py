"""Local generation on a CPU: transformers fp32 (the baseline) vs bf16 vs int8
(PERSONA_LOCAL_PRECISION) vs llama.cpp (PERSONA_ENGINE=llama.cpp, when installed).

The bundled SmolLM2-135M through persona's generators, a reply prompt with five
memories (as the bot builds them), greedy, `--tokens` new tokens; per engine the prompt
time (one new token; llama.cpp's is without its prompt cache, and `cached_prompt_s` is
another question after the same system prompt), the decode rate, the reply time, the
ratio to fp32 in the same run, whether the greedy reply is word for word fp32's and how
many of its first words are. One JSON line.

    python bench/generation.py [--tokens 40] [--repeats 3] [--model gemma-3-270m] [--engines fp32,llama.cpp]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

MEMORIES = [f"<memory>\n2024-03-0{i} · #general\nkim: question {i} about climbing and bread?\n"
            f"Alex: my answer {i} is about the overhang and gerald the starter, it was a long day at the shop fr\n</memory>" for i in range(1, 6)]
MESSAGES = [{"role": "system", "content": "You are Alex. Reply as Alex would, in Alex's voice.\n" + "\n".join(MEMORIES)},
            {"role": "user", "content": "[#general · 2026-12-02]\nkim: hey, what are you up to tonight?"}]


OTHER_QUESTION = [MESSAGES[0], {"role": "user", "content": "[#general · 2026-12-02]\nsam: did you finish the overhang?"}]


MODEL = ""  # PERSONA_BASE_MODEL for this run (--model); empty: the bundled SmolLM2


def requantised(folder: Path, kind: str) -> Path:
    """The base GGUF re-quantised by llama.cpp's own quantiser (f32: de-quantised, the very
    weights transformers computes with)."""
    import ctypes

    import llama_cpp

    from persona.runtime.model import resolve_base_model

    spec = resolve_base_model(MODEL)
    target = folder / f"smollm2-{kind}.gguf"
    params = llama_cpp.llama_model_quantize_default_params()
    ftype = {"q8_0": llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0, "f16": llama_cpp.LLAMA_FTYPE_MOSTLY_F16, "f32": llama_cpp.LLAMA_FTYPE_ALL_F32}[kind]
    params.ftype, params.allow_requantize = ftype, True
    if llama_cpp.llama_model_quantize(str(Path(spec.path) / str(spec.gguf_file)).encode(), str(target).encode(), ctypes.byref(params)):
        raise SystemExit(f"llama.cpp could not quantise the bundled model to {kind}")
    return target


def measure(engine: str, tokens: int, repeats: int, model_file: str = "") -> dict[str, object]:
    from persona.runtime.engines.base import GenerationSettings
    from persona.runtime.engines.transformers_engine import TransformersGenerator
    from persona.runtime.model import resolve_base_model

    started = time.perf_counter()
    settings = GenerationSettings(max_new_tokens=tokens, temperature=0.8, top_p=0.9, repetition_penalty=1.1, greedy=True)
    if engine.startswith("llama.cpp"):
        from persona.runtime.engines.llamacpp import LlamaCppGenerator

        generator = LlamaCppGenerator(resolve_base_model(MODEL), settings, model_file=model_file)
    else:
        generator = TransformersGenerator(resolve_base_model(MODEL), settings, precision=engine)
    load_s = time.perf_counter() - started
    generator.generate(MESSAGES, max_new_tokens=2)  # warm-up
    prompt, cached = [], []
    for _ in range(repeats):
        forget_prompt(generator)
        mark = time.perf_counter()
        generator.generate(MESSAGES, max_new_tokens=1)
        prompt.append(time.perf_counter() - mark)
        mark = time.perf_counter()
        generator.generate(OTHER_QUESTION, max_new_tokens=1)  # llama.cpp: the system prompt is still in its cache
        cached.append(time.perf_counter() - mark)
    replies = []
    for _ in range(repeats):
        forget_prompt(generator)
        mark = time.perf_counter()
        reply = generator.generate(MESSAGES)
        replies.append(time.perf_counter() - mark)
    prompt_s, reply_s = statistics.median(prompt), statistics.median(replies)  # the reply with its whole prompt, uncached
    return {"load_s": round(load_s, 2), "prompt_s": round(prompt_s, 3), "cached_prompt_s": round(statistics.median(cached), 3),
            "reply_s": round(reply_s, 3), "new_tokens": reply.new_tokens,
            "decode_tokens_per_s": round((reply.new_tokens - 1) / max(1e-6, reply_s - prompt_s), 1),
            "tokens_per_s": round(reply.new_tokens / reply_s, 1), "text": reply.text}


def forget_prompt(generator: object) -> None:
    """llama.cpp keeps the last prompt in its KV cache; a reply's memories change its
    prompt after the system prompt, so replies are measured without it."""
    llm = getattr(generator, "llm", None)
    if llm is not None:
        llm.reset()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--model", default="", help="PERSONA_BASE_MODEL, a GGUF one for llama.cpp (default: the bundled SmolLM2)")
    parser.add_argument("--engines", default="fp32,bf16,int8,llama.cpp,llama.cpp q8_0,llama.cpp f32")
    args = parser.parse_args()
    global MODEL
    MODEL = args.model
    wanted = [e.strip() for e in args.engines.split(",")]
    import torch

    from persona.runtime.engines.llamacpp import available
    from persona.runtime.engines.transformers_engine import PRECISIONS
    from persona.runtime.model import count_chat_tokens, load_tokenizer, resolve_base_model

    rows = {engine: measure(engine, args.tokens, args.repeats) for engine in PRECISIONS if engine in wanted or engine == "fp32"}
    if available() is None and "llama.cpp" in wanted:
        rows["llama.cpp"] = measure("llama.cpp", args.tokens, args.repeats)  # the base model's GGUF as shipped
    for kind in ("q8_0", "f32"):
        if available() is None and f"llama.cpp {kind}" in wanted:
            with tempfile.TemporaryDirectory(prefix="persona-bench-gguf-") as folder:
                rows[f"llama.cpp {kind}"] = measure(f"llama.cpp {kind}", args.tokens, args.repeats, str(requantised(Path(folder), kind)))
    baseline = rows["fp32"]
    for row in rows.values():
        row["decode_vs_fp32"] = round(float(row["decode_tokens_per_s"]) / float(baseline["decode_tokens_per_s"]), 2)
        row["prompt_vs_fp32"] = round(float(baseline["prompt_s"]) / float(row["prompt_s"]), 2)
        row["reply_vs_fp32"] = round(float(baseline["reply_s"]) / float(row["reply_s"]), 2)
        row["same_reply_as_fp32"] = row["text"] == baseline["text"]
        words, fp32_words = str(row["text"]).split(), str(baseline["text"]).split()
        row["same_first_words_as_fp32"] = next((i for i, (a, b) in enumerate(zip(words, fp32_words)) if a != b), min(len(words), len(fp32_words)))
    prompt_tokens = count_chat_tokens(load_tokenizer(resolve_base_model(MODEL)), MESSAGES)
    print(json.dumps({"bench": "generation", "machine": f"{platform.machine()} {os.cpu_count()} cores", "threads": torch.get_num_threads(),
                      "model": resolve_base_model(MODEL).name, "prompt_tokens": prompt_tokens, "max_new_tokens": args.tokens, "engines": rows,
                      "skipped": [] if "llama.cpp" in rows else [f"llama.cpp: {available()}"]},
                     ensure_ascii=False))


if __name__ == "__main__":
    main()

"""Local generation through llama.cpp (`llama-cpp-python`): PERSONA_ENGINE=llama.cpp.

The same replies as the transformers path, faster on a CPU: the prompt is rendered and
tokenised by the same Hugging Face tokenizer and handed to llama.cpp as token ids, and
the next token is chosen by transformers' own logits processors (repetition penalty,
temperature, top-k, top-p, then grounding's `EvidenceBias`) in the order `generate`
applies them, so sampling settings and grounding mean the same on both engines.
llama.cpp does what is slow: the forward pass over the GGUF weights (quantised weights
stay quantised), reusing the prompt prefix each place's previous reply left in the KV cache
(persona/runtime/prefix_cache.py: SequenceStates), and LoRA adapters converted to GGUF (`gguf_lora.py`),
switched without reloading the model.

What differs from transformers: llama.cpp multiplies quantised weights with quantised
activations (transformers de-quantises the GGUF to fp32), so the logits differ in the
last digits and a greedy reply can take another word where two are nearly tied;
`bench/generation.py` measures how often. With PERSONA_LLAMA_CPP_WEIGHTS=f32 the GGUF is
de-quantised once (the weights transformers uses) and greedy replies are transformers'.
"""

from __future__ import annotations

import ctypes
import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from persona.errors import ConfigError
from persona.files import whole_file
from persona.runtime import cancellation
from persona.runtime.engines.base import Generated, GenerationSettings, Messages, OnText, evidence_bias, prompt_ids, text_streamer
from persona.runtime.engines.gguf_lora import gguf_field
from persona.runtime.grounding import GroundingSettings
from persona.runtime.model import BaseModelSpec, count_chat_tokens, load_tokenizer
from persona.runtime.prefix_cache import SequenceStates

log = logging.getLogger(__name__)

MAX_CONTEXT = 8192  # the KV cache llama.cpp allocates up front: enough for a reply's prompt and answer
KEPT_ADAPTERS = 2  # the serving adapter and the one before it (a rollback is instant)


def available() -> str | None:
    """None when llama-cpp-python imports, else why not (for skips and errors)."""
    try:
        import llama_cpp  # noqa: F401
    except ImportError as exc:
        return f"llama-cpp-python is not installed ({exc}): run `make llama-cpp` (builds it from source, a few minutes)"
    return None


def base_gguf(spec: BaseModelSpec, configured: str = "") -> Path:
    """The GGUF file llama.cpp runs: PERSONA_LLAMA_CPP_MODEL, else the base model's own GGUF."""
    if configured:
        path = Path(configured).expanduser()
        if not path.is_file():
            raise ConfigError(f"PERSONA_LLAMA_CPP_MODEL: no file at {path}")
        return path
    if spec.gguf_file:
        return Path(spec.path) / spec.gguf_file
    raise ConfigError(f"PERSONA_ENGINE=llama.cpp needs the base model as GGUF: {spec.name!r} is not one. Convert it with "
                      "llama.cpp's convert_hf_to_gguf.py and set PERSONA_LLAMA_CPP_MODEL to the .gguf file")


def dequantised(model_file: Path, models_dir: Path) -> Path:
    """`model_file` with every weight de-quantised to f32 (llama.cpp's own quantiser), made
    once in `models_dir` under a temporary name first: what transformers computes with
    when it loads that GGUF, so llama.cpp's greedy replies become transformers' own."""
    import llama_cpp

    target = models_dir.expanduser() / f"{model_file.stem}.f32.gguf"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype, params.allow_requantize = llama_cpp.LLAMA_FTYPE_ALL_F32, True
    log.info("de-quantising %s to f32 into %s (once)", model_file.name, target.parent)
    logging.getLogger("llama-cpp-python").setLevel(logging.ERROR)  # llama.cpp reports each tensor it converts otherwise
    with whole_file(target) as partial:
        if llama_cpp.llama_model_quantize(str(model_file).encode(), str(partial).encode(), ctypes.byref(params)):
            raise ConfigError(f"PERSONA_LLAMA_CPP_WEIGHTS=f32: llama.cpp could not de-quantise {model_file}")
    return target


class LlamaCppGenerator:
    """The base model in llama.cpp with the active adapter; thread-safe (one generation at a time)."""

    def __init__(self, spec: BaseModelSpec, settings: GenerationSettings, *, model_file: str = "", weights: str = "as-is",
                 models_dir: Path | None = None, threads: int = 0, prefix_cache_mb: int = 0) -> None:
        reason = available()
        if reason:
            raise ConfigError(f"PERSONA_ENGINE=llama.cpp: {reason}")
        import llama_cpp

        self.spec = spec
        self.settings = settings
        self.tokenizer = load_tokenizer(spec)
        self.model_file = base_gguf(spec, model_file)
        if weights == "f32":
            self.model_file = dequantised(self.model_file, models_dir or self.model_file.parent)
        threads = threads or len(os.sched_getaffinity(0))
        self._window = min(MAX_CONTEXT, _trained_context(self.model_file))
        try:
            # Every layer on the GPU when llama.cpp was built with one (CMAKE_ARGS="-DGGML_CUDA=on" make llama-cpp); ignored on a CPU build.
            self.llm = llama_cpp.Llama(model_path=str(self.model_file), n_ctx=self._window, n_batch=512, n_threads=threads,
                                       n_threads_batch=threads, n_gpu_layers=-1, verbose=False)
        except (ValueError, RuntimeError) as exc:
            raise ConfigError(f"llama.cpp cannot load {self.model_file}: {exc}") from None
        if len(self.tokenizer) > self.llm.n_vocab():
            raise ConfigError(f"PERSONA_LLAMA_CPP_MODEL: {self.model_file.name} has {self.llm.n_vocab()} tokens, the base model's "
                              f"tokenizer {len(self.tokenizer)}: it is not the same model")
        self.top_k = _default_top_k(spec)
        self.adapter_version: int | None = None
        self._adapters: dict[str, Any] = {}  # adapter folder → llama_adapter_lora pointer, last used last
        self.prefixes = SequenceStates(prefix_cache_mb * 2**20)
        self._lock = threading.Lock()

    @property
    def context_window(self) -> int | None:
        return self._window

    def count_tokens(self, messages: Messages) -> int:
        return count_chat_tokens(self.tokenizer, messages)

    def use_adapter(self, version: int | None, path: str | None) -> None:
        """Switch to adapter `path` (None: the base model alone), converting it to GGUF once."""
        import llama_cpp

        from persona.runtime.engines.gguf_lora import lora_for

        with self._lock:
            if version == self.adapter_version:
                return
            if version is None or path is None:
                chosen: list[Any] = []
            else:
                key = str(Path(path).resolve())
                if key not in self._adapters:
                    lora = lora_for(Path(path), self.model_file)
                    pointer = llama_cpp.llama_adapter_lora_init(self.llm.model, str(lora).encode())
                    if not pointer:
                        raise ConfigError(f"llama.cpp refused the converted adapter {lora}: delete it to convert again")
                    self._adapters[key] = pointer
                self._adapters[key] = self._adapters.pop(key)  # newest last
                chosen = [self._adapters[key]]
            adapters = (llama_cpp.llama_adapter_lora_p_ctypes * len(chosen))(*chosen) if chosen else None
            scales = (ctypes.c_float * len(chosen))(*[1.0] * len(chosen)) if chosen else None
            if llama_cpp.llama_set_adapters_lora(self.llm.ctx, adapters, len(chosen), scales):
                raise ConfigError(f"llama.cpp could not switch to adapter v{version}")
            self.prefixes.clear(self.llm)  # the cached prompts were computed with the other weights
            self.adapter_version = version if chosen else None
            self._forget_old(llama_cpp)
            log.info("replying with %s through llama.cpp", f"adapter v{version}" if chosen else "the base model")

    def _forget_old(self, llama_cpp: Any) -> None:
        """Free all but the last KEPT_ADAPTERS adapters used."""
        for key in list(self._adapters)[:-KEPT_ADAPTERS]:
            llama_cpp.llama_adapter_lora_free(self._adapters.pop(key))

    def generate(self, messages: Messages, *, greedy: bool | None = None, evidence: Sequence[str] = (),
                 grounding: GroundingSettings | None = None, opening: str = "", max_new_tokens: int | None = None,
                 on_text: OnText | None = None, place: str | None = None) -> Generated:
        import torch

        settings = self.settings.overridden(greedy=greedy, max_new_tokens=max_new_tokens)
        prompt = prompt_ids(self.tokenizer, messages, opening)
        chooser = _NextToken(settings, self.top_k, evidence_bias(self.tokenizer, evidence, grounding, len(prompt)))
        streamer = text_streamer(self.tokenizer, on_text)
        if streamer is not None:
            streamer.put(torch.tensor([prompt]))  # skipped by the streamer, as generate() sends the prompt first
        new: list[int] = []
        with self._lock:
            cancellation.raise_if_cancelled()  # abandoned while it waited for the model
            if len(prompt) + settings.max_new_tokens > self._window:
                raise ConfigError(f"the prompt ({len(prompt)} tokens) and the reply do not fit llama.cpp's {self._window}-token context")
            self.prefixes.prepare(self.llm, place, prompt)
            # llama.cpp samples greedily from what the chooser leaves: one token (plain greedy needs no chooser: argmax either way).
            for token in self.llm.generate(prompt, temp=0.0, top_k=0, top_p=1.0, min_p=0.0, repeat_penalty=1.0,
                                           logits_processor=None if chooser.plain_greedy else [chooser]):
                new.append(token)
                if streamer is not None and token != self.tokenizer.eos_token_id:
                    streamer.put(torch.tensor([token]))
                if token == self.tokenizer.eos_token_id or len(new) >= settings.max_new_tokens:
                    break
                cancellation.raise_if_cancelled()  # the generator is closed on the way out: llama.cpp stops
        if streamer is not None:
            streamer.end()
        return Generated(self.tokenizer.decode(new, skip_special_tokens=True).strip(), len(new))


class _NextToken:
    """Chooses the next token from llama.cpp's logits as transformers' `generate` would:
    repetition penalty, then (sampling) temperature, top-k, top-p, then the caller's
    processors (transformers appends custom processors after its own), then argmax or a
    draw. Returns logits where only the chosen token is finite."""

    def __init__(self, settings: GenerationSettings, top_k: int, extra: list[Any]) -> None:
        from transformers import RepetitionPenaltyLogitsProcessor, TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

        self.greedy = settings.greedy
        self.processors: list[Any] = []
        if settings.repetition_penalty != 1.0:
            self.processors.append(RepetitionPenaltyLogitsProcessor(settings.repetition_penalty))
        if not settings.greedy:
            if settings.temperature != 1.0:
                self.processors.append(TemperatureLogitsWarper(settings.temperature))
            if top_k:
                self.processors.append(TopKLogitsWarper(top_k))
            if settings.top_p < 1.0:
                self.processors.append(TopPLogitsWarper(settings.top_p))
        self.processors.extend(extra)
        self.plain_greedy = self.greedy and not self.processors

    def __call__(self, input_ids: np.ndarray, logits: np.ndarray) -> np.ndarray:
        import torch

        ids = torch.from_numpy(np.asarray(input_ids, dtype=np.int64))[None]
        scores = torch.from_numpy(np.array(logits, dtype=np.float32))[None]
        for processor in self.processors:
            scores = processor(ids, scores)
        if self.greedy:
            choice = int(scores[0].argmax())
        else:
            choice = int(torch.multinomial(torch.softmax(scores[0], dim=-1), 1))
        chosen = np.full_like(logits, -np.inf)
        chosen[choice] = 0.0
        return chosen


def _trained_context(model_file: Path) -> int:
    import gguf

    reader = gguf.GGUFReader(model_file)
    return int(gguf_field(reader, f"{gguf_field(reader, 'general.architecture')}.context_length", MAX_CONTEXT))


def _default_top_k(spec: BaseModelSpec) -> int:
    """The top-k transformers' generate would use for this model: its generation_config's, else 50."""
    from transformers import GenerationConfig

    if not spec.gguf_file:
        try:
            return int(GenerationConfig.from_pretrained(spec.path).top_k or 0)
        except (OSError, ValueError):
            pass
    return int(GenerationConfig().top_k or 0)

"""The transformers engine (PERSONA_ENGINE=transformers): the base model with the active
adapter in this process, CPU or GPU — exact, and the reference the other engines are
measured against."""

from __future__ import annotations

import copy
import logging
import threading
from collections.abc import Sequence
from typing import Any, get_args

from persona.config import Precision
from persona.runtime import cancellation
from persona.runtime.engines.base import Generated, GenerationSettings, Messages, OnText, evidence_bias, prompt_ids, text_streamer
from persona.runtime.grounding import GroundingSettings
from persona.runtime.model import BaseModelSpec, count_chat_tokens, load_base_model, load_tokenizer
from persona.runtime.prefix_cache import PrefixCache

log = logging.getLogger(__name__)


def generate(model: Any, tokenizer: Any, messages: Messages, settings: GenerationSettings, *, evidence: Sequence[str] = (),
             grounding: GroundingSettings | None = None, opening: str = "", on_text: OnText | None = None,
             prefixes: PrefixCache | None = None, place: str | None = None) -> Generated:
    """One reply to `messages` with `settings` (the model's own chat template), pulled
    towards the words of `evidence` when `grounding` is on (persona/runtime/grounding.py).
    With `opening`, the reply starts with those words and the model continues them (the
    returned text is the continuation only). With `on_text`, the text is also handed over
    piece by piece as it is decoded (transformers' TextStreamer: whole words). With
    `prefixes` and a `place`, the model reads only what the prompt does not share with
    the last one read there (persona/runtime/prefix_cache.py)."""
    import torch
    from transformers import DynamicCache, LogitsProcessorList, StoppingCriteriaList

    prompt = prompt_ids(tokenizer, messages, opening)
    cancellation.raise_if_cancelled()  # abandoned while it waited for the model
    reuse = prefixes.take(place, prompt) if prefixes is not None else None
    cache = reuse.cache if reuse is not None and reuse.cache is not None else None
    if cache is None and prefixes is not None and prefixes.enabled and place is not None:
        cache = DynamicCache(config=model.config)
    with torch.no_grad():
        inputs = torch.tensor([prompt], device=next(model.parameters()).device)
        processors = LogitsProcessorList(evidence_bias(tokenizer, evidence, grounding, len(prompt)))
        output = model.generate(input_ids=inputs, attention_mask=torch.ones_like(inputs), **settings.generate_kwargs(tokenizer),
                                logits_processor=processors, streamer=text_streamer(tokenizer, on_text),
                                stopping_criteria=StoppingCriteriaList(cancellation.stopping_criteria()),
                                **({"cache": cache} if cache is not None else {}))
    cancellation.raise_if_cancelled()  # stopped part-way: not a reply (and its cache is not kept)
    if prefixes is not None:
        prefixes.keep(place, prompt, cache)
    new = output[0, len(prompt):]
    return Generated(tokenizer.decode(new, skip_special_tokens=True).strip(), int(new.shape[0]))


PRECISIONS = get_args(Precision)  # PERSONA_LOCAL_PRECISION


def _in_precision(model: Any, precision: str) -> Any:
    """The model in `precision` for CPU generation: bf16 weights (fast where the CPU has
    bf16 instructions), or int8 linear layers quantised on the fly (torch's dynamic
    quantisation: weights int8, activations quantised per batch)."""
    import torch

    if precision == "bf16":
        return model.to(torch.bfloat16)
    if precision == "int8":
        return torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
    return model


class TransformersGenerator:
    """The base model with the active adapter, in this process; thread-safe; adapters swap without a restart.

    In `fp32` the adapter is attached with peft and swapped in place. In `bf16` and
    `int8` (PERSONA_LOCAL_PRECISION) the adapter is merged into an fp32 copy of the base
    model, which is then converted — quantised layers are no longer the linear layers
    LoRA attaches to — so a swap rebuilds the model (seconds, under the lock)."""

    def __init__(self, spec: BaseModelSpec, settings: GenerationSettings, precision: str = "fp32", *, prefix_cache_mb: int = 0) -> None:
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}")
        self.spec = spec
        self.settings = settings
        self.precision = precision
        self.tokenizer = load_tokenizer(spec)
        base = load_base_model(spec)
        self._fp32: Any = None if precision == "fp32" else base  # what a merge starts from
        self.model: Any = base if precision == "fp32" else _in_precision(copy.deepcopy(base), precision)
        self.adapter_version: int | None = None
        self._loaded_from: dict[str, str] = {}  # peft adapter name → the folder it was loaded from
        self.prefixes = PrefixCache(prefix_cache_mb * 2**20)
        self._lock = threading.Lock()

    @property
    def context_window(self) -> int | None:
        return getattr(getattr(self.model, "config", None), "max_position_embeddings", None)

    def use_adapter(self, version: int | None, path: str | None) -> None:
        """Load adapter `path` as the one replies use (None: the base model alone)."""
        from peft import PeftModel

        with self._lock:
            if version == self.adapter_version:
                return
            self.prefixes.clear()  # keys and values computed with the other weights
            if self._fp32 is not None:
                self._merge(version, path)
                return
            if version is None or path is None:
                if isinstance(self.model, PeftModel):
                    self.model.base_model.disable_adapter_layers()
                self.adapter_version = None
                return
            name = f"v{version}"
            if isinstance(self.model, PeftModel):
                if name in self.model.peft_config and self._loaded_from.get(name) != path:
                    self.model.delete_adapter(name)  # the same number from another folder (another PERSONA_HOME)
                if name not in self.model.peft_config:
                    self.model.load_adapter(path, adapter_name=name)
                self.model.base_model.enable_adapter_layers()
                self.model.set_adapter(name)
            else:
                self.model = PeftModel.from_pretrained(self.model, path, adapter_name=name)
            self._loaded_from[name] = path
            self.model.eval()
            self.adapter_version = version
            log.info("replying with adapter %s", name)

    def _merge(self, version: int | None, path: str | None) -> None:
        from peft import PeftModel

        fresh = copy.deepcopy(self._fp32)
        if version is not None and path is not None:
            fresh = PeftModel.from_pretrained(fresh, path).merge_and_unload()
        self.model = _in_precision(fresh, self.precision).eval()
        self.adapter_version = version if path is not None else None
        log.info("replying with %s in %s", f"adapter v{version}" if self.adapter_version else "the base model", self.precision)

    def count_tokens(self, messages: Messages) -> int:
        return count_chat_tokens(self.tokenizer, messages)

    def generate(self, messages: Messages, *, greedy: bool | None = None, evidence: Sequence[str] = (),
                 grounding: GroundingSettings | None = None, opening: str = "", max_new_tokens: int | None = None,
                 on_text: OnText | None = None, place: str | None = None) -> Generated:
        settings = self.settings.overridden(greedy=greedy, max_new_tokens=max_new_tokens)
        with self._lock:
            return generate(self.model, self.tokenizer, messages, settings, evidence=evidence, grounding=grounding, opening=opening,
                            on_text=on_text, prefixes=self.prefixes, place=place)

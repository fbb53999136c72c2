"""Text generation: the settings every reply uses, and the model that replies.

`GenerationSettings` comes from the owner's settings once and travels everywhere a
reply is generated — the bot, `persona chat`, the demo and evaluation sampling — so an
evaluation judges the replies people actually get.
"""

from __future__ import annotations

import copy
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any, Protocol

from persona.runtime.grounding import EvidenceBias, GroundingSettings
from persona.runtime.model import BaseModelSpec, count_chat_tokens, load_base_model, load_tokenizer

log = logging.getLogger(__name__)

Messages = list[dict[str, str]]
OnText = Callable[[str], None]  # receives the reply's text piece by piece as it is generated


@dataclass(frozen=True)
class GenerationSettings:
    max_new_tokens: int
    temperature: float
    top_p: float
    repetition_penalty: float
    greedy: bool = False  # deterministic replies (no sampling)

    @classmethod
    def from_settings(cls, settings: Any, **overrides: Any) -> GenerationSettings:
        base = cls(max_new_tokens=settings.reply_max_tokens, temperature=settings.temperature, top_p=settings.top_p,
                   repetition_penalty=settings.repetition_penalty)
        return replace(base, **{k: v for k, v in overrides.items() if v is not None})

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def overridden(self, *, greedy: bool | None = None, max_new_tokens: int | None = None) -> GenerationSettings:
        """These settings with one call's own choices (None: keep the setting)."""
        return replace(self, **{k: v for k, v in (("greedy", greedy), ("max_new_tokens", max_new_tokens)) if v is not None})

    def generate_kwargs(self, tokenizer: Any) -> dict[str, Any]:
        options: dict[str, Any] = {"max_new_tokens": self.max_new_tokens, "repetition_penalty": self.repetition_penalty,
                                   "pad_token_id": tokenizer.pad_token_id, "eos_token_id": tokenizer.eos_token_id}
        if self.greedy:
            return options | {"do_sample": False}
        return options | {"do_sample": True, "temperature": self.temperature, "top_p": self.top_p}


@dataclass(frozen=True)
class Generated:
    text: str
    new_tokens: int


def generate(model: Any, tokenizer: Any, messages: Messages, settings: GenerationSettings, *, evidence: Sequence[str] = (),
             grounding: GroundingSettings | None = None, opening: str = "", on_text: OnText | None = None) -> Generated:
    """One reply to `messages` with `settings` (the model's own chat template), pulled
    towards the words of `evidence` when `grounding` is on (persona/runtime/grounding.py).
    With `opening`, the reply starts with those words and the model continues them (the
    returned text is the continuation only). With `on_text`, the text is also handed over
    piece by piece as it is decoded (transformers' TextStreamer: whole words)."""
    import torch
    from transformers import LogitsProcessorList

    prompt = prompt_ids(tokenizer, messages, opening)
    with torch.no_grad():
        inputs = torch.tensor([prompt], device=next(model.parameters()).device)
        processors = LogitsProcessorList(evidence_bias(tokenizer, evidence, grounding, len(prompt)))
        output = model.generate(input_ids=inputs, attention_mask=torch.ones_like(inputs), **settings.generate_kwargs(tokenizer),
                                logits_processor=processors, streamer=text_streamer(tokenizer, on_text))
    new = output[0, len(prompt):]
    return Generated(tokenizer.decode(new, skip_special_tokens=True).strip(), int(new.shape[0]))


def prompt_ids(tokenizer: Any, messages: Messages, opening: str = "") -> list[int]:
    """The prompt's token ids: the chat template with the assistant's turn opened, then `opening`."""
    prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True) + opening
    return list(tokenizer(prompt, add_special_tokens=False)["input_ids"])


def evidence_bias(tokenizer: Any, evidence: Sequence[str], grounding: GroundingSettings | None, prompt_length: int) -> list[Any]:
    """Grounding's logits processor, when there is evidence and grounding is on."""
    if evidence and grounding is not None and grounding.enabled:
        return [EvidenceBias(tokenizer, evidence, prompt_length=prompt_length, boost=grounding.boost, copy_weight=grounding.copy_weight)]
    return []


def text_streamer(tokenizer: Any, on_text: OnText | None) -> Any:
    """A transformers TextStreamer that hands finished words to `on_text` (None without it).
    It skips the first `put` (the prompt), as `generate` sends the prompt first."""
    if on_text is None:
        return None
    from transformers import TextStreamer

    class _Pieces(TextStreamer):
        def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
            if text:
                on_text(text)

    return _Pieces(tokenizer, skip_prompt=True, skip_special_tokens=True)


class TextGenerator(Protocol):
    """What the reply pipeline needs of a model: `Generator` here (in-process, transformers),
    `persona.runtime.llamacpp.LlamaCppGenerator` (in-process, llama.cpp), or
    `persona.runtime.remote.RemoteGenerator` (an OpenAI-compatible server)."""

    spec: BaseModelSpec
    settings: GenerationSettings
    adapter_version: int | None

    @property
    def context_window(self) -> int | None: ...

    def use_adapter(self, version: int | None, path: str | None) -> None: ...

    def count_tokens(self, messages: Messages) -> int: ...

    def generate(self, messages: Messages, *, greedy: bool | None = None, evidence: Sequence[str] = (),
                 grounding: GroundingSettings | None = None, opening: str = "", max_new_tokens: int | None = None,
                 on_text: OnText | None = None) -> Generated: ...


def generator_for(settings: Any, generation: GenerationSettings) -> TextGenerator:
    """The generator PERSONA_GENERATOR names, for the base model PERSONA_BASE_MODEL."""
    from persona.runtime.model import resolve_base_model

    spec = resolve_base_model(settings.base_model, settings.models_dir)
    if settings.generator == "openai":
        from persona.runtime.remote import RemoteGenerator

        key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
        return RemoteGenerator(spec, generation, base_url=settings.openai_base_url, api_key=key, model=settings.openai_model,
                               adapters_dir=settings.adapters_dir, served_adapters_dir=settings.openai_adapters_dir,
                               timeout_s=settings.openai_timeout_s)
    if settings.local_engine == "llama.cpp":
        from persona.runtime.llamacpp import LlamaCppGenerator

        return LlamaCppGenerator(spec, generation, model_file=settings.llama_cpp_model, weights=settings.llama_cpp_weights,
                                 models_dir=settings.models_dir)
    return Generator(spec, generation, precision=settings.local_precision)


PRECISIONS = ("fp32", "bf16", "int8")


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


class Generator:
    """The base model with the active adapter, in this process; thread-safe; adapters swap without a restart.

    In `fp32` the adapter is attached with peft and swapped in place. In `bf16` and
    `int8` (PERSONA_LOCAL_PRECISION) the adapter is merged into an fp32 copy of the base
    model, which is then converted — quantised layers are no longer the linear layers
    LoRA attaches to — so a swap rebuilds the model (seconds, under the lock)."""

    def __init__(self, spec: BaseModelSpec, settings: GenerationSettings, precision: str = "fp32") -> None:
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
                 on_text: OnText | None = None) -> Generated:
        settings = self.settings.overridden(greedy=greedy, max_new_tokens=max_new_tokens)
        with self._lock:
            return generate(self.model, self.tokenizer, messages, settings, evidence=evidence, grounding=grounding, opening=opening,
                            on_text=on_text)

"""What every generation engine shares: the settings a reply is generated with, its
result, the interface the reply pipeline calls (`TextGenerator`), and the prompt's
token ids and logits processors both local engines use.

`GenerationSettings` comes from the owner's settings once and travels everywhere a
reply is generated — the bot, `persona chat`, the demo and evaluation sampling — so an
evaluation judges the replies people actually get. The engines themselves live beside
this module, one each; `registry.py` picks one by name.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any, Protocol

from persona.runtime.grounding import EvidenceBias, GroundingSettings
from persona.runtime.model import BaseModelSpec

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
    """What the reply pipeline needs of a model; the engines (registry.ENGINES) implement it."""

    spec: BaseModelSpec
    settings: GenerationSettings
    adapter_version: int | None

    @property
    def context_window(self) -> int | None: ...

    def use_adapter(self, version: int | None, path: str | None) -> None: ...

    def count_tokens(self, messages: Messages) -> int: ...

    def generate(self, messages: Messages, *, greedy: bool | None = None, evidence: Sequence[str] = (),
                 grounding: GroundingSettings | None = None, opening: str = "", max_new_tokens: int | None = None,
                 on_text: OnText | None = None, place: str | None = None) -> Generated:
        """`place`: where the conversation happens (a channel, a DM, an API caller); a local
        engine keeps each place's prompt prefix to reuse for the next reply there."""
        ...

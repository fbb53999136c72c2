"""Prefix reuse for the transformers engine: per place (a channel, a DM, an API caller),
the model's keys and values for the last prompt it read there, so the next reply there
reads only what is new since (persona/prompts.py puts the changing part of a prompt
last for exactly this).

Why not transformers' own prompt-cache recipe (`copy.deepcopy` of a prepared cache per
call): a channel's next prompt shares a *different* length of prefix each time (the
previous reply's memories are gone, its answer is new), so the kept cache is cropped
to the shared prefix in place and extended by `generate`, never copied. One entry per
place, least recently used places dropped first once the entries together pass the
memory bound (PERSONA_PREFIX_CACHE_MB); everything is dropped when the adapter changes,
as keys and values computed with other weights are wrong.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)


@dataclass
class Reuse:
    """What one reply reused: the cache to continue from (None: read the whole prompt) and how many tokens it holds."""

    cache: Any
    reused: int


@dataclass
class _Entry:
    ids: list[int]
    cache: Any
    nbytes: int


def shared_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """How many leading tokens `a` and `b` share."""
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def cache_bytes(cache: Any) -> int:
    """The memory the keys and values of a transformers cache take."""
    total = 0
    for layer in getattr(cache, "layers", ()):
        for tensor in (getattr(layer, "keys", None), getattr(layer, "values", None)):
            if tensor is not None and hasattr(tensor, "numel"):
                total += tensor.numel() * tensor.element_size()
    return total


class TokenCounter:
    """Prompt tokens replies had and those the model read (the rest were reused)."""

    def __init__(self) -> None:
        self.prompt_tokens = 0
        self.read_tokens = 0

    def count(self, prompt: int, reused: int) -> None:
        self.prompt_tokens += prompt
        self.read_tokens += prompt - reused

    def share_read(self) -> float:
        """Of all prompt tokens so far, the share the model read (1.0 without reuse)."""
        return self.read_tokens / self.prompt_tokens if self.prompt_tokens else 1.0


class PrefixCache(TokenCounter):
    """Kept prompt caches by place, within `max_bytes` (0: reuse off). Not thread-safe:
    the engine calls it under its generation lock."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__()
        self.max_bytes = max_bytes
        self._entries: OrderedDict[str, _Entry] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return self.max_bytes > 0

    @property
    def nbytes(self) -> int:
        return sum(entry.nbytes for entry in self._entries.values())

    def __len__(self) -> int:
        return len(self._entries)

    def take(self, place: str | None, prompt: Sequence[int]) -> Reuse:
        """The place's kept cache cropped to what `prompt` shares with it (at least the last
        prompt token is always read: its logits choose the first new token). The entry
        leaves the cache: `generate` extends it in place, and `keep` puts it back."""
        entry = self._entries.pop(place, None) if place is not None and self.enabled else None
        reused = min(shared_prefix(entry.ids, prompt), len(prompt) - 1) if entry is not None else 0
        if entry is None or reused <= 0:
            self.count(len(prompt), 0)
            return Reuse(None, 0)
        try:
            if len(entry.ids) > reused:
                entry.cache.crop(-(len(entry.ids) - reused))
        except (RuntimeError, ValueError) as exc:  # a sliding-window layer past its window cannot be cropped back
            log.debug("prefix cache: cannot crop to %d tokens (%s); reading the whole prompt", reused, exc)
            self.count(len(prompt), 0)
            return Reuse(None, 0)
        self.count(len(prompt), reused)
        return Reuse(entry.cache, reused)

    def keep(self, place: str | None, prompt: Sequence[int], cache: Any) -> None:
        """Keep `cache` (the prompt and the reply generate added) as the place's, cropped to the prompt."""
        if place is None or not self.enabled or cache is None:
            return
        try:
            extra = cache.get_seq_length() - len(prompt)
            if extra > 0:
                cache.crop(-extra)
        except (RuntimeError, ValueError):
            return
        if cache.get_seq_length() != len(prompt):
            return  # not a cache that holds this prompt exactly (a sliding window dropped its start): no reuse here
        entry = _Entry(list(prompt), cache, cache_bytes(cache))
        if entry.nbytes > self.max_bytes:
            return
        self._entries[place] = entry
        while self.nbytes > self.max_bytes:
            dropped, _ = self._entries.popitem(last=False)
            log.debug("prefix cache: dropped %s (least recently used)", dropped)

    def clear(self) -> None:
        """Forget every kept cache (the adapter changed)."""
        self._entries.clear()


class SequenceStates(TokenCounter):
    """Prefix reuse for llama.cpp, whose one context holds one conversation's keys and
    values at a time (llama-cpp-python reuses the part of the next prompt that matches
    it). When a reply is for another place, the context's sequence is saved under the
    place it belongs to (`llama_state_seq_get_data`: only the cells in use, a few MB) and
    the new place's is loaded back, so five busy channels do not evict each other.
    Within `max_bytes` (0: no reuse at all, every prompt read from the start), least
    recently used places dropped first. Not thread-safe: used under the engine's lock."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__()
        self.max_bytes = max_bytes
        self._saved: OrderedDict[str, tuple[list[int], bytes]] = OrderedDict()
        self._loaded: str | None = None  # whose conversation the context holds now

    @property
    def enabled(self) -> bool:
        return self.max_bytes > 0

    @property
    def nbytes(self) -> int:
        return sum(len(data) for _, data in self._saved.values())

    def __len__(self) -> int:
        return len(self._saved) + (self._loaded is not None)

    def prepare(self, llm: Any, place: str | None, prompt: Sequence[int]) -> None:
        """Put `place`'s conversation in `llm`'s context before it reads `prompt`."""
        import ctypes

        import llama_cpp

        if not self.enabled:
            llm.reset()  # llama-cpp-python would reuse a matching prefix by itself
            self.count(len(prompt), 0)
            return
        if place is not None and place != self._loaded:
            if self._loaded is not None and llm.n_tokens > 0:
                size = llama_cpp.llama_state_seq_get_size(llm.ctx, 0)
                buffer = (ctypes.c_uint8 * size)()
                written = llama_cpp.llama_state_seq_get_data(llm.ctx, buffer, size, 0)
                self._saved[self._loaded] = (list(llm.input_ids[: llm.n_tokens]), bytes(buffer)[:written])
                while self._saved and self.nbytes > self.max_bytes:
                    self._saved.popitem(last=False)
            saved = self._saved.pop(place, None)
            if saved is not None:
                ids, data = saved
                llm._ctx.kv_cache_seq_rm(0, 0, -1)
                source = (ctypes.c_uint8 * len(data)).from_buffer_copy(data)
                if llama_cpp.llama_state_seq_set_data(llm.ctx, source, len(data), 0) == len(data):
                    llm.input_ids[: len(ids)] = ids
                    llm.n_tokens = len(ids)
                else:
                    llm.reset()
            self._loaded = place
        reused = min(shared_prefix(list(llm.input_ids[: llm.n_tokens]), prompt), len(prompt) - 1)
        self.count(len(prompt), max(reused, 0))

    def clear(self, llm: Any) -> None:
        """Forget every saved conversation (the adapter changed)."""
        llm.reset()
        self._saved.clear()
        self._loaded = None

"""The reply pipeline: recent conversation + recalled memories → prompt → text.

Shared by the Discord bot and `persona chat`; nothing here knows about Discord.
Memories are recalled through `memory.recall` only (scope rules in SQL) and framed as
quoted material from the owner's past, never as instructions. Generation is
CPU/GPU-bound and synchronous: callers on an event loop run `ReplyEngine.reply` in a
worker thread. Output is scrubbed of personal data before it leaves, split to
Discord's 2,000-character limit, and every reply is logged (prompt snapshot, memory
ids, adapter version, latency) so feedback can point at it.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from persona import memory
from persona.embeddings import Embedder
from persona.model import BaseModelSpec, load_base_model, load_tokenizer
from persona.privacy import Scrubber
from persona.prompts import system_prompt, with_memories
from persona.scopes import Place, readable_scopes

log = logging.getLogger(__name__)

DISCORD_LIMIT = 2000
# Control characters a model can emit (byte-level tokens): PostgreSQL rejects NUL,
# Discord shows the rest as garbage.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@dataclass(frozen=True)
class Turn:
    speaker: str
    content: str
    is_owner: bool


@dataclass
class ReplyRequest:
    text: str
    asker_id: int | None
    asker_name: str
    place: Place
    history: list[Turn] = field(default_factory=list)  # recent messages before `text`, oldest first
    channel_id: int | None = None
    trigger_message_id: int | None = None


@dataclass
class Reply:
    text: str
    chunks: list[str]
    prompt: list[dict[str, str]]
    memories: list[memory.Memory]
    scope: str
    adapter_version: int | None
    base_model: str
    latency_ms: int
    timings_ms: dict[str, float]
    new_tokens: int = 0


def split_message(text: str, limit: int = DISCORD_LIMIT) -> list[str]:
    """Pieces of at most `limit` characters, cut at line ends, then sentence ends, then spaces."""
    text = text.strip()
    pieces: list[str] = []
    while len(text) > limit:
        window = text[:limit]
        cut = max(window.rfind("\n"), -1)
        if cut < limit // 2:
            ends = [m.end() for m in re.finditer(r"[.!?…](?:\s|$)", window)]
            cut = ends[-1] if ends and ends[-1] >= limit // 2 else window.rfind(" ")
        if cut <= 0:
            cut = limit
        pieces.append(text[:cut].rstrip())
        text = text[cut:].lstrip()
    if text:
        pieces.append(text)
    return pieces


class Generator:
    """The base model with the active adapter; thread-safe; adapters swap without a restart."""

    def __init__(self, spec: BaseModelSpec, *, max_new_tokens: int = 120, temperature: float = 0.8, greedy: bool = False) -> None:
        self.spec = spec
        self.max_new_tokens = max_new_tokens
        self.temperature = temperature
        self.greedy = greedy  # deterministic replies (no sampling) unless a call says otherwise
        self.tokenizer = load_tokenizer(spec)
        self.model: Any = load_base_model(spec)
        self.adapter_version: int | None = None
        self._lock = threading.Lock()

    def use_adapter(self, version: int | None, path: str | None) -> None:
        """Load adapter `path` as the one replies use (None: the base model alone)."""
        from peft import PeftModel

        with self._lock:
            if version == self.adapter_version:
                return
            if version is None or path is None:
                if isinstance(self.model, PeftModel):
                    self.model.base_model.disable_adapter_layers()
                self.adapter_version = None
                return
            name = f"v{version}"
            if isinstance(self.model, PeftModel):
                if name not in self.model.peft_config:
                    self.model.load_adapter(path, adapter_name=name)
                self.model.base_model.enable_adapter_layers()
                self.model.set_adapter(name)
            else:
                self.model = PeftModel.from_pretrained(self.model, path, adapter_name=name)
            self.model.eval()
            self.adapter_version = version
            log.info("replying with adapter %s", name)

    def count_tokens(self, messages: list[dict[str, str]]) -> int:
        return len(self.tokenizer.apply_chat_template(messages, tokenize=True))

    def generate(self, messages: list[dict[str, str]], *, greedy: bool | None = None) -> str:
        return self.generate_counted(messages, greedy=greedy)[0]

    def generate_counted(self, messages: list[dict[str, str]], *, greedy: bool | None = None) -> tuple[str, int]:
        """(text, number of new tokens)."""
        import torch

        greedy = self.greedy if greedy is None else greedy
        prompt = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        options: dict[str, Any] = {"max_new_tokens": self.max_new_tokens, "repetition_penalty": 1.1,
                                   "pad_token_id": self.tokenizer.pad_token_id, "eos_token_id": self.tokenizer.eos_token_id}
        options |= {"do_sample": False} if greedy else {"do_sample": True, "temperature": self.temperature, "top_p": 0.9}
        with self._lock, torch.no_grad():
            inputs = self.tokenizer(prompt, return_tensors="pt", add_special_tokens=False).to(next(self.model.parameters()).device)
            output = self.model.generate(**inputs, **options)
        new = output[0, inputs["input_ids"].shape[1]:]
        return self.tokenizer.decode(new, skip_special_tokens=True).strip(), int(new.shape[0])


class ReplyEngine:
    """Everything a reply needs, minus Discord."""

    def __init__(self, store: Any, embedder: Embedder, generator: Generator, *, owner_id: int | None, owner_name: str,
                 style_notes: str = "", context_tokens: int = 1200, k: int = 5) -> None:
        self.store = store
        self.embedder = embedder
        self.generator = generator
        self.owner_id = owner_id
        self.owner_name = owner_name
        self.style_notes = style_notes
        window = getattr(getattr(generator.model, "config", None), "max_position_embeddings", None)
        # The prompt and the reply must fit the model's context window together.
        self.context_tokens = min(context_tokens, window - generator.max_new_tokens) if window else context_tokens
        self.k = k

    def refresh_adapter(self) -> int | None:
        """Switch to whichever adapter is active now (cheap when it has not changed)."""
        with self.store.connect() as conn:
            row = conn.execute("SELECT id, path FROM adapter_versions WHERE status = 'active'").fetchone()
        self.generator.use_adapter(row[0] if row else None, row[1] if row else None)
        return self.generator.adapter_version

    def build_prompt(self, request: ReplyRequest, memories: list[memory.Memory]) -> list[dict[str, str]]:
        system = with_memories(system_prompt(self.owner_name, self.style_notes), [m.content for m in memories])
        turns: list[dict[str, str]] = []
        for turn in request.history:
            role = "assistant" if turn.is_owner else "user"
            content = turn.content if turn.is_owner else f"{turn.speaker}: {turn.content}"
            if turns and turns[-1]["role"] == role:
                turns[-1]["content"] += "\n" + content
            else:
                turns.append({"role": role, "content": content})
        ask = f"{request.asker_name}: {request.text}"
        if turns and turns[-1]["role"] == "user":
            turns[-1]["content"] += "\n" + ask
        else:
            turns.append({"role": "user", "content": ask})
        messages = [{"role": "system", "content": system}, *turns]
        # The conversation must open with a user turn (some chat templates insist), and
        # the oldest turns go until the prompt fits; system and the question always stay.
        while len(messages) > 2 and (messages[1]["role"] == "assistant" or self.generator.count_tokens(messages) > self.context_tokens):
            del messages[1]
        return messages

    def reply(self, request: ReplyRequest) -> Reply:
        started = time.perf_counter()
        timings: dict[str, float] = {}
        scopes = readable_scopes(request.asker_id, request.place, self.owner_id)
        with self.store.connect() as conn:
            mark = time.perf_counter()
            query = "\n".join([*(t.content for t in request.history[-2:]), request.text])
            recalled = memory.search(conn, self.embedder, query, scopes, k=self.k) if scopes != [] else []
            timings["recall"] = (time.perf_counter() - mark) * 1000
        mark = time.perf_counter()
        prompt = self.build_prompt(request, recalled)
        timings["prompt"] = (time.perf_counter() - mark) * 1000
        mark = time.perf_counter()
        raw, new_tokens = self.generator.generate_counted(prompt)
        timings["generate"] = (time.perf_counter() - mark) * 1000
        text = Scrubber().scrub(_CONTROL.sub("", raw)).strip() or "…"
        scope = _reply_scope(scopes)
        return Reply(text, split_message(text), prompt, recalled, scope, self.generator.adapter_version, self.generator.spec.name,
                     int((time.perf_counter() - started) * 1000), timings, new_tokens)

    def log(self, request: ReplyRequest, reply: Reply, message_ids: list[int] | None = None, guild_id: int | None = None) -> int:
        """Record a sent reply; returns its id (what feedback points at)."""
        with self.store.connect() as conn:
            row = conn.execute(
                "INSERT INTO replies (message_ids, trigger_message_id, channel_id, guild_id, asker_id, scope, prompt, completion, "
                "memory_ids, adapter_version_id, base_model, latency_ms) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
                (message_ids or [], request.trigger_message_id, request.channel_id, guild_id, request.asker_id, reply.scope,
                 json.dumps(reply.prompt), reply.text, [m.id for m in reply.memories], reply.adapter_version, reply.base_model, reply.latency_ms),
            ).fetchone()
            conn.commit()
        return int(row[0])


def _reply_scope(scopes: list[str] | None) -> str:
    """The scope a logged reply belongs to (so forgetting a place forgets its replies)."""
    if scopes is None:
        return "private"
    return scopes[0] if scopes else "private"

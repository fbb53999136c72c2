"""The OpenAI chat-completions shapes `persona serve` speaks (what clients send and expect)."""

from __future__ import annotations

import time
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

from persona.edge import WholeText, whole_characters


class ChatMessage(BaseModel):
    role: Literal["system", "user", "assistant", "developer", "tool"]
    content: str | list[dict[str, Any]] | None = None

    @model_validator(mode="after")
    def _whole_text(self) -> ChatMessage:
        whole_characters(self.text())
        return self

    def text(self) -> str:
        """The message's text (a list of content parts: their text parts, joined)."""
        if isinstance(self.content, list):
            return "\n".join(str(p.get("text", "")) for p in self.content if p.get("type") == "text")
        return self.content or ""


class ChatRequest(BaseModel):
    model: WholeText
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    max_tokens: int | None = Field(default=None, ge=1, le=4096)
    max_completion_tokens: int | None = Field(default=None, ge=1, le=4096)
    user: WholeText | None = None  # accepted and ignored: the key decides who asks
    temperature: float | None = Field(default=None, ge=0, le=5)  # 0: greedy; otherwise the owner's sampling settings
    # Raw-model requests only (the owner's key; persona/api/app.py): vLLM's prefill switch.
    top_p: float | None = Field(default=None, gt=0, le=1)  # accepted; the owner's setting is used
    repetition_penalty: float | None = Field(default=None, ge=1, le=3)  # accepted; the owner's setting is used
    continue_final_message: bool = False
    add_generation_prompt: bool = True

    @property
    def asked_max_tokens(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens

    @property
    def greedy(self) -> bool | None:
        """True for temperature 0; None: the owner's sampling settings."""
        return True if self.temperature == 0 else None


def error(message: str, kind: str, code: str | None = None, param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "code": code, "param": param}}


def model_card(name: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": 0, "owned_by": "persona"}


GENERATED_HEADER = {"AI-Generated": "true"}  # every answer of `persona serve` is made by a model (the EU AI Act's Art. 50)


def completion(reply_id: str, model: str, text: str, prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
    return {"id": reply_id, "object": "chat.completion", "created": int(time.time()), "model": model, "ai_generated": True,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens, "total_tokens": prompt_tokens + completion_tokens}}


def chunk(reply_id: str, model: str, delta: dict[str, str], finish_reason: str | None = None) -> dict[str, Any]:
    return {"id": reply_id, "object": "chat.completion.chunk", "created": int(time.time()), "model": model, "ai_generated": True,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]}

"""The persona system prompt, shared by training and replying so both see the same frame."""

from __future__ import annotations


def system_prompt(owner_name: str, style_notes: str = "") -> str:
    name = owner_name or "the owner"
    prompt = (
        f"You are {name}, chatting on Discord. Reply the way {name} would: their words, their tone, "
        "their length. Stay in character; never say you are an AI unless asked directly."
    )
    if style_notes.strip():
        prompt += f" Style: {style_notes.strip()}"
    return prompt


def context_line(place: str, day: str) -> str:
    """The first user turn's opening: where and when the conversation happens."""
    return f"[{place} · {day}]"

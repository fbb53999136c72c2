"""Stopping a reply whose asker went away (a closed connection) or whose server is
stopping: the caller runs the reply inside `cancellable(event)` and sets the event; the
reply pipeline and the engines check it between steps and between tokens and raise
`Cancelled`, so the model stops within a token and nothing is logged as sent.

A context variable rather than a parameter of every `generate`: the reply pipeline, the
repair's second generation and each engine all see the one scope the caller opened,
and callers that never cancel (the bot, the CLI, training) change nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from persona.errors import PersonaError

_scope: ContextVar[threading.Event | None] = ContextVar("persona_cancel", default=None)


class Cancelled(PersonaError):
    """The reply was abandoned: its asker went away or the server is stopping."""

    def __init__(self) -> None:
        super().__init__("the reply was cancelled: the asker went away or the server is stopping")


@contextmanager
def cancellable(event: threading.Event) -> Iterator[None]:
    token = _scope.set(event)
    try:
        yield
    finally:
        _scope.reset(token)


def is_cancelled() -> bool:
    event = _scope.get()
    return event is not None and event.is_set()


def raise_if_cancelled() -> None:
    if is_cancelled():
        raise Cancelled


def stopping_criteria() -> list[Any]:
    """For transformers' `generate`: stop after the current token once cancelled (none outside a scope)."""
    event = _scope.get()
    if event is None:
        return []
    import torch
    from transformers import StoppingCriteria

    class _WhenCancelled(StoppingCriteria):
        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            return torch.full((input_ids.shape[0],), event.is_set(), dtype=torch.bool, device=input_ids.device)

    return [_WhenCancelled()]

"""What the API's routes share: the errors they answer with, the running app's state (the
reply engine, the model's name, the waiting room) and the audience of the caller's key."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from fastapi import Header, Request

from persona import api_keys
from persona.runtime.reply import ReplyEngine


class ApiError(Exception):
    """An OpenAI-style error answer: `status`, one-line `message`, the error's `kind` and `code`."""

    def __init__(self, status: int, message: str, kind: str, code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.kind, self.code = status, message, kind, code


@dataclass
class WaitingRoom:
    """How many requests wait for the model (a local one answers one at a time); when
    `capacity` already wait, a new one is refused with 503 rather than queued for minutes.
    Only the event loop's thread touches it: no lock."""

    capacity: int
    waiting: int = 0

    def refuse_if_full(self) -> None:
        if self.waiting >= self.capacity:
            raise ApiError(503, f"busy: {self.waiting} requests are waiting for the model; retry shortly", "server_error", "overloaded")

    @contextmanager
    def holding_a_place(self) -> Iterator[None]:
        self.waiting += 1
        try:
            yield
        finally:
            self.waiting -= 1


@dataclass
class ApiState:
    engine: ReplyEngine
    model_name: str  # the persona's own model name; the owner's key also sees the raw model
    room: WaitingRoom


def state_of(request: Request) -> ApiState:
    return request.app.state.api


def audience(request: Request, authorization: str | None = Header(default=None)) -> api_keys.ApiKey:
    """Who is asking and where, from the `Authorization: Bearer` key (401 without a good one)."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "no API key: send `Authorization: Bearer <key>` (make one with `persona keys create`)", "invalid_request_error",
                       "invalid_api_key")
    with state_of(request).engine.store.connect() as conn:
        key = api_keys.authenticate(conn, token.strip())
        conn.commit()
    if key is None:
        raise ApiError(401, "unknown or revoked API key", "invalid_request_error", "invalid_api_key")
    return key

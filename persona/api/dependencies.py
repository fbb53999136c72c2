"""What the API's routes share: the running app's state (the reply engine, the model's
name, the limits) and the audience of the caller's key."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Header, Request

from persona import api_keys
from persona.api.errors import ApiError
from persona.api.limits import KeyLimits, RequestBounds, Turns, UseMarks
from persona.runtime.reply import ReplyEngine


@dataclass
class ApiState:
    engine: ReplyEngine
    model_name: str  # the persona's own model name; the owner's key also sees the raw model
    turns: Turns
    keys: KeyLimits
    bounds: RequestBounds
    use_marks: UseMarks


def state_of(request: Request) -> ApiState:
    return request.app.state.api


def audience(request: Request, authorization: str | None = Header(default=None)) -> api_keys.ApiKey:
    """Who is asking and where, from the `Authorization: Bearer` key (401 without a good one)."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "no API key: send `Authorization: Bearer <key>` (make one with `persona keys create`)", "invalid_request_error",
                       "invalid_api_key")
    state = state_of(request)
    with state.engine.store.connect() as conn:
        key = api_keys.authenticate(conn, token.strip())
        if key is not None and state.use_marks.due(key.id):
            api_keys.mark_used(conn, key.id)
        conn.commit()
    if key is None:
        raise ApiError(401, "unknown or revoked API key", "invalid_request_error", "invalid_api_key")
    return key

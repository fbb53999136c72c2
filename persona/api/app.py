"""The OpenAI-compatible API of the persona: `GET /v1/models`, `POST /v1/chat/completions`.

Thin glue over `ReplyEngine`, the bot's reply pipeline: a request is answered as the
audience of its key would be answered in Discord (persona/api_keys.py) — recall reads
only what that person may read in that place — and every reply is logged like a
Discord reply (prompt snapshot, memories, adapter version, latency, verdict), so
`persona replies`, feedback and retraining see it. The client's own system messages are
not passed on: the persona's frame is the persona's.

Generation runs in a worker thread; requests take their turn at a local model in the
order they came; up to `max_waiting` wait, more get 503. What one request and one key may
cost is bounded (persona/api/limits.py: sizes → 400, per-key concurrency and rate → 429),
and a reply whose client went away, or whose server is stopping, stops within a token and
is not logged (persona/runtime/cancellation.py). Every error is in OpenAI's shape
(persona/api/errors.py). Streaming sends the role at once, then the
reply a finished sentence at a time, cleaned (persona/runtime/release.py) — except an
answer to a factual question about the owner while the consistency check may replace it,
which comes whole after the check.

Layout as FastAPI's "bigger applications": this module builds the app (state, error
handlers), persona/api/routes.py holds the routes on a router, and
persona/api/dependencies.py what they share (the key's audience, the app's state).

The owner's key also sees the raw model under its serving name (`persona-vN`, the
active adapter, or the base model's name): messages go to the model as they are, no
memory, no frame, nothing logged — what another machine's bot uses with
PERSONA_ENGINE=openai (persona/runtime/engines/openai_compatible.py), as it would use vLLM.
"""

from __future__ import annotations

from fastapi import FastAPI

from persona import observability
from persona.api import errors
from persona.api.dependencies import ApiState
from persona.api.limits import KeyLimits, RequestBounds, Turns, UseMarks
from persona.api.routes import router
from persona.runtime.reply import ReplyEngine


def create_app(engine: ReplyEngine, *, model_name: str = "persona", max_waiting: int = 16, bounds: RequestBounds | None = None,
               keys: KeyLimits | None = None, model_slots: int = 1, metrics_token: str | None = None) -> FastAPI:
    """`model_slots`: requests handed to the model at once (1 for a local model; a model server batches);
    `metrics_token`: the bearer token /metrics asks for (persona/observability.py)."""
    bounds = bounds or RequestBounds()
    app = FastAPI(title="persona", docs_url=None, redoc_url=None, openapi_url=None)  # nothing is served without a key but /health and /metrics
    app.state.api = ApiState(engine, model_name, Turns(max_waiting, model_slots), keys or KeyLimits(), bounds, UseMarks())
    errors.install(app, bounds.max_body_bytes)  # a body larger than any allowed request is refused before it is read
    app.include_router(observability.router(engine.store, engine=engine, token=metrics_token))
    app.include_router(router)
    return app

"""The OpenAI-compatible API of the persona: `GET /v1/models`, `POST /v1/chat/completions`.

Thin glue over `ReplyEngine`, the bot's reply pipeline: a request is answered as the
audience of its key would be answered in Discord (persona/api_keys.py) — recall reads
only what that person may read in that place — and every reply is logged like a
Discord reply (prompt snapshot, memories, adapter version, latency, verdict), so
`persona replies`, feedback and retraining see it. The client's own system messages are
not passed on: the persona's frame is the persona's.

Generation runs in a worker thread (the local model answers one at a time); up to
`max_waiting` requests wait, more get 503. Streaming sends the role at once, then the
reply a finished sentence at a time, cleaned (persona/runtime/release.py) — except an
answer to a factual question about the owner while the consistency check may replace it,
which comes whole after the check.

Layout as FastAPI's "bigger applications": this module builds the app (state, error
handlers), persona/api/routes.py holds the routes on a router, and
persona/api/dependencies.py what they share (the key's audience, the waiting room).

The owner's key also sees the raw model under its serving name (`persona-vN`, the
active adapter, or the base model's name): messages go to the model as they are, no
memory, no frame, nothing logged — what another machine's bot uses with
PERSONA_ENGINE=openai (persona/runtime/engines/openai_compatible.py), as it would use vLLM.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from persona.api import openai_format as oa
from persona.api.dependencies import ApiError, ApiState, WaitingRoom
from persona.api.routes import router
from persona.runtime.reply import ReplyEngine


def create_app(engine: ReplyEngine, *, model_name: str = "persona", max_waiting: int = 16) -> FastAPI:
    app = FastAPI(title="persona", docs_url=None, redoc_url=None, openapi_url=None)  # nothing is served without a key but /health
    app.state.api = ApiState(engine, model_name, WaitingRoom(max_waiting))
    app.add_exception_handler(ApiError, _api_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _invalid)  # type: ignore[arg-type]
    app.include_router(router)
    return app


async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    return JSONResponse(oa.error(exc.message, exc.kind, exc.code), status_code=exc.status, headers=headers)


async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
    first = exc.errors()[0] if exc.errors() else {}
    where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
    return JSONResponse(oa.error(f"invalid request: {where}: {first.get('msg', 'malformed')}", "invalid_request_error"), status_code=400)

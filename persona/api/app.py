"""The OpenAI-compatible API of the persona: `GET /v1/models`, `POST /v1/chat/completions`.

Thin glue over `ReplyEngine`, the bot's reply pipeline: a request is answered as the
audience of its key would be answered in Discord (persona/api_keys.py) — recall reads
only what that person may read in that place — and every reply is logged like a
Discord reply (prompt snapshot, memories, adapter version, latency, verdict), so
`persona replies`, feedback and retraining see it. The client's own system messages are
not passed on: the persona's frame is the persona's.

Generation runs in a worker thread, one at a time (the local model is one model); up
to `max_waiting` requests wait, more get 503. Streaming sends the role at once and the
reply as it is released: after the consistency check, since a reply that fails it is
replaced before anyone sees it.

The owner's key also sees the raw model under its serving name (`persona-vN`, the
active adapter, or the base model's name): messages go to the model as they are, no
memory, no frame, nothing logged — what another machine's bot uses with
PERSONA_GENERATOR=openai (persona/runtime/remote.py), as it would use vLLM.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import AsyncIterator

from fastapi import Depends, FastAPI, Header, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse

from persona import api_keys
from persona.api import openai_format as oa
from persona.errors import ModelUnavailable
from persona.prompts import Line
from persona.runtime.generation import Generated
from persona.runtime.remote import adapter_name
from persona.runtime.reply import Reply, ReplyEngine, ReplyRequest

log = logging.getLogger(__name__)

_PIECE = re.compile(r"\S+\s*")


class ApiError(Exception):
    def __init__(self, status: int, message: str, kind: str, code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.kind, self.code = status, message, kind, code


def create_app(engine: ReplyEngine, *, model_name: str = "persona", max_waiting: int = 16) -> FastAPI:
    app = FastAPI(title="persona", docs_url=None, redoc_url=None, openapi_url=None)  # nothing is served without a key but /health
    waiting = 0

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return JSONResponse(oa.error(exc.message, exc.kind, exc.code), status_code=exc.status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return JSONResponse(oa.error(f"invalid request: {where}: {first.get('msg', 'malformed')}", "invalid_request_error"), status_code=400)

    def audience(authorization: str | None = Header(default=None)) -> api_keys.ApiKey:
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError(401, "no API key: send `Authorization: Bearer <key>` (make one with `persona keys create`)", "invalid_request_error",
                           "invalid_api_key")
        with engine.store.connect() as conn:
            key = api_keys.authenticate(conn, token.strip())
            conn.commit()
        if key is None:
            raise ApiError(401, "unknown or revoked API key", "invalid_request_error", "invalid_api_key")
        return key

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    def raw_models(key: api_keys.ApiKey) -> list[str]:
        if not key.is_owner:
            return []
        engine.refresh_adapter()  # what a client asking for `persona-vN` finds is what is active now
        version = engine.generator.adapter_version
        return [adapter_name(version) if version else engine.generator.spec.name]

    @app.get("/v1/models")
    def models(key: api_keys.ApiKey = Depends(audience)) -> dict[str, object]:
        return {"object": "list", "data": [oa.model_card(name) for name in [model_name, *raw_models(key)]]}

    @app.post("/v1/chat/completions", response_model=None)
    async def chat(body: oa.ChatRequest, key: api_keys.ApiKey = Depends(audience)) -> JSONResponse | StreamingResponse:
        nonlocal waiting
        raw = body.model != model_name and body.model in await run_in_threadpool(raw_models, key)  # may load a new adapter: off the loop
        if body.model != model_name and not raw:
            raise ApiError(404, f"model {body.model!r} does not exist: this server answers as {model_name!r}", "invalid_request_error",
                           "model_not_found")
        if waiting >= max_waiting:
            raise ApiError(503, f"busy: {waiting} requests are waiting for the model; retry shortly", "server_error", "overloaded")
        if raw:
            waiting += 1
            try:
                generated = await run_in_threadpool(_raw, engine, body)
            except ModelUnavailable as exc:
                raise ApiError(503, exc.message, "server_error", "model_unavailable") from None
            finally:
                waiting -= 1
            return JSONResponse(oa.completion(f"chatcmpl-raw-{uuid.uuid4().hex[:12]}", body.model, generated.text, 0, generated.new_tokens))
        request = _request(body, key, engine)

        async def answer() -> tuple[Reply, int]:
            nonlocal waiting
            waiting += 1
            try:
                return await run_in_threadpool(_reply_and_log, engine, request)
            except ModelUnavailable as exc:
                raise ApiError(503, exc.message, "server_error", "model_unavailable") from None
            finally:
                waiting -= 1

        if not body.stream:
            reply, reply_id = await answer()
            return JSONResponse(oa.completion(f"chatcmpl-{reply_id}", model_name, reply.text, engine.generator.count_tokens(reply.prompt),
                                              reply.new_tokens))

        async def events() -> AsyncIterator[str]:
            stream_id = "chatcmpl-pending"
            yield _event(oa.chunk(stream_id, model_name, {"role": "assistant", "content": ""}))
            try:
                reply, reply_id = await answer()
            except Exception:  # noqa: BLE001 - the client gets one error event; the log gets the details
                log.exception("a streamed reply failed")
                yield _event(oa.error("the persona could not reply (see the server log)", "server_error"))
                return
            stream_id = f"chatcmpl-{reply_id}"
            for piece in _PIECE.findall(reply.text):
                yield _event(oa.chunk(stream_id, model_name, {"content": piece}))
            yield _event(oa.chunk(stream_id, model_name, {}, "stop"))
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

    return app


def _request(body: oa.ChatRequest, key: api_keys.ApiKey, engine: ReplyEngine) -> ReplyRequest:
    """The conversation as the reply pipeline takes it: the last user message is the
    question, earlier user and assistant turns the history; who asks and where: the key's."""
    turns = [m for m in body.messages if m.role in ("user", "assistant")]
    if not turns or turns[-1].role != "user" or not turns[-1].text().strip():
        raise ApiError(400, "the last message must be the user's, with text", "invalid_request_error")
    asker = key.name or ("you" if key.is_owner else "friend")
    history = [Line(engine.owner_name if m.role == "assistant" else asker, m.text(), m.role == "assistant") for m in turns[:-1]]
    return ReplyRequest(text=turns[-1].text(), asker_id=engine.owner_id if key.is_owner else key.asker_id, asker_name=asker,
                        place=key.place, history=history[-12:], channel_id=key.place.channel_id)


def _raw(engine: ReplyEngine, body: oa.ChatRequest) -> Generated:
    """The model alone on the client's messages (the owner's raw-model requests)."""
    messages = [{"role": m.role if m.role != "developer" else "system", "content": m.text()} for m in body.messages]
    opening = ""
    if body.continue_final_message and messages and messages[-1]["role"] == "assistant":
        opening = messages.pop()["content"]
    if not messages:
        raise ApiError(400, "no messages to continue", "invalid_request_error")
    greedy = True if body.temperature == 0 else None
    return engine.generator.generate(messages, greedy=greedy, opening=opening, max_new_tokens=body.max_completion_tokens or body.max_tokens)


def _reply_and_log(engine: ReplyEngine, request: ReplyRequest) -> tuple[Reply, int]:
    engine.refresh_adapter()  # a promotion or rollback is served from the next request on (one indexed query)
    reply = engine.reply(request)
    return reply, engine.log(request, reply, guild_id=request.place.guild_id)


def _event(data: dict[str, object]) -> str:
    return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"

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

The owner's key also sees the raw model under its serving name (`persona-vN`, the
active adapter, or the base model's name): messages go to the model as they are, no
memory, no frame, nothing logged — what another machine's bot uses with
PERSONA_GENERATOR=openai (persona/runtime/remote.py), as it would use vLLM.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import AsyncIterator

from fastapi import Depends, FastAPI, Header, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse

from persona import api_keys
from persona.api import openai_format as oa
from persona.api.threads import while_generating
from persona.errors import ModelUnavailable
from persona.prompts import Line
from persona.runtime.generation import Generated, OnText
from persona.runtime.remote import adapter_name
from persona.runtime.reply import ReplyEngine, ReplyRequest

log = logging.getLogger(__name__)


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
        request = None if raw else _request(body, key, engine)

        def work(feed: OnText | None) -> tuple[str, str, int, int]:
            """(text, completion id, prompt tokens, completion tokens)"""
            if request is None:
                generated = _raw(engine, body, feed)
                return (generated.text, f"chatcmpl-raw-{uuid.uuid4().hex[:12]}", engine.generator.count_tokens(_messages(body)),
                        generated.new_tokens)
            reply, reply_id = engine.answer(request, feed)
            return reply.text, f"chatcmpl-{reply_id}", engine.generator.count_tokens(reply.prompt), reply.new_tokens

        if not body.stream:
            waiting += 1
            try:
                text, completion_id, prompt_tokens, tokens = await run_in_threadpool(work, None)
            except ModelUnavailable as exc:
                raise ApiError(503, exc.message, "server_error", "model_unavailable") from None
            finally:
                waiting -= 1
            return JSONResponse(oa.completion(completion_id, body.model, text, prompt_tokens, tokens))

        async def events() -> AsyncIterator[str]:
            nonlocal waiting
            waiting += 1
            stream_id = f"chatcmpl-{uuid.uuid4().hex[:12]}"  # the logged reply's id is known only at the end
            yield _event(oa.chunk(stream_id, body.model, {"role": "assistant", "content": ""}))
            shown = ""
            try:
                async for text, result in while_generating(work):
                    if result is not None:
                        final, completion_id, _, _ = result
                        # Raw pieces arrive as deltas; the persona's as its whole cleaned text so far.
                        rest = final[len(shown):] if raw or final.startswith(shown) else ""
                        if rest:
                            yield _event(oa.chunk(stream_id, body.model, {"content": rest}))
                        yield _event(oa.chunk(stream_id, body.model, {}, "stop") | {"persona_completion_id": completion_id})
                        yield "data: [DONE]\n\n"
                        return
                    delta = text if raw else text[len(shown):] if text.startswith(shown) else ""
                    shown += delta
                    if delta:
                        yield _event(oa.chunk(stream_id, body.model, {"content": delta}))
            except Exception as exc:  # noqa: BLE001 - the client gets one error event; the log gets the details
                if isinstance(exc, ModelUnavailable):
                    log.warning("a streamed reply failed: %s", exc.message)
                else:
                    log.exception("a streamed reply failed")
                yield _event(oa.error("the persona could not reply (see the server log)", "server_error"))
            finally:
                waiting -= 1

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
                        place=key.place, history=history[-12:], channel_id=key.place.channel_id,
                        max_new_tokens=body.asked_max_tokens, greedy=body.greedy)


def _messages(body: oa.ChatRequest) -> list[dict[str, str]]:
    return [{"role": m.role if m.role != "developer" else "system", "content": m.text()} for m in body.messages]


def _raw(engine: ReplyEngine, body: oa.ChatRequest, on_text: OnText | None = None) -> Generated:
    """The model alone on the client's messages (the owner's raw-model requests)."""
    messages = _messages(body)
    opening = ""
    if body.continue_final_message and messages and messages[-1]["role"] == "assistant":
        opening = messages.pop()["content"]
    if not messages:
        raise ApiError(400, "no messages to continue", "invalid_request_error")
    return engine.generator.generate(messages, greedy=body.greedy, opening=opening, max_new_tokens=body.asked_max_tokens, on_text=on_text)


def _event(data: dict[str, object]) -> str:
    return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"

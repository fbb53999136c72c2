"""The API's routes: `/v1/models`, `/v1/chat/completions` (persona/api/app.py says what
they answer and how; `/health` and `/metrics` are persona/observability.py's)."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import uuid
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, TypeVar

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response, StreamingResponse

from persona import api_keys
from persona.adapters import served_name
from persona.api import openai_format as oa
from persona.api.dependencies import ApiState, audience, state_of
from persona.api.errors import ApiError
from persona.api.limits import Reservation
from persona.api.threads import while_generating
from persona.errors import ModelUnavailable
from persona.prompts import Line
from persona.runtime.cancellation import Cancelled, cancellable
from persona.runtime.engines.base import Generated, OnText
from persona.runtime.reply import ReplyEngine, ReplyRequest

log = logging.getLogger(__name__)
router = APIRouter()
Audience = Annotated[api_keys.ApiKey, Depends(audience)]
State = Annotated[ApiState, Depends(state_of)]
Work = Callable[[OnText | None], tuple[str, str, int, int]]  # → (text, completion id, prompt tokens, completion tokens)
T = TypeVar("T")
DISCONNECT_POLL_S = 0.25  # how often a non-streamed request checks that its client is still there


@router.get("/v1/models")
def models(state: State, key: Audience) -> dict[str, object]:
    return {"object": "list", "data": [oa.model_card(name) for name in [state.model_name, *_raw_models(state.engine, key)]]}


@router.post("/v1/chat/completions", response_model=None)
async def chat(body: oa.ChatRequest, request: Request, state: State, key: Audience) -> Response:
    state.bounds.check(body)  # before any work: a size the server will not read is refused at once
    try:
        reservation = state.keys.reserve(key.id, owner=key.is_owner)  # and a key past its limits (429), before anything else
    except ApiError:
        await state.keys.slow_refusal(key.id)
        raise
    try:
        raw = body.model != state.model_name and body.model in await run_in_threadpool(_raw_models, state.engine, key)  # may load an adapter
        if body.model != state.model_name and not raw:
            raise ApiError(404, f"model {body.model!r} does not exist: this server answers as {state.model_name!r}", "invalid_request_error",
                           "model_not_found")
        work = _raw_work(state.engine, body) if raw else _persona_work(state.engine, _request(body, key, state.engine))
        state.turns.refuse_if_full()
    except BaseException:
        reservation.release()
        raise
    if body.stream:
        events = _events(state, body, work, raw, reservation)
        weakref.finalize(events, reservation.release)  # a stream dropped before it started still gives its place back
        return StreamingResponse(events, media_type="text/event-stream", headers={"Cache-Control": "no-cache", **oa.GENERATED_HEADER})
    stop = threading.Event()
    try:
        with reservation:
            async with state.turns.turn():
                text, completion_id, prompt_tokens, tokens = await _until_gone(request, stop, run_in_threadpool(_cancellable(work, stop), None))
    except ModelUnavailable as exc:
        raise ApiError(503, exc.message, "server_error", "model_unavailable") from None
    except Cancelled:
        return Response(status_code=499)  # nobody is there to read it; nothing was logged
    return JSONResponse(oa.completion(completion_id, body.model, text, prompt_tokens, tokens), headers=oa.GENERATED_HEADER)


async def _until_gone(request: Request, stop: threading.Event, work: Awaitable[T]) -> T:
    """`work`'s result; if the client disconnects first, or this request is cancelled (the
    server stopping), `stop` is set so the reply stops within a token."""
    task = asyncio.ensure_future(work)
    try:
        while not task.done():
            await asyncio.wait({task}, timeout=DISCONNECT_POLL_S)
            if not task.done() and await request.is_disconnected():
                log.info("the client went away: its reply is stopped")
                stop.set()
        return task.result()
    except asyncio.CancelledError:
        stop.set()
        raise


def _cancellable(work: Work, stop: threading.Event) -> Work:
    def run(feed: OnText | None) -> tuple[str, str, int, int]:
        with cancellable(stop):
            return work(feed)

    return run


def _raw_models(engine: ReplyEngine, key: api_keys.ApiKey) -> list[str]:
    """The raw model's serving name, for the owner's key only."""
    if not key.is_owner:
        return []
    engine.refresh_adapter()  # what a client asking for `persona-vN` finds is what is active now
    version = engine.generator.adapter_version
    return [served_name(version) if version else engine.generator.spec.name]


def _persona_work(engine: ReplyEngine, request: ReplyRequest) -> Work:
    def work(feed: OnText | None) -> tuple[str, str, int, int]:
        reply, reply_id = engine.answer(request, feed)
        return reply.text, f"chatcmpl-{reply_id}", engine.generator.count_tokens(reply.prompt), reply.new_tokens

    return work


def _raw_work(engine: ReplyEngine, body: oa.ChatRequest) -> Work:
    def work(feed: OnText | None) -> tuple[str, str, int, int]:
        generated = _raw(engine, body, feed)
        return generated.text, f"chatcmpl-raw-{uuid.uuid4().hex[:12]}", engine.generator.count_tokens(_messages(body)), generated.new_tokens

    return work


async def _events(state: ApiState, body: oa.ChatRequest, work: Work, raw: bool, reservation: Reservation) -> AsyncIterator[str]:
    """The reply as server-sent events: the role at once, then the text as it comes, then
    the stop chunk (with the logged reply's id) and `[DONE]`; one error event if it fails.
    A client that goes away closes this generator: the reply is stopped, not logged."""
    stop = threading.Event()
    try:
        async with state.turns.turn():
            stream_id = f"chatcmpl-{uuid.uuid4().hex[:12]}"  # the logged reply's id is known only at the end
            yield _event(oa.chunk(stream_id, body.model, {"role": "assistant", "content": ""}))
            shown = ""
            try:
                async for text, result in while_generating(_cancellable(work, stop)):
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
            except Cancelled:
                return
            except Exception as exc:
                if isinstance(exc, ModelUnavailable):
                    log.warning("a streamed reply failed: %s", exc.message)
                else:
                    log.exception("a streamed reply failed")
                yield _event(oa.error("the persona could not reply (see the server log)", "server_error"))
    finally:
        stop.set()  # closed early (the client left, the server stops): the worker stops within a token
        reservation.release()


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

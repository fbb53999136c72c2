"""The API's routes: `/health`, `/v1/models`, `/v1/chat/completions` (persona/api/app.py
says what they answer and how)."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, StreamingResponse

from persona import api_keys
from persona.adapters import served_name
from persona.api import openai_format as oa
from persona.api.dependencies import ApiError, ApiState, audience, state_of
from persona.api.threads import while_generating
from persona.errors import ModelUnavailable
from persona.prompts import Line
from persona.runtime.engines.base import Generated, OnText
from persona.runtime.reply import ReplyEngine, ReplyRequest

log = logging.getLogger(__name__)
router = APIRouter()
Audience = Annotated[api_keys.ApiKey, Depends(audience)]
State = Annotated[ApiState, Depends(state_of)]
Work = Callable[[OnText | None], tuple[str, str, int, int]]  # → (text, completion id, prompt tokens, completion tokens)


@router.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/v1/models")
def models(state: State, key: Audience) -> dict[str, object]:
    return {"object": "list", "data": [oa.model_card(name) for name in [state.model_name, *_raw_models(state.engine, key)]]}


@router.post("/v1/chat/completions", response_model=None)
async def chat(body: oa.ChatRequest, state: State, key: Audience) -> JSONResponse | StreamingResponse:
    raw = body.model != state.model_name and body.model in await run_in_threadpool(_raw_models, state.engine, key)  # may load an adapter
    if body.model != state.model_name and not raw:
        raise ApiError(404, f"model {body.model!r} does not exist: this server answers as {state.model_name!r}", "invalid_request_error",
                       "model_not_found")
    state.room.refuse_if_full()
    work = _raw_work(state.engine, body) if raw else _persona_work(state.engine, _request(body, key, state.engine))
    if not body.stream:
        with state.room.holding_a_place():
            try:
                text, completion_id, prompt_tokens, tokens = await run_in_threadpool(work, None)
            except ModelUnavailable as exc:
                raise ApiError(503, exc.message, "server_error", "model_unavailable") from None
        return JSONResponse(oa.completion(completion_id, body.model, text, prompt_tokens, tokens))
    return StreamingResponse(_events(state, body, work, raw), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


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


async def _events(state: ApiState, body: oa.ChatRequest, work: Work, raw: bool) -> AsyncIterator[str]:
    """The reply as server-sent events: the role at once, then the text as it comes, then
    the stop chunk (with the logged reply's id) and `[DONE]`; one error event if it fails."""
    with state.room.holding_a_place():
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
        except Exception as exc:
            if isinstance(exc, ModelUnavailable):
                log.warning("a streamed reply failed: %s", exc.message)
            else:
                log.exception("a streamed reply failed")
            yield _event(oa.error("the persona could not reply (see the server log)", "server_error"))


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

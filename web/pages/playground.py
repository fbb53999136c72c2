"""Playground: talk to the persona as a chosen person in a chosen place — the bot's reply
pipeline (`ReplyEngine.answer`: recall scoped in SQL, grounding, the check, logging),
its text streamed a finished sentence at a time as server-sent events."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, StreamingResponse
from pydantic import BaseModel, Field

from persona.api.threads import while_generating
from persona.edge import WholeText
from persona.errors import ModelUnavailable
from persona.history import messages, people
from persona.prompts import Line
from persona.runtime.cancellation import Cancelled, cancellable
from persona.runtime.engines.base import OnText
from persona.runtime.reply import ReplyRequest
from web import places
from web.dependencies import dashboard_of, render

log = logging.getLogger(__name__)
router = APIRouter()


class Turn(BaseModel):
    mine: bool  # the persona's line (else the asker's)
    text: WholeText = Field(max_length=4000)


class Question(BaseModel):
    text: WholeText = Field(min_length=1, max_length=4000)
    asker: WholeText = Field(default="owner", max_length=40)
    place: WholeText = Field(default=places.DM_WITH_BOT, max_length=60)
    history: list[Turn] = Field(default_factory=list, max_length=24)


@router.get("/playground", response_class=HTMLResponse)
def playground(request: Request) -> HTMLResponse:
    dashboard = dashboard_of(request)
    with dashboard.store.connect() as conn:
        owner = people.resolve_owner(conn, dashboard.settings.owner_id, dashboard.settings.owner_name)
        channels = dashboard.aggregates.get(conn, "channels", messages.channels_listed)
        choices = {"askers": places.askers(conn, owner.id if owner else None), "places": places.places(channels)}
    return render(request, "playground.html", page="playground", model_loaded=dashboard.model_loaded, asker="owner",
                  place=places.DM_WITH_BOT, **choices)


@router.post("/playground/ask")
async def ask(request: Request, question: Question) -> StreamingResponse:
    dashboard = dashboard_of(request)

    def prepare() -> ReplyRequest:
        engine = dashboard.engine()  # loads the model on first use
        with dashboard.store.connect() as conn:
            asker_id, where = places.resolve(conn, question.asker, question.place, engine.owner_id)
            name = "you" if asker_id == engine.owner_id else (people.name_of(conn, asker_id) if asker_id is not None else "") or "friend"
        history = [Line(engine.owner_name if t.mine else name, t.text, t.mine) for t in question.history]
        return ReplyRequest(text=question.text, asker_id=asker_id, asker_name=name, place=where, history=history[-12:],
                            channel_id=where.channel_id)

    reply_request = await run_in_threadpool(prepare)

    stop = threading.Event()

    def work(feed: OnText) -> tuple[str, int, str]:
        with cancellable(stop), dashboard.generating:
            reply, reply_id = dashboard.engine().answer(reply_request, feed)
        return reply.text, reply_id, reply.verdict.outcome if reply.verdict else "unchecked"

    async def events() -> AsyncIterator[str]:
        try:
            async for text, result in while_generating(work):
                if result is None:
                    yield _event({"text": text})
                else:
                    final, reply_id, outcome = result
                    yield _event({"text": final, "done": True, "reply_id": reply_id, "verdict": outcome})
        except Cancelled:
            return
        except ModelUnavailable as exc:
            yield _event({"error": exc.message})
        except Exception:
            log.exception("a playground reply failed")
            yield _event({"error": "the persona could not reply (see the dashboard's log)"})
        finally:
            stop.set()  # the page was closed mid-reply: the model stops within a token, nothing is logged

    return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})


def _event(data: dict[str, object]) -> str:
    return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"

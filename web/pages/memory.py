"""Memory explorer: what recall returns for a chosen person in a chosen place (the bot's
own `recall`, scope rules in SQL), each memory's sources, and forgetting it."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse

from persona import memory
from persona.errors import PersonaError
from persona.history import messages, people
from persona.privacy.scopes import readable_scopes
from web import places
from web.dependencies import dashboard_of, render

router = APIRouter()


@router.get("/memory", response_class=HTMLResponse)
async def explorer(request: Request, q: str = "", asker: str = "owner", place: str = places.TERMINAL, k: int = 10) -> HTMLResponse:
    dashboard = dashboard_of(request)
    k = max(1, min(k, 50))

    def search() -> dict:
        with dashboard.store.connect() as conn:
            owner = people.resolve_owner(conn, dashboard.settings.owner_id, dashboard.settings.owner_name)
            owner_id = owner.id if owner else None
            channels = dashboard.aggregates.get(conn, "channels", messages.channels_listed)
            found: dict = {"askers": places.askers(conn, owner_id), "places": places.places(channels), "results": [], "scopes": None, "error": ""}
            if q.strip():
                try:
                    asker_id, where = places.resolve(conn, asker, place, owner_id)
                except PersonaError as exc:
                    return found | {"error": exc.message}
                found["scopes"] = readable_scopes(asker_id, where, owner_id)
                found["results"] = memory.recall(conn, dashboard.embedder(), q, asker_id=asker_id, place=where, owner_id=owner_id, k=k)
            return found

    found = await run_in_threadpool(search)
    template = "memory_results.html" if "hx-request" in request.headers else "memory.html"
    return render(request, template, page="memory", q=q, asker=asker, place=place, k=k, **found)


@router.get("/memory/{memory_id}", response_class=HTMLResponse)
def memory_sources(request: Request, memory_id: int) -> HTMLResponse:
    with dashboard_of(request).store.connect() as conn:
        opened = memory.opened(conn, memory_id)
        if opened is None:
            raise HTTPException(404, f"memory {memory_id} does not exist (forgotten, or rebuilt under another id)")
        sources = messages.by_ids(conn, opened.message_ids)
        channel = messages.channel(conn, opened.channel_id) if opened.channel_id is not None else None
    return render(request, "memory_sources.html", page="memory", memory=opened, sources=sources, channel=channel)

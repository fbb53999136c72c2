"""Privacy: people (opted out or not), opt out / in, forget a person, a channel, a time range
or a memory — the CLI's operations (persona/privacy/forget.py), with what each will
delete counted before the owner confirms (the same code, run and rolled back)."""

from __future__ import annotations

from collections.abc import Callable

import psycopg
from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from persona.edge import parse_id
from persona.history import messages, people
from persona.privacy import forget
from persona.privacy.requests import time_range
from web.dependencies import dashboard_of, render

router = APIRouter()
WHAT = {
    "person": "everything from and with user {id} (what they wrote, and your whole DM conversation)",
    "optout": "everything user {id} wrote, and keep them out from now on",
    "channel": "channel {id}: every message and the memories made from it",
    "memory": "memory {id}: the messages it was built from, and everything built from those",
    "range": "everything written from {start} to {end} (UTC)",
}


def _action(what: str, target: str, start: str, end: str) -> tuple[str, Callable[[psycopg.Connection], forget.Forgotten]]:
    """(a description, the core's deletion) for a form's fields; 400 for anything else."""
    if what == "range":
        begin, until = time_range(start, end)
        return WHAT["range"].format(start=f"{begin:%Y-%m-%d %H:%M}", end=f"{until:%Y-%m-%d %H:%M}"), lambda c: forget.forget_range(c, begin, until)
    if what not in WHAT:
        raise HTTPException(400, "say what to forget: a person, a channel, a memory (by id) or a time range")
    ident = parse_id(target, f"the {what}")
    run = {"person": forget.forget_person, "optout": forget.opt_out, "channel": forget.forget_channel, "memory": forget.forget_memory}[what]
    return WHAT[what].format(id=ident), lambda c: run(c, ident)


@router.get("/privacy", response_class=HTMLResponse)
def privacy(request: Request, done: str = "") -> HTMLResponse:
    dashboard = dashboard_of(request)
    with dashboard.store.connect() as conn:
        everyone = people.listed(conn)
        written = dashboard.aggregates.get(conn, "by_author", lambda c: messages.counts_by_author(c, [p.id for p in everyone]))
        channels = dashboard.aggregates.get(conn, "channels", messages.channels_listed)
    return render(request, "privacy.html", page="privacy", people=everyone, written=written, channels=channels, done=done)


@router.get("/privacy/confirm", response_class=HTMLResponse)
async def confirm(request: Request, what: str, target: str = "", start: str = "", end: str = "") -> HTMLResponse:
    description, action = _action(what, target, start, end)
    dashboard = dashboard_of(request)

    def count() -> forget.Forgotten:
        with dashboard.store.connect() as conn:
            return forget.preview(conn, action)

    return render(request, "privacy_confirm.html", page="privacy", what=what, target=target, start=start, end=end,
                  description=description, preview=await run_in_threadpool(count))


@router.post("/privacy/forget")
async def do_forget(request: Request, what: str = Form(...), target: str = Form(""), start: str = Form(""), end: str = Form("")) -> Response:
    _description, action = _action(what, target, start, end)
    dashboard = dashboard_of(request)

    def run() -> forget.Forgotten:
        with dashboard.store.connect() as conn:
            result, _ = forget.carry_out(conn, action, dashboard.settings.datasets_dir)
            return result

    result = await run_in_threadpool(run)
    note = result.describe()
    if result.needs_retrain:
        note += " · the serving adapter learned from it: start a retrain on the Adapters page (the nightly one does it first)"
    return RedirectResponse(f"/privacy?done={_query(note)}", status_code=303)


@router.post("/privacy/optin")
def opt_in(request: Request, person: int = Form(...)) -> Response:
    with dashboard_of(request).store.connect() as conn, conn.transaction():
        changed = forget.opt_in(conn, person)
    return RedirectResponse(f"/privacy?done={_query(f'user {person} ' + ('opted back in' if changed else 'was not opted out'))}", status_code=303)


def _query(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="")

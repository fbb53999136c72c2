"""Inbox: drafts waiting for the owner (send as drafted, edit and send, discard), what
became of the recent ones, and the send modes per place — persona/drafts.py and
persona/send_modes.py behind forms. The list refreshes itself every few seconds (htmx);
editing happens on a draft's own page, so a refresh never takes away what is being typed.
Only the bot posts to Discord: Send here approves, and the running bot sends within
seconds (a draft goes out at most once, whatever is clicked where)."""

from __future__ import annotations

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from persona import drafts, send_modes
from persona.edge import parse_id
from persona.history import people
from persona.presence import bot_presence
from web.dependencies import dashboard_of, render

router = APIRouter()
DECIDED = 20  # recent decisions shown under the waiting drafts
PLACES = {"channel": "a channel", "guild": "a server", "user": "a person's DMs", "dms": "all DMs"}


@router.get("/inbox", response_class=HTMLResponse)
def inbox(request: Request) -> HTMLResponse:
    dashboard = dashboard_of(request)
    with dashboard.store.connect() as conn:
        waiting = list(reversed(drafts.listed(conn, statuses=("pending",), limit=200)))  # oldest first: the next to answer on top
        recent = drafts.listed(conn, statuses=tuple(s for s in drafts.STATUSES if s != "pending"), limit=DECIDED)
        modes = send_modes.listed(conn)
        bot_running = bot_presence(conn) is not None
    template = "inbox_rows.html" if "hx-request" in request.headers else "inbox.html"
    return render(request, template, page="inbox", waiting=waiting, recent=recent, modes=modes, places=PLACES, mode_names=send_modes.MODES,
                  default_mode=dashboard.settings.send_mode, bot_running=bot_running, describe=drafts.describe_status)


@router.get("/inbox/{draft_id}", response_class=HTMLResponse)
def shown(request: Request, draft_id: int) -> HTMLResponse:
    with dashboard_of(request).store.connect() as conn:
        draft = drafts.get(conn, draft_id)
        snapshot = drafts.snapshot(conn, draft_id)
        names = people.known_names(conn)
    if draft is None:
        raise HTTPException(404, f"there is no draft {draft_id} (forgotten, or never made)")
    return render(request, "draft.html", page="inbox", draft=draft, snapshot=snapshot or {}, names=names, describe=drafts.describe_status,
                  max_text=drafts.MAX_TEXT)


@router.post("/inbox/{draft_id}/send")
def send(request: Request, draft_id: int, text: str | None = Form(None)) -> Response:
    with dashboard_of(request).store.connect() as conn:
        current = drafts.get(conn, draft_id)
        edited = text if current is not None and text is not None and text.strip() != current.draft_text else None
        decision = drafts.approve(conn, draft_id, via="dashboard", text=edited)
        conn.commit()
    if not decision.changed:
        raise HTTPException(409 if decision.draft else 404, decision.refusal())
    return RedirectResponse("/inbox", status_code=303)


@router.post("/inbox/{draft_id}/discard")
def discard(request: Request, draft_id: int) -> Response:
    with dashboard_of(request).store.connect() as conn:
        decision = drafts.discard(conn, draft_id, via="dashboard")
        conn.commit()
    if not decision.changed:
        raise HTTPException(409 if decision.draft else 404, decision.refusal())
    return RedirectResponse("/inbox", status_code=303)


def _place(kind: str, ident: str) -> send_modes.Place:
    if kind not in PLACES:
        raise HTTPException(400, f"a place is one of: {', '.join(PLACES)}")
    if kind == "dms":
        return send_modes.Place("dms")
    return send_modes.Place(kind, parse_id(ident, PLACES[kind]))  # type: ignore[arg-type]


@router.post("/inbox/modes")
def set_mode(request: Request, place: str = Form(...), ident: str = Form(""), mode: str = Form(...)) -> Response:
    chosen = _place(place, ident)
    with dashboard_of(request).store.connect() as conn:
        if mode == "default":
            send_modes.clear(conn, chosen)
        else:
            send_modes.set_mode(conn, chosen, mode)  # an unknown mode: ConfigError, one line on the error page
        conn.commit()
    return RedirectResponse("/inbox#modes", status_code=303)

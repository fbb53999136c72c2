"""Replies and feedback: every reply sent (Discord, `persona serve`, the playground) with its
prompt snapshot, recalled memories, adapter version, latency, verdict and ratings;
filters; the owner rates from here."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from persona import replies
from persona.edge import parse_id
from persona.history import messages, people
from web.dependencies import dashboard_of, render

router = APIRouter()
PAGE = 50
RATINGS = {"down": -1, "up": 1}


def _id(value: str, what: str) -> int | None:
    return parse_id(value, what) if value.strip() else None


@router.get("/replies", response_class=HTMLResponse)
def listed(request: Request, rating: str = "", asker: str = "", channel: str = "", verdict: str = "", before: str = "") -> HTMLResponse:
    if verdict and verdict != "failed" and verdict not in replies.OUTCOMES:
        raise HTTPException(400, f"the verdict is one of: failed, {', '.join(replies.OUTCOMES)}")
    outcomes = {"failed": replies.FAILED}.get(verdict, (verdict,) if verdict else ())
    with dashboard_of(request).store.connect() as conn:
        found = replies.sent_replies(conn, limit=PAGE, before_id=_id(before, "before"), asker_id=_id(asker, "the person"),
                                     channel_id=_id(channel, "the channel"), rating=RATINGS.get(rating), outcomes=outcomes)
        names = people.known_names(conn)
        channel_names = messages.channel_names(conn)
        askers, channels = replies.replied_to(conn)
    filters = {"rating": rating, "asker": asker, "channel": channel, "verdict": verdict}
    # The newest page refreshes its rows every few seconds (htmx asks for the rows alone): a live view of what the bot says.
    template = "replies_rows.html" if "hx-request" in request.headers else "replies.html"
    return render(request, template, page="replies", verdicts=("failed", *replies.OUTCOMES), replies=found, names=names,
                  channel_names=channel_names, askers=askers, channels=channels,
                  filters=filters | {"before": before}, live=urlencode(filters),
                  older=urlencode(filters | {"before": found[-1].id}) if len(found) == PAGE else None)


@router.get("/replies/{reply_id}", response_class=HTMLResponse)
def shown(request: Request, reply_id: int) -> HTMLResponse:
    with dashboard_of(request).store.connect() as conn:
        reply = replies.sent_reply(conn, reply_id)
        names = people.known_names(conn)
    if reply is None:
        raise HTTPException(404, f"there is no reply {reply_id} (forgotten, or never sent)")
    return render(request, "reply.html", page="replies", reply=reply, names=names)


@router.post("/replies/{reply_id}/rate")
def rate(request: Request, reply_id: int, rating: int = Form(...)) -> Response:
    if rating not in (-1, 1):
        raise HTTPException(400, "a rating is 1 (👍) or -1 (👎)")
    dashboard = dashboard_of(request)
    with dashboard.store.connect() as conn:
        owner = people.resolve_owner(conn, dashboard.settings.owner_id, dashboard.settings.owner_name)
        if owner is None:
            raise HTTPException(409, "persona does not know who the owner is yet: set PERSONA_OWNER_ID or import your history")
        if not replies.rate(conn, reply_id, rater_id=owner.id, rating=rating, via="dashboard"):
            raise HTTPException(404, f"there is no reply {reply_id}")
    return RedirectResponse(f"/replies/{reply_id}", status_code=303)

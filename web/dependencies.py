"""What the dashboard's pages share (FastAPI's "bigger applications" layout): the
templates and `render`, the `Dashboard` of the running app, and the CSRF check that the
app applies to every route in one place (web/app.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import HTTPException, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.templating import Jinja2Templates

from persona.edge import LONE_SURROGATE, shown
from web.auth import COOKIE, Session, same_token
from web.context import Dashboard

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
OWN_CSRF_PATHS = ("/login",)
FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")  # the login form checks its own double-submit token (no session yet)


def dashboard_of(request: Request) -> Dashboard:
    return request.app.state.dashboard


def render(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    session = getattr(request.state, "session", None)
    return templates.TemplateResponse(request, name, {"csrf": session.csrf if session else "", **context}, status_code=status_code)


async def check_csrf(request: Request) -> None:
    """Every state-changing request carries the session's CSRF token, as the form field
    `csrf_token` or the `X-CSRF-Token` header (htmx sends it from the page's `hx-headers`).
    A dependency of the whole app, so a route added anywhere is covered."""
    if request.method in SAFE_METHODS or request.url.path in OWN_CSRF_PATHS:
        return
    session = getattr(request.state, "session", None)
    given = request.headers.get("x-csrf-token")
    if given is None and request.headers.get("content-type", "").startswith(FORMS):
        given = (await request.form()).get("csrf_token")
    if session is None or not same_token(given if isinstance(given, str) else None, session.csrf):
        raise HTTPException(403, "missing or wrong CSRF token: reload the page and try again")


async def refuse_unstorable_input(request: Request) -> None:
    """No query or form value may hold a NUL (PostgreSQL cannot store one in text) or half
    of a UTF-16 pair: one clear 400 instead of an error deep in a query."""
    values = list(request.query_params.multi_items())
    if request.method not in SAFE_METHODS and request.headers.get("content-type", "").startswith(FORMS):
        values += [(k, v) for k, v in (await request.form()).multi_items() if isinstance(v, str)]
    for name, value in values:
        if "\x00" in value or LONE_SURROGATE.search(value):
            raise HTTPException(400, f"{shown(name)} holds a character that cannot be stored (NUL, or half of one): remove it and try again")


def secure_cookies(request: Request, dashboard: Dashboard) -> bool:
    """`Secure` beyond loopback, behind a configured proxy, or whenever the page came over https."""
    return dashboard.secure_cookies or request.url.scheme == "https"


def set_session_cookie(request: Request, response: Response, dashboard: Dashboard, session: Session) -> None:
    """The session cookie, living as long as the session does from now (the server slides both, up to the session's end)."""
    response.set_cookie(COOKIE, session.id, httponly=True, samesite="strict", path="/", secure=secure_cookies(request, dashboard),
                        max_age=max(1, round(dashboard.sessions.seconds_left(session))))

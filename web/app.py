"""The dashboard's FastAPI application: login, the guard in front of every page, CSRF,
security headers, and the pages (web/pages/), each a thin view over core functions.

Every route but `/login` and the vendored static files needs a session: a page asked for
without one redirects to the login form, anything else gets 401. Every request that
changes something (not GET/HEAD) must carry the session's CSRF token, as a form field
`csrf_token` or an `X-CSRF-Token` header (htmx sends it from the page's `hx-headers`).
"""

from __future__ import annotations

import logging
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import Depends, FastAPI, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from web import password
from web.auth import COOKIE, LOGIN_COOKIE, same_token
from web.context import Dashboard

log = logging.getLogger(__name__)
HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")

SECURITY_HEADERS = {
    # Nothing from elsewhere: scripts, styles and images are this server's own.
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                               "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}
PUBLIC_PREFIXES = ("/static/",)  # vendored htmx and the style sheet: no data in them


def dashboard_of(request: Request) -> Dashboard:
    return request.app.state.dashboard


async def check_csrf(request: Request) -> None:
    """Every state-changing request carries the session's CSRF token (header or form field)."""
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    session = getattr(request.state, "session", None)
    given = request.headers.get("x-csrf-token")
    if given is None and request.headers.get("content-type", "").startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        given = (await request.form()).get("csrf_token")
    if session is None or not same_token(given if isinstance(given, str) else None, session.csrf):
        raise HTTPException(403, "missing or wrong CSRF token: reload the page and try again")


def render(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    session = getattr(request.state, "session", None)
    return templates.TemplateResponse(request, name, {"csrf": session.csrf if session else "", **context}, status_code=status_code)


def create_app(dashboard: Dashboard) -> FastAPI:
    from web.pages import adapters, imports, memory, overview, playground, privacy, replies

    app = FastAPI(title="persona dashboard", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.dashboard = dashboard
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    @app.middleware("http")
    async def guard(request: Request, call_next: Any) -> Response:
        path = request.url.path
        if path != "/login" and not path.startswith(PUBLIC_PREFIXES):
            session = dashboard.sessions.get(request.cookies.get(COOKIE))
            if session is None:
                response: Response
                if request.method == "GET" and "hx-request" not in request.headers:
                    response = RedirectResponse(f"/login?next={quote(path)}", status_code=303)
                else:
                    response = PlainTextResponse("log in first", status_code=401)
                return _secured(response)
            request.state.session = session
        return _secured(await call_next(request))

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: HTTPException) -> Response:
        if "hx-request" in request.headers or request.headers.get("accept", "").startswith("application/json"):
            return PlainTextResponse(str(exc.detail), status_code=exc.status_code)
        return render(request, "error.html", status_code=exc.status_code, message=exc.detail)

    @app.get("/login", response_class=HTMLResponse)
    def login_form(request: Request, token: str | None = None, next: str = "/") -> Response:
        if token is None:
            return _login_page(request, dashboard, next)
        client = request.client.host if request.client else "?"
        if wait := dashboard.failed_logins.wait_s(client):
            return _too_many(request, dashboard, next, wait)
        if dashboard.link.use(token):
            return _logged_in(dashboard, _safe_next(next))
        dashboard.failed_logins.failed(client)
        log.warning("a login link was refused (already used, or wrong)")
        return _login_page(request, dashboard, next, "that login link was already used or is wrong: use the password, "
                                                     "or restart `persona web` for a new link", 401)

    @app.post("/login", response_class=HTMLResponse)
    def login(request: Request, password_: str = Form("", alias="password"), csrf_token: str = Form(""), next: str = Form("/")) -> Response:
        client = request.client.host if request.client else "?"
        if wait := dashboard.failed_logins.wait_s(client):
            return _too_many(request, dashboard, next, wait)
        if not same_token(csrf_token, request.cookies.get(LOGIN_COOKIE, "")):
            return _login_page(request, dashboard, next, "the login form expired: try again", 403)
        with dashboard.store.connect() as conn:
            good = password.verify(conn, password_)  # argon2: ~50 ms of CPU, in a worker thread (a sync route)
            conn.commit()
        if not good:
            dashboard.failed_logins.failed(client)
            log.warning("a dashboard login failed from %s", client)
            return _login_page(request, dashboard, next, "wrong password", 401)
        return _logged_in(dashboard, _safe_next(next))

    @app.post("/logout", dependencies=[Depends(check_csrf)])
    def logout(request: Request) -> Response:
        dashboard.sessions.end(request.cookies.get(COOKIE))
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE)
        return response

    for page in (overview, memory, adapters, replies, playground, privacy, imports):
        app.include_router(page.router, dependencies=[Depends(check_csrf)])
    return app


def _secured(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    response.headers.setdefault("Cache-Control", "no-store")
    return response


def _safe_next(target: str) -> str:
    """Only a path on this server (never `//elsewhere` or a full URL) after logging in."""
    return target if target.startswith("/") and not target.startswith("//") and "\\" not in target else "/"


def _logged_in(dashboard: Dashboard, target: str) -> Response:
    session = dashboard.sessions.start()
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(COOKIE, session.id, httponly=True, samesite="strict", path="/",
                        max_age=int(dashboard.settings.web_session_hours * 3600))
    response.delete_cookie(LOGIN_COOKIE)
    log.info("dashboard login")
    return response


def _too_many(request: Request, dashboard: Dashboard, next_path: str, wait: int) -> Response:
    return _login_page(request, dashboard, next_path, f"too many failed logins: try again in {wait} s", 429, headers={"Retry-After": str(wait)})


def _login_page(request: Request, dashboard: Dashboard, next_path: str, error: str = "", status_code: int = 200,
                headers: dict[str, str] | None = None) -> Response:
    with dashboard.store.connect() as conn:
        has_password = password.is_set(conn)
    token = secrets.token_urlsafe(24)
    response = templates.TemplateResponse(
        request, "login.html", {"error": error, "has_password": has_password, "login_csrf": token,
                                "next": _safe_next(next_path)},
        status_code=status_code, headers=headers,
    )
    response.set_cookie(LOGIN_COOKIE, token, httponly=True, samesite="strict", path="/login", max_age=3600)
    return response

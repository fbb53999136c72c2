"""The dashboard's FastAPI application: login, the guard in front of every page, CSRF,
security headers, error pages, and the pages (web/pages/), each a thin view over core
functions. What the pages share lives in web/dependencies.py, so pages never import this
module.

Every route but `/login`, `/health`, `/metrics` (persona/observability.py) and the vendored static files needs a session: a page asked for
without one redirects to the login form, anything else gets 401. Every request that
changes something (not GET/HEAD) must carry the session's CSRF token (an app-wide
dependency: web/dependencies.py `check_csrf`), and no query or form value may hold what
cannot be stored (a NUL, half a character: `refuse_unstorable_input`); a value of the
wrong type, or one the database refuses (a number beyond bigint), is a 400 page too.
The session cookie is sent again with every response, so its lifetime slides with the
session's (up to PERSONA_WEB_SESSION_MAX_HOURS); it is `Secure` whenever the dashboard
listens beyond loopback, is reached over https, or sits behind a configured proxy.
Request bodies are capped at PERSONA_WEB_MAX_UPLOAD_MB (FastAPI's max_body_size).
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

import psycopg
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import PlainTextResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from persona import observability
from persona.errors import DatabaseError, ModelUnavailable, PersonaError, first_line
from web.auth import COOKIE
from web.context import Dashboard
from web.dependencies import HERE, check_csrf, refuse_unstorable_input, render, set_session_cookie
from web.pages import adapters, imports, inbox, login, memory, overview, playground, privacy, replies

log = logging.getLogger(__name__)
PAGES = (login, overview, memory, adapters, inbox, replies, playground, privacy, imports)

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


def create_app(dashboard: Dashboard) -> FastAPI:
    app = FastAPI(title="persona dashboard", docs_url=None, redoc_url=None, openapi_url=None,
                  dependencies=[Depends(refuse_unstorable_input), Depends(check_csrf)],
                  max_body_size=int(dashboard.settings.web_max_upload_mb * 1024 * 1024))
    app.state.dashboard = dashboard
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    @app.middleware("http")
    async def guard(request: Request, call_next: Any) -> Response:
        path = request.url.path
        if path == "/login" or path in observability.PATHS or path.startswith(PUBLIC_PREFIXES):
            return _secured(await call_next(request))
        session = dashboard.sessions.get(request.cookies.get(COOKIE))
        if session is None:
            response: Response
            if request.method == "GET" and "hx-request" not in request.headers:
                response = RedirectResponse(f"/login?next={quote(path)}", status_code=303)
            else:
                response = PlainTextResponse("log in first", status_code=401)
            return _secured(response)
        request.state.session = session
        response = await call_next(request)
        if COOKIE not in response.headers.get("set-cookie", ""):  # logout deletes it; everything else slides it
            set_session_cookie(request, response, dashboard, session)
        return _secured(response)

    @app.exception_handler(StarletteHTTPException)  # FastAPI's HTTPException, an unknown path's 404, an upload's 413
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 413:  # FastAPI's max_body_size
            limit = dashboard.settings.web_max_upload_mb
            return _error_page(request, 413, f"the upload is larger than {limit:g} MB (PERSONA_WEB_MAX_UPLOAD_MB): raise it, "
                                              "or import the file with `persona ingest`")
        return _error_page(request, exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {}
        where = " ".join(str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path", "form"))
        return _error_page(request, 400, f"{where or 'the request'}: {first.get('msg', 'malformed')}".encode("utf-8", "replace").decode())

    @app.exception_handler(psycopg.DataError)
    async def _unstorable(request: Request, exc: psycopg.DataError) -> Response:
        """What slipped past the checks at the edge and the database refused as data (a number out of range, a byte it cannot store)."""
        log.info("the database refused a request's value: %s", first_line(exc))
        return _error_page(request, 400, "a value in the request is out of range or cannot be stored: check the ids and text you gave")

    @app.exception_handler(PersonaError)
    async def _persona_error(request: Request, exc: PersonaError) -> Response:
        """The core refused what was asked, with one line that says why: shown as it is."""
        status = 503 if isinstance(exc, ModelUnavailable | DatabaseError) else 400
        return _error_page(request, status, exc.message)

    app.include_router(observability.router(dashboard.store, token=dashboard.settings.metrics_bearer))
    for page in PAGES:
        app.include_router(page.router)
    return app


def _secured(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    response.headers.setdefault("Cache-Control", "no-store")
    return response


def _error_page(request: Request, status: int, message: str) -> Response:
    if "hx-request" in request.headers or request.headers.get("accept", "").startswith("application/json"):
        return PlainTextResponse(message, status_code=status)
    return render(request, "error.html", status_code=status, message=message)

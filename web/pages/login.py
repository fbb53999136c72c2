"""Logging in and out: the one-time link printed at start or made by `persona web
login-link`, the password form (its own double-submit CSRF token: there is no session
yet), and the limit on failed logins — keyed on the real peer, and never in the way of a
good one-time link."""

from __future__ import annotations

import logging
import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from web import login_links, password
from web.auth import COOKIE, LOGIN_COOKIE, same_token
from web.context import Dashboard
from web.dependencies import dashboard_of, secure_cookies, set_session_cookie, templates

log = logging.getLogger(__name__)
router = APIRouter()


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, token: str | None = None, next: str = "/") -> Response:
    dashboard = dashboard_of(request)
    if token is None:
        return _login_page(request, dashboard, next)
    client = _client(request)
    # A good link logs in whatever the failed-login limit says: others' failures never lock the owner out.
    if dashboard.link.use(token):
        log.warning("dashboard login with the link printed at start, from %s", client)
        return _logged_in(request, dashboard, _safe_next(next))
    with dashboard.store.connect() as conn:
        made_from_shell = login_links.use(conn, token)
    if made_from_shell:
        log.warning("dashboard login with a link from `persona web login-link`, from %s", client)
        return _logged_in(request, dashboard, _safe_next(next))
    if wait := dashboard.failed_logins.wait_s(client):
        return _too_many(request, dashboard, next, wait)
    dashboard.failed_logins.failed(client)
    log.warning("a login link was refused (already used, expired or wrong) from %s", client)
    return _login_page(request, dashboard, next, "that login link was already used, expired or is wrong: use the password, "
                                                 "or make a new one with `persona web login-link`", 401)


@router.post("/login", response_class=HTMLResponse)
def login(request: Request, password_: Annotated[str, Form(alias="password")] = "", csrf_token: Annotated[str, Form()] = "",
          next: Annotated[str, Form()] = "/") -> Response:
    dashboard = dashboard_of(request)
    client = _client(request)
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
    return _logged_in(request, dashboard, _safe_next(next))


@router.post("/logout")
def logout(request: Request) -> Response:
    dashboard_of(request).sessions.end(request.cookies.get(COOKIE))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE)
    return response


def _safe_next(target: str) -> str:
    """Only a path on this server (never `//elsewhere` or a full URL) after logging in."""
    return target if target.startswith("/") and not target.startswith("//") and "\\" not in target else "/"


def _client(request: Request) -> str:
    """The peer's address: uvicorn replaces it with X-Forwarded-For only from PERSONA_WEB_TRUSTED_PROXIES."""
    return request.client.host if request.client else "?"


def _logged_in(request: Request, dashboard: Dashboard, target: str) -> Response:
    session = dashboard.sessions.start()
    response = RedirectResponse(target, status_code=303)
    set_session_cookie(request, response, dashboard, session)
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
    response.set_cookie(LOGIN_COOKIE, token, httponly=True, samesite="strict", path="/login", max_age=3600,
                        secure=secure_cookies(request, dashboard))
    return response

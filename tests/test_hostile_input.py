"""Hostile and edge input on every surface (issue 33, items 3-5), against the real
`persona web` and `persona serve` processes: a walk of every dashboard route and every
API field with a list of hostile values answers no 500 and never drops the connection;
the login limiter keys on the real peer unless a proxy is configured, and a link from
`persona web login-link` logs the owner in through a lockout."""

from __future__ import annotations

import collections
import itertools
import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from fastapi.routing import APIRoute

from persona.config import Settings
from persona.storage.store import Store
from tests.fixtures import voice
from tests.helpers import free_port, wait_healthy
from tests.test_serve import _serve
from tests.test_web import env, start_web, stop_web  # noqa: F401 - env is a fixture
from web.app import create_app
from web.context import Dashboard

HOSTILE: list[str] = [
    "--5", "²", "٣", "1" * 30, "9223372036854775808", "-9223372036854775809", "-", "", " ", "1\x00", "x\x00y", "1e5", "0x10", "1_000",
    "<script>alert(1)</script>", "' OR 1=1 --", "../../../etc/passwd", "%2e%2e%2f", "a" * 5000, "null", "[]", "{}", "%", "\\", "\u202e",
    "😀", "owner\x00", "channel:--5", "channel:" + "9" * 30, "\r\nSet-Cookie: x=1",
]
SKIPPED = {("POST", "/logout"), ("POST", "/login"), ("GET", "/login")}  # ending the walk's own session; the login form: tested below


def _dashboard_routes(store: Store, env: dict[str, str]) -> list[APIRoute]:  # noqa: F811
    def walk(routes: list) -> Iterator[APIRoute]:
        for route in routes:
            if isinstance(route, APIRoute):
                yield route
            elif hasattr(route, "original_router"):
                yield from walk(route.original_router.routes)

    return list(walk(create_app(Dashboard.from_settings(Settings(_env_file=None, database_url=env["DATABASE_URL"]), store)).routes))


def _fields(route: APIRoute) -> dict[str, list[str]]:
    """The route's inputs by where they go: path, query, form, json (a body model's fields)."""
    found: dict[str, list[str]] = {"path": [], "query": [], "form": [], "json": []}
    for param in route.dependant.path_params:
        found["path"].append(param.alias)
    for param in route.dependant.query_params:
        found["query"].append(param.alias)
    for param in route.dependant.body_params:
        annotation = param.field_info.annotation
        if isinstance(annotation, type) and hasattr(annotation, "model_fields"):
            found["json"] += list(annotation.model_fields)
        else:
            found["form"].append(param.alias)
    return found


def _hostile_requests(routes: list[APIRoute], csrf: str) -> Iterator[tuple[str, str, str, dict[str, Any]]]:
    """(label, method, path, httpx options): each input of each route set to each hostile value, the others plain."""
    for route in routes:
        fields = _fields(route)
        for method, (where, name), value in itertools.product(sorted(route.methods), [(w, n) for w, ns in fields.items() for n in ns], HOSTILE):
            path = route.path
            for param in fields["path"]:
                filled = quote(value, safe="") if (where, name) == ("path", param) else "1"
                path = path.replace("{" + param + "}", filled or "%20")
            options: dict[str, Any] = {"headers": {"X-CSRF-Token": csrf}}
            if where == "query":
                options["params"] = {name: value}
            elif where == "form" and name == "file":
                options |= {"files": {"file": (value or "x", b"{}", "application/json")}, "data": {"kind": "dce"}}
            elif where == "form":
                options["data"] = {name: value}
            elif where == "json":
                options["json"] = {"text": "hi", name: value}
            yield f"{method} {route.path} {where} {name}={value[:40]!r}", method, path, options


def test_every_dashboard_route_and_field_survives_hostile_values(persona_exe: Path, env: dict[str, str], store: Store) -> None:  # noqa: F811
    with store.connect() as conn:
        voice.populate(conn, sessions=4)
    web = start_web(persona_exe, env)
    statuses: collections.Counter[int] = collections.Counter()
    try:
        client = httpx.Client(base_url=web.base, timeout=60, follow_redirects=False)
        assert client.get(web.link.split(web.base.rsplit(":", 1)[1], 1)[1]).status_code == 303  # logged in
        csrf = re.search(r'"X-CSRF-Token": "([^"]+)"', client.get("/").text).group(1)
        routes = [r for r in _dashboard_routes(store, env) if not {(m, r.path) for m in r.methods} & SKIPPED]
        assert len(routes) >= 20
        for label, method, path, options in _hostile_requests(routes, csrf):
            response = client.request(method, path, **options)  # a reset connection raises here
            statuses[response.status_code] += 1
            assert response.status_code < 500, f"{label}: {response.status_code} {response.text[:200]}"
        assert client.get("/").status_code == 200  # the session and the server are still fine
    finally:
        stderr = stop_web(web)
    assert "Traceback" not in stderr, stderr[-3000:]
    print(f"dashboard walk: {sum(statuses.values())} requests, statuses {dict(sorted(statuses.items()))}")


def test_every_api_field_survives_hostile_values(persona_exe: Path, env: dict[str, str], store: Store, tmp_path: Path) -> None:  # noqa: F811
    from persona import api_keys
    from persona.privacy.scopes import Place

    with store.connect() as conn:
        voice.populate(conn, sessions=4)
        _, key = api_keys.create(conn, asker_id=222222222222222222, place=Place.dm(9_100_000_000_000_000), name="sam")
        conn.commit()
    port = free_port()
    server = _serve(persona_exe, port, {**env, "PERSONA_SERVE_KEY_PER_MINUTE": "100000", "PERSONA_SERVE_KEY_CONCURRENCY": "4",
                                         "PERSONA_REPLY_MAX_TOKENS": "2", "PERSONA_CONSISTENCY": "off"})
    statuses: collections.Counter[int] = collections.Counter()
    values: list[Any] = [*HOSTILE, "\ud800", "a\udfffb", -1, 0, 10**30, 1.5, -1e300, True, None, [], {}, [{"type": "text", "text": "\ud800"}],
                         [{"type": "image_url"}], {"nested": {"deep": [1, 2, 3]}}]
    base_body = {"model": "persona", "messages": [{"role": "user", "content": "hey what's up"}], "max_tokens": 2}
    try:
        wait_healthy(f"http://127.0.0.1:{port}/health", server)
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60, headers={"Authorization": f"Bearer {key}"})

        def check(response: httpx.Response, what: str) -> None:
            statuses[response.status_code] += 1
            assert response.status_code < 500, f"{what}: {response.status_code} {response.text[:200]}"
            if response.status_code >= 400:
                error = response.json()["error"]
                assert set(error) == {"message", "type", "code", "param"} and error["message"], what

        fields = ["model", "stream", "max_tokens", "max_completion_tokens", "temperature", "top_p", "repetition_penalty", "user",
                  "continue_final_message", "add_generation_prompt", "messages"]
        for field in fields:
            for value in values:
                body = {**base_body, field: value}
                check(client.post("/v1/chat/completions", content=json.dumps(body).encode("utf-8", "surrogatepass"),
                                  headers={"Content-Type": "application/json"}), f"{field}={str(value)[:40]!r}")
        for part in ("role", "content"):
            for value in values:
                body = {**base_body, "messages": [{"role": "user", "content": "hi", part: value}]}
                check(client.post("/v1/chat/completions", content=json.dumps(body).encode("utf-8", "surrogatepass"),
                                  headers={"Content-Type": "application/json"}), f"messages[0].{part}={str(value)[:40]!r}")
        for raw in (b"", b"{", b"\xff\xfe\x00", b"[]", b"null", b'"x"', b"1", b'{"model": "persona"}', b"{" * 10000 + b"}" * 10000):
            check(client.post("/v1/chat/completions", content=raw, headers={"Content-Type": "application/json"}), f"body {raw[:20]!r}")
        for method, path in (("GET", "/v1/nothing"), ("DELETE", "/v1/chat/completions"), ("GET", "/v1/chat/completions"), ("POST", "/v1/models"),
                             ("GET", "/v1/models/../../etc/passwd")):
            check(client.request(method, path), f"{method} {path}")
        assert client.get("/v1/models").status_code == 200
    finally:
        server.kill()
        stderr = server.communicate()[1]
    assert "Traceback" not in stderr, stderr[-3000:]
    print(f"API walk: {sum(statuses.values())} requests, statuses {dict(sorted(statuses.items()))}")


def test_the_login_limiter_keys_on_the_real_peer_and_a_shell_link_always_works(persona_exe: Path, env: dict[str, str]) -> None:  # noqa: F811
    subprocess.run([str(persona_exe), "web", "set-password", "--stdin"], input="correct horse battery\n", text=True, check=True,
                   env=_env(env), capture_output=True)

    def attempt(client: httpx.Client, password: str, forwarded: str) -> httpx.Response:
        """A login as a browser behind a TLS proxy sends it (the cookie passed by hand: httpx keeps `Secure` ones for https)."""
        proxy = {"X-Forwarded-For": forwarded, "X-Forwarded-Proto": "https"}
        form = client.get("/login", headers=proxy)
        token = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)
        cookie = form.headers["set-cookie"].split(";", 1)[0]
        return client.post("/login", data={"password": password, "csrf_token": token}, headers={**proxy, "Cookie": cookie})

    web = start_web(persona_exe, env)
    try:
        client = httpx.Client(base_url=web.base, timeout=30, follow_redirects=False)
        # Rotating X-Forwarded-For does not evade the limit: without a configured proxy it is not believed.
        statuses = [attempt(client, "wrong password!", f"198.51.100.{i}").status_code for i in range(7)]
        assert statuses == [401] * 5 + [429] * 2
        assert attempt(client, "correct horse battery", "198.51.100.99").status_code == 429  # this address is locked out
        # The owner, at this machine's shell, gets in anyway: a fresh one-time link.
        made = subprocess.run([str(persona_exe), "web", "login-link"], env=_env(env), capture_output=True, text=True, check=True)
        path = "/login?" + made.stdout.strip().split("/login?", 1)[1]
        owner = httpx.Client(base_url=web.base, timeout=30, follow_redirects=False)
        assert owner.get(path).status_code == 303 and owner.get("/").status_code == 200
        assert httpx.get(web.base + path, timeout=30, follow_redirects=False).status_code in (401, 429)  # spent
    finally:
        stderr = stop_web(web)
    assert "login with a link from `persona web login-link`" in stderr

    proxied = start_web(persona_exe, {**env, "PERSONA_WEB_TRUSTED_PROXIES": "127.0.0.1"})
    try:
        client = httpx.Client(base_url=proxied.base, timeout=30, follow_redirects=False)
        assert [attempt(client, "wrong password!", "203.0.113.7").status_code for _ in range(6)] == [401] * 5 + [429]
        # Behind a configured proxy each client is its own: another address is not locked out by those failures.
        good = attempt(client, "correct horse battery", "203.0.113.8")
        assert good.status_code == 303 and "Secure" in good.headers["set-cookie"]  # behind a proxy: the TLS one
    finally:
        stop_web(proxied)


def _env(settings: dict[str, str]) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PERSONA_") and k != "DATABASE_URL"}
    return {**clean, "PERSONA_LOG_LEVEL": "WARNING", **settings}

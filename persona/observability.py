"""`/health` and `/metrics`, the same on `persona serve`, `persona web` and `persona run`'s
metrics port (PERSONA_METRICS_PORT).

`/health` answers 200 while the process runs and its database answers (503 when the
database does not), with the model's state in the body: a container's health check
restarts what is stuck, not a bot whose model server is still starting. `/metrics` is
Prometheus's text format (persona/metrics.py): counts and timings only, nothing a
person wrote. With PERSONA_METRICS_TOKEN set it needs `Authorization: Bearer <token>`
(Prometheus's `authorization` scrape setting); without it, anyone who can reach the port
can read the counts — it listens where the process listens.
"""

from __future__ import annotations

import hmac
import logging
import socket
import threading
from typing import Any

import psycopg
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from persona import metrics
from persona.errors import ConfigError, PersonaError

log = logging.getLogger(__name__)
PATHS = ("/health", "/metrics")  # public paths: no login, no API key


def router(store: Any, *, engine: Any = None, token: str | None = None) -> APIRouter:
    """The two routes for a process with `store` (and `engine`, when it generates)."""
    metrics.watch_database(store)
    if engine is not None:
        metrics.watch_engine(engine)
    routes = APIRouter()

    @routes.get("/health")
    def health() -> Response:
        body: dict[str, str] = {"status": "ok", "database": "ok"}
        try:
            with store.connect() as conn:
                conn.execute("SELECT 1")
        except (psycopg.Error, PersonaError) as exc:
            log.warning("health: the database did not answer: %s", exc)
            body.update(status="unavailable", database="unreachable")
        if engine is not None:
            body["model"] = "loaded" if metrics.model_is_up() else "unavailable"
        return JSONResponse(body, status_code=200 if body["database"] == "ok" else 503)

    @routes.get("/metrics")
    def scrape(request: Request) -> Response:
        if token and not _bearer_matches(request.headers.get("authorization"), token):
            return PlainTextResponse("a bearer token is needed (PERSONA_METRICS_TOKEN)\n", status_code=401,
                                     headers={"WWW-Authenticate": "Bearer"})
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    return routes


def _bearer_matches(header: str | None, token: str) -> bool:
    scheme, _, given = (header or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


def serve_in_background(store: Any, *, engine: Any, host: str, port: int, token: str | None) -> threading.Thread:
    """`persona run`'s metrics port: the two routes on their own small server, in a daemon
    thread. The port is bound here, so one in use is a clear error before the bot starts."""
    import uvicorn

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((host, port))
    except OSError as exc:
        listener.close()
        raise ConfigError(f"PERSONA_METRICS_PORT {port} on {host}: {exc.strerror or exc} — pick a free port, "
                          "or 0 for no metrics port") from None
    app = FastAPI(title="persona metrics", docs_url=None, redoc_url=None, openapi_url=None)
    app.include_router(router(store, engine=engine, token=token))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, name="metrics-port", daemon=True)
    thread.start()
    log.info("health and metrics on http://%s:%d/health and /metrics", host, port)
    return thread

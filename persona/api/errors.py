"""The API's errors, all in OpenAI's shape (`{"error": {"message", "type", "code", "param"}}`):
the routes' own refusals, and what FastAPI or Starlette would otherwise answer in theirs
(an unparsable body, an unknown path, a wrong method, a body over the size limit)."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from persona.api import openai_format as oa

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An OpenAI-style error answer: `status`, one-line `message`, the error's `kind` and `code`."""

    def __init__(self, status: int, message: str, kind: str, code: str | None = None, *, param: str | None = None,
                 retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.kind, self.code = status, message, kind, code
        self.param, self.retry_after = param, retry_after


class BodyLimit:
    """Refuses a body over `max_bytes` in OpenAI's shape (413): at once when its
    Content-Length says so, else as soon as the bytes read pass it. Starlette's own
    limit (FastAPI's max_body_size) answers in plain text, which OpenAI clients cannot read."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            kind, code, message = _HTTP_ERRORS[413]
            await _answer(413, message, kind, code)(scope, receive, send)
            return
        read = 0

        async def counted() -> Message:
            nonlocal read
            message = await receive()
            read += len(message.get("body", b""))
            if read > self.max_bytes:
                raise HTTPException(413)  # inside the app: answered by _http below
            return message

        await self.app(scope, counted, send)


def install(app: FastAPI, max_body_bytes: int) -> None:
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)
    app.add_exception_handler(ApiError, _api_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _invalid)  # type: ignore[arg-type]
    app.add_exception_handler(HTTPException, _http)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _unexpected)


def _answer(status: int, message: str, kind: str, code: str | None = None, param: str | None = None,
            headers: dict[str, str] | None = None) -> JSONResponse:
    def printable(text: str | None) -> str | None:  # a lone surrogate from the input cannot be encoded: replaced, not a 500
        return None if text is None else text.encode("utf-8", "replace").decode("utf-8")

    return JSONResponse(oa.error(printable(message) or "", kind, code, printable(param)), status_code=status, headers=headers)


async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else {}
    if exc.retry_after is not None:
        headers["Retry-After"] = str(exc.retry_after)
    return _answer(exc.status, exc.message, exc.kind, exc.code, exc.param, headers or None)


async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
    first = exc.errors()[0] if exc.errors() else {}
    if first.get("type") == "json_invalid":
        return _answer(400, "the body is not valid JSON", "invalid_request_error", "invalid_json")
    where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
    return _answer(400, f"invalid request: {where or 'body'}: {first.get('msg', 'malformed')}", "invalid_request_error", param=where or None)


_HTTP_ERRORS = {
    404: ("invalid_request_error", "not_found", "no such path: this server answers GET /v1/models and POST /v1/chat/completions"),
    405: ("invalid_request_error", "method_not_allowed", "wrong method for this path"),
    413: ("invalid_request_error", "request_too_large", "the request body is too large (PERSONA_SERVE_MAX_PROMPT_CHARS bounds it)"),
}


async def _http(_: Request, exc: HTTPException) -> JSONResponse:
    kind, code, message = _HTTP_ERRORS.get(exc.status_code, ("invalid_request_error", None, str(exc.detail)))
    return _answer(exc.status_code, message, kind, code, headers=getattr(exc, "headers", None))


async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
    log.exception("an API request failed")
    return _answer(500, "the persona could not answer (see the server log)", "server_error")

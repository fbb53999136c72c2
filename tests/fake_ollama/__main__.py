"""`python -m tests.fake_ollama PORT MODELS`: see tests/fake_ollama/__init__.py."""

from __future__ import annotations

import sys
import time
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response


def create_app(models: list[str]) -> FastAPI:
    app = FastAPI()

    @app.get("/v1/models")
    def listed() -> dict[str, Any]:
        return {"object": "list", "data": [{"id": m, "object": "model", "created": 0, "owned_by": "library"} for m in models]}

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Response:
        body = await request.json()
        model = body.get("model")
        if model not in models:
            return JSONResponse({"error": {"message": f'model "{model}" not found, try pulling it first', "type": "api_error"}}, status_code=404)
        text = f"answered by {model}"
        return JSONResponse({"id": "chatcmpl-1", "object": "chat.completion", "created": int(time.time()), "model": model,
                             "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                             "usage": {"prompt_tokens": 10, "completion_tokens": 3, "total_tokens": 13}})

    @app.api_route("/{path:path}", methods=["GET", "POST", "PUT", "DELETE"])
    def anything_else(path: str) -> Response:
        return PlainTextResponse("404 page not found", status_code=404)

    return app


if __name__ == "__main__":
    uvicorn.run(create_app(sys.argv[2].split(",")), host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")

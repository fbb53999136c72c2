"""Streaming what a worker thread produces to an async response (the API's SSE, the dashboard's playground)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import TypeVar

from fastapi.concurrency import run_in_threadpool

from persona.runtime.engines.base import OnText

T = TypeVar("T")


async def while_generating(work: Callable[[OnText], T]) -> AsyncIterator[tuple[str, T | None]]:
    """Run `work` in a worker thread; yield each text it hands over as it comes, then its result."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[str, object]] = asyncio.Queue()
    task = asyncio.ensure_future(run_in_threadpool(work, lambda text: loop.call_soon_threadsafe(queue.put_nowait, ("text", text))))
    task.add_done_callback(lambda _: queue.put_nowait(("done", None)))
    while True:
        kind, value = await queue.get()
        if kind == "text":
            yield str(value), None
        else:
            yield "", task.result()  # raises what the work raised
            return

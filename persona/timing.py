"""Where a reply's time goes: named steps, in milliseconds (the reply pipeline's
`timings_ms`, the bot's figures, `bench/reply.py`)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager


class Stopwatch:
    """Started when made; `step(name)` times a block (a step run twice adds up), `total_ms`
    is the time since it was made."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.ms: dict[str, float] = {}

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        mark = time.perf_counter()
        try:
            yield
        finally:
            self.ms[name] = self.ms.get(name, 0.0) + (time.perf_counter() - mark) * 1000

    @property
    def total_ms(self) -> int:
        return int((time.perf_counter() - self.started) * 1000)

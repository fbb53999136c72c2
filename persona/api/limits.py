"""What one request and one key may cost `persona serve` (issue 33): a request's size is
checked before any work (400), a key may have `concurrency` requests in progress and
`per_minute` in any minute (429 with Retry-After), and requests take their turn at a
local model in the order they came, so one key's stream of requests waits behind the
others' rather than ahead of them.

The rate window is the `limits` package's moving window in this process's memory (a
restart forgets it: a key gains at most one minute's requests)."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from limits import RateLimitItemPerMinute
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from persona.api import openai_format as oa
from persona.api.errors import ApiError


@dataclass(frozen=True)
class RequestBounds:
    max_message_chars: int = 4000
    max_prompt_chars: int = 16000

    @property
    def max_body_bytes(self) -> int:
        """The largest body worth reading: every character escaped as a surrogate pair
        (`\\ud83d\\ude00`, 6 bytes a UTF-16 unit), plus room for the JSON around it."""
        return 12 * self.max_prompt_chars + 64 * 1024

    def check(self, body: oa.ChatRequest) -> None:
        lengths = [len(m.text()) for m in body.messages]
        longest = max(lengths, default=0)
        if longest > self.max_message_chars:
            raise ApiError(400, f"a message has {longest:,} characters; this server accepts at most {self.max_message_chars:,} "
                                "(PERSONA_SERVE_MAX_MESSAGE_CHARS)", "invalid_request_error", "message_too_long", param="messages")
        if sum(lengths) > self.max_prompt_chars:
            raise ApiError(400, f"the messages have {sum(lengths):,} characters together; this server accepts at most "
                                f"{self.max_prompt_chars:,} (PERSONA_SERVE_MAX_PROMPT_CHARS)", "invalid_request_error",
                           "context_length_exceeded", param="messages")


@dataclass
class KeyLimits:
    """Per key: requests in progress, and requests in the last minute. `in_progress` is
    changed by the event loop's thread (and by the finalizer of a stream dropped unstarted):
    single dict operations, no lock."""

    concurrency: int = 1
    per_minute: int = 30
    tarpit_s: float = 1.0
    in_progress: dict[int, int] = field(default_factory=dict)
    refused_at: dict[int, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._window = MovingWindowRateLimiter(MemoryStorage())
        self._rate = RateLimitItemPerMinute(self.per_minute)

    def reserve(self, key_id: int, *, owner: bool = False) -> Reservation:
        """A place for one more request of this key (429 when it has none left); release it
        when the request ends. The owner's key is not limited: it is the one another
        machine's bot uses as its model server (PERSONA_ENGINE=openai), with as many
        requests at once as mentions come in; the limits are for the keys given to others."""
        if owner:
            return Reservation(self, key_id, released=True)
        if self.in_progress.get(key_id, 0) >= self.concurrency:
            raise ApiError(429, f"this key already has {self.concurrency} request(s) in progress; wait for "
                                f"{'it' if self.concurrency == 1 else 'one'} to finish (PERSONA_SERVE_KEY_CONCURRENCY)",
                           "rate_limit_exceeded", "concurrency_limit_exceeded", retry_after=1)
        if not self._window.hit(self._rate, str(key_id)):
            reset = self._window.get_window_stats(self._rate, str(key_id)).reset_time
            raise ApiError(429, f"this key made {self.per_minute} requests in the last minute (PERSONA_SERVE_KEY_PER_MINUTE); retry later",
                           "rate_limit_exceeded", "rate_limit_exceeded", retry_after=max(1, math.ceil(reset - time.time())))
        self.in_progress[key_id] = self.in_progress.get(key_id, 0) + 1
        return Reservation(self, key_id)

    async def slow_refusal(self, key_id: int) -> None:
        """Before answering a 429: a key refused again within `tarpit_s` waits that long for
        the answer. A client retrying in a tight loop then costs one refusal a second per
        connection instead of hundreds (each one parsed, authenticated, answered), which on
        a 2-core machine would take the CPU from the replies of everyone else."""
        now = time.monotonic()
        again = now - self.refused_at.get(key_id, -self.tarpit_s) < self.tarpit_s
        self.refused_at[key_id] = now
        if again:
            await asyncio.sleep(self.tarpit_s)

    def _release(self, key_id: int) -> None:
        left = self.in_progress.get(key_id, 0) - 1
        if left > 0:
            self.in_progress[key_id] = left
        else:
            self.in_progress.pop(key_id, None)


@dataclass
class Reservation:
    limits: KeyLimits
    key_id: int
    released: bool = False

    def release(self) -> None:
        """Idempotent: a stream releases it when it ends, and again (harmlessly) when it is collected unstarted."""
        if not self.released:
            self.released = True
            self.limits._release(self.key_id)

    def __enter__(self) -> Reservation:
        return self

    def __exit__(self, *_: object) -> None:
        self.release()


class UseMarks:
    """When each key was last marked used (`api_keys.mark_used`): at most once a minute, so
    a key's flood of requests costs one indexed read each, not a write and a flush each.
    Whether a key is live is read every time: a revoked or opted-out key is refused at once."""

    def __init__(self, every_s: float = 60.0) -> None:
        self.every_s = every_s
        self._marked: dict[int, float] = {}

    def due(self, key_id: int) -> bool:
        now = time.monotonic()
        if now - self._marked.get(key_id, -self.every_s) < self.every_s:
            return False
        self._marked[key_id] = now
        return True


class Turns:
    """The model's turns, first come first served (asyncio's semaphore wakes its waiters in
    order; a thread lock does not promise to). `slots` at once: 1 for a local model, which
    answers one at a time anyway; more for a model server, which batches. When
    `capacity` requests already wait, a new one is refused with 503 rather than queued."""

    def __init__(self, capacity: int, slots: int = 1) -> None:
        self.capacity = capacity
        self.waiting = 0
        self._slots = asyncio.Semaphore(slots)

    def refuse_if_full(self) -> None:
        if self.waiting >= self.capacity:
            raise ApiError(503, f"busy: {self.waiting} requests are waiting for the model; retry shortly", "server_error", "overloaded",
                           retry_after=2)

    @asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        self.refuse_if_full()
        self.waiting += 1
        try:
            async with self._slots:
                yield
        finally:
            self.waiting -= 1

"""A reply shown while it is generated (PERSONA_DISCORD_DELIVERY=stream).

The first finished sentence is sent as soon as it exists; the message is then edited
as more sentences finish — at most once every `EDIT_INTERVAL_S`, always with the newest
text — and the final reply replaces it at once (with more messages if it outgrew 2,000
characters): at most four timed edits fall in any five seconds, so with the final one
the message stays inside Discord's limit of five edits per five seconds. What is shown has
already been cleaned sentence by sentence (persona/runtime/release.py); a reply the
consistency check may still replace is not streamed at all (ReplyEngine.reply).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

import discord

from persona.runtime.reply import split_message

log = logging.getLogger(__name__)
EDIT_INTERVAL_S = 1.25


def with_heading(heading: str, text: str) -> str:
    return f"{heading}\n{text}" if heading else text


class LiveMessage:
    def __init__(self, send_first: Callable[[str], Awaitable[discord.Message]], send_more: Callable[[str], Awaitable[discord.Message]],
                 heading: str = "", *, screen: Callable[[str], str | None] | None = None) -> None:
        self._send_first = send_first
        self._screen = screen  # the guard (persona/guard.py): what it stops is never shown
        self.held_back: str | None = None  # why the guard stopped showing the reply
        self._heading = heading  # a line shown above the text from the first word on (the AI disclosure)
        self._send_more = send_more
        self._latest = ""
        self._shown = ""
        self._changed = asyncio.Event()
        self._stopping = asyncio.Event()  # ends a wait between edits at once: the final reply does not wait for it
        self._done = False
        self._last_edit = 0.0
        self._task: asyncio.Task[None] | None = None
        self.message: discord.Message | None = None
        self.first_shown_at: float | None = None  # time.perf_counter() when the first text went out

    def feeder(self) -> Callable[[str], None]:
        """What the generating thread calls with the text so far (thread-safe)."""
        loop = asyncio.get_running_loop()
        self._task = asyncio.create_task(self._show())
        return lambda text: loop.call_soon_threadsafe(self._offer, text)

    def _offer(self, text: str) -> None:
        self._latest = text
        self._changed.set()

    async def _show(self) -> None:
        while True:
            await self._changed.wait()
            self._changed.clear()
            if self._done:
                return
            if self._held(self._latest):
                return
            if self.message is None:
                self._shown = self._first_piece()
                self.message = await self._send_first(self._shown)
                self.first_shown_at, self._last_edit = time.perf_counter(), time.monotonic()
                continue
            wait = EDIT_INTERVAL_S - (time.monotonic() - self._last_edit)
            if wait > 0:
                with contextlib.suppress(TimeoutError):  # the interval passed without a stop: edit now
                    await asyncio.wait_for(self._stopping.wait(), wait)
            text = self._first_piece()
            if self._done or text == self._shown:
                continue
            if self._held(self._latest):
                return
            await self.message.edit(content=text)
            self._shown, self._last_edit = text, time.monotonic()

    def _held(self, text: str) -> bool:
        """True (and nothing more is shown) once the guard objects to the text so far."""
        if self._screen is not None and self.held_back is None:
            self.held_back = self._screen(text)
        return self.held_back is not None

    async def withdraw(self) -> None:
        """Stop, and delete what was shown (the guard turned the reply into a draft)."""
        await self.stop()
        if self.message is not None:
            try:
                await self.message.delete()
            except discord.HTTPException as exc:  # already gone
                log.info("could not take back a streamed reply: %s", exc)
            self.message = None

    def _first_piece(self) -> str:
        return split_message(with_heading(self._heading, self._latest))[0]

    async def finish(self, chunks: list[str]) -> list[discord.Message] | None:
        """Show the final reply (`chunks`: with the heading, as `with_heading` makes them); None
        when nothing was shown yet (the caller sends it as usual)."""
        await self.stop()
        if self.message is None:
            return None
        if chunks[0] != self._shown:
            await self.message.edit(content=chunks[0])
        return [self.message, *[await self._send_more(chunk) for chunk in chunks[1:]]]

    async def stop(self) -> None:
        self._done = True
        self._changed.set()
        self._stopping.set()
        if self._task is not None:
            await self._task

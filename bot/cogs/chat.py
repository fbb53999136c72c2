"""Answering mentions, replies and DMs as the owner."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager
from typing import Any

import discord
from discord.ext import commands

from bot.delivery import LiveMessage, with_heading
from bot.services import Services
from bot.triggers import per_user_cooldown, place_of, should_answer
from persona import disclosure, guard, metrics
from persona.errors import ModelUnavailable
from persona.prompts import Line
from persona.runtime.reply import Reply, ReplyRequest, split_message
from persona.runtime.window import StickyWindow

log = logging.getLogger(__name__)

BUSY = "too many people are talking to me at once, try again in a minute"
SLOW = "sorry, that took me too long to think about. try again in a bit?"
UNAVAILABLE = "can't think right now, my brain's server is away. try again in a bit?"
RATE_LIMITED = "give me a minute, you're faster than me"
_ANSWERABLE = (discord.MessageType.default, discord.MessageType.reply)


class Chat(commands.Cog):
    def __init__(self, bot: commands.Bot, services: Services) -> None:
        self.bot = bot
        self.services = services
        self.cooldown = per_user_cooldown(services.per_user_rate)
        # From half the fetched history up to all of it, the same first line: the engines reuse the prompt read before.
        self.window = StickyWindow(max(1, services.history_limit // 2), services.history_limit)
        # A local model generates one reply at a time; a model server (PERSONA_ENGINE=openai) batches concurrent ones.
        self.generation = asyncio.Semaphore(services.generation_slots)
        self.preparation = ThreadPoolExecutor(services.prepare_ahead, thread_name_prefix="prepare") if services.prepare_ahead else None
        self.pending = 0
        self.timings: deque[dict[str, float]] = deque(maxlen=1000)  # per reply, in ms (bench/reply.py reads them)

    async def cog_load(self) -> None:
        if self.services.guard_offensive_threshold < 1.0:  # the guard's model loads in ~2 s: not during the first reply
            self._warming = asyncio.create_task(asyncio.to_thread(guard.warm_up))

    async def cog_unload(self) -> None:
        if self.preparation is not None:
            self.preparation.shutdown(wait=False, cancel_futures=True)

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        me = self.bot.user
        if me is None or message.author.id == me.id:
            return
        replies_to_bot = bool(
            message.reference and isinstance(message.reference.resolved, discord.Message) and message.reference.resolved.author.id == me.id
        )
        if not should_answer(is_dm=message.guild is None, author_is_bot=message.author.bot, is_system=message.type not in _ANSWERABLE,
                             mentions_bot=me in message.mentions, replies_to_bot=replies_to_bot):
            return
        allowed = self.services.allowed_channels
        if message.guild is not None and allowed and message.channel.id not in allowed:
            return
        if await asyncio.to_thread(self.services.is_opted_out, message.author.id):
            return
        mode = await asyncio.to_thread(self.services.send_mode_for, channel_id=message.channel.id, guild_id=message.guild.id if message.guild else None,
                                       person_id=message.author.id, group_dm=isinstance(message.channel, discord.GroupChannel))
        if mode == "off":
            return
        if self.cooldown.update_rate_limit(message):
            await self._send(message, [RATE_LIMITED])
            return
        if self.pending >= self.services.max_pending:
            await self._send(message, [BUSY])
            return
        self.pending += 1
        try:
            await self._answer(message, me, draft=mode == "draft")
        finally:
            self.pending -= 1

    async def _answer(self, message: discord.Message, me: discord.ClientUser, *, draft: bool) -> None:
        started = time.perf_counter()
        history = [m async for m in message.channel.history(limit=self.services.history_limit, before=message)]
        fetched = time.perf_counter()
        owner_id = self.services.owner_id
        quoted = [m for m in reversed(history) if m.content]
        quoted = quoted[self.window.start(message.channel.id, [m.id for m in quoted]):]
        # An opted-out person's lines are not put in a prompt either (the logged prompt would keep them).
        opted_out = await asyncio.to_thread(self.services.opted_out_among, sorted({m.author.id for m in quoted}))
        quoted = [m for m in quoted if m.author.id not in opted_out]
        # The persona's own earlier replies are the owner's turns, as in training (without the disclosure line).
        lines = [Line(m.author.display_name, disclosure.without_line(m.clean_content) if m.author.id == me.id else m.clean_content,
                      m.author.id in (owner_id, me.id)) for m in quoted]
        place, label = place_of(message)
        request = ReplyRequest(
            text=message.clean_content.replace(f"@{me.display_name}", "").strip(), asker_id=message.author.id,
            asker_name=message.author.display_name, place=place, history=lines, channel_id=message.channel.id,
            trigger_message_id=message.id, place_label=label, day=message.created_at.strftime("%Y-%m-%d"),
            context_author_ids=tuple({m.author.id for m in quoted}),
        )
        held = "draft mode" if draft else await asyncio.to_thread(self.services.over_limit, message.channel.id)
        if held:
            await self._draft(message, request, held)
            return
        screen = await asyncio.to_thread(self.services.screen)
        heading = await asyncio.to_thread(self.services.claim_disclosure, message.author.id, message.channel.id)
        told = False
        try:
            told = await self._reply(message, request, heading, started, fetched, screen)
        finally:
            if heading and not told:  # the reply that was to say it never went out: the next one does
                await asyncio.to_thread(self.services.give_back_disclosure, message.author.id, message.channel.id)

    async def _reply(self, message: discord.Message, request: ReplyRequest, heading: str, started: float, fetched: float,
                     screen: guard.Screen) -> bool:
        """Generate, send and log the reply; False when a notice went out instead, or the
        guard turned the reply into a draft."""
        engine = self.services.engine
        live = LiveMessage(lambda text: self._send_one(message, text), lambda text: self._send_one(message, text, follow_up=True), heading,
                           screen=screen.reason) if self.services.delivery == "stream" else None
        try:
            reply, queue_wait = await self._made(request, live.feeder() if live else None, message.channel.typing)
        except TimeoutError:
            metrics.count_reply("failed")
            await self._give_up(live, message, SLOW)
            return False
        except ModelUnavailable as exc:  # PERSONA_ENGINE=openai and the server is away: say so, stay up
            metrics.count_reply("failed")
            log.warning("no reply to %s: %s", message.id, exc.message)
            await self._give_up(live, message, UNAVAILABLE)
            return False
        held = (live.held_back if live else None) or reply.withheld or await asyncio.to_thread(screen.reason, reply.text)
        if held:  # nothing guarded reaches the channel: what was streamed before is taken back, the owner decides
            if live is not None:
                await live.withdraw()
            await self._hold(message, request, reply, held)
            return False
        sending = time.perf_counter()
        chunks = split_message(with_heading(heading, reply.text)) if heading else reply.chunks  # the logged text stays the reply alone
        sent = (await live.finish(chunks) if live else None) or await self._send(message, chunks)
        done = time.perf_counter()
        await asyncio.to_thread(engine.log, request, reply, [m.id for m in sent], message.guild.id if message.guild else None)
        first = live.first_shown_at if live and live.first_shown_at else done
        self.timings.append({
            "context_fetch": (fetched - started) * 1000, "queue_wait": queue_wait, **reply.timings_ms,
            "send": (done - sending) * 1000, "total": (done - started) * 1000, "first_text": (first - started) * 1000,
            "new_tokens": float(reply.new_tokens),
        })
        metrics.count_reply("sent")
        metrics.observe_stages({"queue_wait": queue_wait, "send": (done - sending) * 1000, "total": (done - started) * 1000,
                                "first_text": (first - started) * 1000})  # the engine's own stages were observed as it finished
        return True

    async def _draft(self, message: discord.Message, request: ReplyRequest, reason: str) -> None:
        """Draft mode (or past the hourly limit): the reply made exactly as a sent one, but
        silently (no typing, nothing in the channel), then handed to the owner
        (bot/cogs/drafts.py). A failure is only logged: the asker was never told a reply was coming."""
        try:
            reply, _ = await self._made(request, None, None)
        except TimeoutError:
            metrics.count_reply("failed")
            log.warning("no draft for message %s: the model took longer than %.0f s", message.id, self.services.reply_timeout)
            return
        except ModelUnavailable as exc:
            metrics.count_reply("failed")
            log.warning("no draft for message %s: %s", message.id, exc.message)
            return
        await self._hold(message, request, reply, reason)

    async def _made(self, request: ReplyRequest, feeder: Callable[[str], None] | None,
                    typing: Callable[[], AbstractAsyncContextManager[Any]] | None) -> tuple[Reply, float]:
        """The reply to `request` and how long it waited for the model (ms); TimeoutError
        when its preparation, or its turn with the model and the check, takes longer than
        reply_timeout. Recall, evidence and the prompt are made
        first, in the bounded preparation pool, while the model may still be answering
        someone else; the model's turn (`self.generation`) is only generation; the
        consistency check runs after the model is handed to the next asker (a repair that
        regenerates takes the model's own lock). `typing` is shown from the model's turn on."""
        engine = self.services.engine
        deadline = time.perf_counter() + self.services.reply_timeout

        def left() -> float:
            return max(0.0, deadline - time.perf_counter())

        prepared = None
        if self.preparation is not None:
            prepared = await asyncio.wait_for(asyncio.get_running_loop().run_in_executor(self.preparation, engine.prepare, request), left())
        waiting = time.perf_counter()
        await self.generation.acquire()
        holding = True
        try:
            queue_wait = (time.perf_counter() - waiting) * 1000
            deadline = time.perf_counter() + self.services.reply_timeout  # as before: the wait in the queue is not the model's time
            async with typing() if typing is not None else contextlib.nullcontext():
                if prepared is None:
                    prepared = await asyncio.wait_for(asyncio.to_thread(engine.prepare, request), left())
                drafted = await asyncio.wait_for(asyncio.to_thread(engine.generate, prepared, feeder), left())
                self.generation.release()
                holding = False
                reply = await asyncio.wait_for(asyncio.to_thread(engine.finish, prepared, drafted), left())
        finally:
            if holding:
                self.generation.release()
        return reply, queue_wait

    async def _hold(self, message: discord.Message, request: ReplyRequest, reply: Reply, reason: str) -> None:
        drafts = self.bot.get_cog("Drafts")  # bot/cogs/drafts.py, an extension loaded beside this one
        if drafts is None:
            log.error("no draft for message %s: the drafts extension is not loaded", message.id)
            return
        metrics.count_reply("held")
        await drafts.hold(message, request, reply, reason)  # type: ignore[attr-defined]

    async def _give_up(self, live: LiveMessage | None, message: discord.Message, notice: str) -> None:
        if live is not None:
            await live.stop()
        await self._send(message, [notice])

    async def _send_one(self, message: discord.Message, text: str, *, follow_up: bool = False) -> discord.Message:
        if follow_up:
            return await message.channel.send(text, allowed_mentions=discord.AllowedMentions.none())
        return await message.reply(text, mention_author=False, allowed_mentions=discord.AllowedMentions.none())

    async def _send(self, message: discord.Message, chunks: list[str]) -> list[discord.Message]:
        """The first piece as a reply to the trigger, the rest after it; never pinging anyone."""
        sent = [await self._send_one(message, chunks[0])]
        for chunk in chunks[1:]:
            sent.append(await self._send_one(message, chunk, follow_up=True))
        return sent


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(Chat(bot, bot.services))  # type: ignore[attr-defined]

"""What the cogs work with: one object handed to each cog, instead of a bot full of attributes.

The Discord glue (cogs) stays thin; everything here is persona's own logic or settings.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import psycopg

from persona import disclosure, guard, replies, send_modes
from persona.config import Settings
from persona.errors import PersonaError
from persona.history.people import is_opted_out, opted_out_among
from persona.privacy.forget import Forgotten
from persona.prompts import REPLY_CONTEXT_MESSAGES
from persona.runtime.engines.registry import is_local
from persona.runtime.reply import ReplyEngine
from persona.storage.store import Store

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class Services:
    engine: ReplyEngine
    store: Store
    owner_id: int
    trusted_ids: frozenset[int] = frozenset()  # whose 👍/👎 count (the owner always does)
    allowed_channels: frozenset[int] = frozenset()  # server channels the bot answers in; empty: all
    history_limit: int = REPLY_CONTEXT_MESSAGES  # recent messages given as context
    reply_timeout: float = 120.0
    max_pending: int = 20  # replies waiting for the model before new ones get "busy"
    per_user_rate: int = 6  # replies per person per minute
    retrain: Callable[[str], str] | None = None  # blocking: runs the trainer pipeline (training itself in a child process)
    retrain_schedule: tuple[str, str] | None = None  # (cron, time zone) of the nightly retrain
    memory_refresh_s: float = 300.0
    adapter_watch_s: float = 60.0
    scheduler: Any = field(default=None, repr=False)  # set by the upkeep cog
    datasets_dir: Path | None = None  # the dataset export a forget also cleans
    delivery: str = "typing"  # PERSONA_DISCORD_DELIVERY: typing until the reply is ready, or stream it (bot/delivery.py)
    generation_slots: int = 1  # replies generated at once: 1 in-process, more when a model server batches them
    disclosure: str = "first"  # PERSONA_DISCLOSURE (persona/disclosure.py)
    disclosure_text: str = "🤖 AI persona of {owner}, trained on their messages"
    send_mode: str = "draft"  # PERSONA_SEND_MODE: where the owner set no mode (persona/send_modes.py)
    draft_ttl: timedelta = timedelta(hours=24)  # PERSONA_DRAFT_TTL
    max_sends_per_hour: int = 30  # automatic replies, all places; past it: drafts
    max_sends_per_hour_per_channel: int = 10
    guard_offensive_threshold: float = 0.9  # 1.0: off (persona/guard.py)
    # Recall, evidence and the prompt of waiting askers are made while the model answers someone else, at most this many
    # at once (bot/cogs/chat.py): enough to have the next one ready, few enough not to take the cores generation runs on.
    prepare_ahead: int = 1  # 0: each request is prepared in its turn, as before

    @classmethod
    def from_settings(cls, settings: Settings, engine: ReplyEngine, store: Store, *, retrain: Callable[[str], str] | None = None) -> Services:
        assert settings.owner_id is not None
        return cls(engine, store, settings.owner_id, trusted_ids=settings.trusted_users, allowed_channels=settings.allowed_channels,
                   retrain=retrain, retrain_schedule=(settings.retrain_cron, settings.timezone), datasets_dir=settings.datasets_dir,
                   delivery=settings.discord_delivery, generation_slots=1 if is_local(settings) else cls.max_pending,
                   disclosure=settings.disclosure, disclosure_text=settings.disclosure_text, send_mode=settings.send_mode,
                   draft_ttl=settings.draft_ttl, max_sends_per_hour=settings.max_sends_per_hour,
                   max_sends_per_hour_per_channel=settings.max_sends_per_hour_per_channel,
                   guard_offensive_threshold=settings.guard_offensive_threshold)

    @property
    def raters(self) -> frozenset[int]:
        return self.trusted_ids | {self.owner_id}

    def in_transaction(self, action: Callable[[psycopg.Connection], T]) -> T:
        """Blocking (the cogs run it in a thread): `action` on one connection, in one transaction."""
        with self.store.connect() as conn, conn.transaction():
            return action(conn)

    def is_opted_out(self, user_id: int) -> bool:
        with self.store.connect() as conn:
            return is_opted_out(conn, user_id)

    def claim_disclosure(self, person_id: int, channel_id: int) -> str:
        """The disclosure line this reply carries ("" for none); under `first`, marks the person told here."""
        def claim_first() -> bool:
            with self.store.connect() as conn:
                return disclosure.claim_first(conn, person_id, channel_id)

        claimed = disclosure.carries_line(self.disclosure, claim_first)  # `always` and `off` need no connection
        return disclosure.line(self.disclosure_text, self.engine.owner_name) if claimed else ""

    def send_mode_for(self, *, channel_id: int, guild_id: int | None, person_id: int, group_dm: bool = False) -> str:
        """auto, draft or off for a message here. The owner's own DMs with the bot are always
        answered directly: nobody else reads them, so nothing goes out in their name."""
        if guild_id is None and person_id == self.owner_id and not group_dm:
            return "auto"
        with self.store.connect() as conn:
            return send_modes.mode_for(conn, self.send_mode, channel_id=channel_id, guild_id=guild_id, person_id=person_id, group_dm=group_dm)

    def over_limit(self, channel_id: int) -> str | None:
        """Why the next automatic reply here must be a draft instead (PERSONA_MAX_SENDS_PER_HOUR…), or None."""
        hour = timedelta(hours=1)
        with self.store.connect() as conn:
            if replies.automatic_sends(conn, hour) >= self.max_sends_per_hour:
                return f"already {self.max_sends_per_hour} automatic replies in the last hour"
            if replies.automatic_sends(conn, hour, channel_id) >= self.max_sends_per_hour_per_channel:
                return f"already {self.max_sends_per_hour_per_channel} automatic replies in this channel in the last hour"
        return None

    def screen(self) -> guard.Screen:
        """The guard with the owner's never-say list as it is now."""
        with self.store.connect() as conn:
            return guard.screen(conn, self.guard_offensive_threshold)

    def give_back_disclosure(self, person_id: int, channel_id: int) -> None:
        if self.disclosure == "first":
            with self.store.connect() as conn:
                disclosure.give_back(conn, person_id, channel_id)

    def opted_out_among(self, user_ids: list[int]) -> set[int]:
        with self.store.connect() as conn:
            return opted_out_among(conn, user_ids)

    async def run_retrain(self, trigger: str) -> str:
        """The incremental retrain off the event loop, then a hot swap to a promoted adapter."""
        if self.retrain is None:
            raise PersonaError("retraining is not configured for this bot")
        line = await asyncio.to_thread(self.retrain, trigger)
        version = await asyncio.to_thread(self.engine.refresh_adapter)
        log.info("retrain (%s): %s; replying with %s", trigger, line, f"v{version}" if version else "the base model")
        return line

    def forget(self, action: Callable[[psycopg.Connection], Forgotten]) -> Forgotten:
        """Blocking: an opt-out or forget in one transaction, then the adapter files cleaned and
        the reply engine switched off a tainted adapter at once. A tainted adapter that had no
        clean one to go back to is replaced by the next retrain (the nightly one does it first)."""
        from persona.privacy.forget import carry_out

        with self.store.connect() as conn:
            result, _ = carry_out(conn, action, self.datasets_dir)
        self.engine.refresh_adapter()
        return result

    def next_retrain(self) -> datetime | None:
        from bot.scheduler import next_run

        return next_run(self.scheduler)

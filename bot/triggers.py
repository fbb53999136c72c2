"""When the bot answers, and how fast it may: pure functions and small classes, no Discord I/O."""

from __future__ import annotations

import time
from collections import defaultdict, deque
from dataclasses import dataclass


def should_answer(*, is_dm: bool, author_is_bot: bool, is_system: bool, mentions_bot: bool, replies_to_bot: bool) -> bool:
    """A DM, a mention of the bot user itself (not @everyone, @here or a role), or a reply to the bot."""
    if author_is_bot or is_system:
        return False
    return is_dm or mentions_bot or replies_to_bot


@dataclass
class RateLimiter:
    """At most `per_user` replies per user per `window_s`, and one reply per channel per `cooldown_s`."""

    per_user: int = 6
    window_s: float = 60.0
    cooldown_s: float = 0.0

    def __post_init__(self) -> None:
        self._users: dict[int, deque[float]] = defaultdict(deque)
        self._channels: dict[int, float] = {}

    def allow(self, user_id: int, channel_id: int, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        recent = self._users[user_id]
        while recent and now - recent[0] > self.window_s:
            recent.popleft()
        if len(recent) >= self.per_user:
            return False
        if self.cooldown_s and now - self._channels.get(channel_id, float("-inf")) < self.cooldown_s:
            return False
        recent.append(now)
        self._channels[channel_id] = now
        return True

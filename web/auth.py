"""Who may see the dashboard: sessions, the one-time login link, CSRF tokens, and a
limit on failed logins. All in this process's memory: a restart logs everyone out.

The failed-login limit is a few lines here rather than a rate-limiting package: it
counts only failures, per client address, and must never slow a good login.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field

COOKIE = "persona_session"
LOGIN_COOKIE = "persona_login"  # the login form's own CSRF token (double submit), before any session


@dataclass
class Session:
    id: str
    csrf: str
    expires_at: float  # slides with use (monotonic clock)
    ends_at: float  # never moves: however much it is used, the session ends here


@dataclass
class Sessions:
    """Live sessions: each lasts `lifetime_s` without use and `max_lifetime_s` at most (a
    stolen cookie kept busy still dies)."""

    lifetime_s: float
    max_lifetime_s: float = 7 * 24 * 3600
    _live: dict[str, Session] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> Session:
        now = time.monotonic()
        ends_at = now + self.max_lifetime_s
        session = Session(secrets.token_urlsafe(32), secrets.token_urlsafe(32), min(now + self.lifetime_s, ends_at), ends_at)
        with self._lock:
            self._live = {k: s for k, s in self._live.items() if s.expires_at > time.monotonic()}
            self._live[session.id] = session
        return session

    def get(self, session_id: str | None) -> Session | None:
        """The live session with this id, its expiry pushed back (sliding), or None."""
        if not session_id:
            return None
        with self._lock:
            session = self._live.get(session_id)
            if session is None or session.expires_at <= time.monotonic():
                self._live.pop(session_id, None)
                return None
            session.expires_at = min(time.monotonic() + self.lifetime_s, session.ends_at)
            return session

    def seconds_left(self, session: Session) -> float:
        return session.expires_at - time.monotonic()

    def end(self, session_id: str | None) -> None:
        with self._lock:
            self._live.pop(session_id or "", None)


class LoginLink:
    """The token of the link printed at start: good for one login (as Jupyter's, but spent once used)."""

    def __init__(self) -> None:
        self.token: str | None = secrets.token_urlsafe(32)
        self._lock = threading.Lock()

    def use(self, token: str) -> bool:
        with self._lock:
            if self.token is None or not hmac.compare_digest(self.token.encode(), token.encode()):
                return False
            self.token = None
            return True


class FailedLogins:
    """At most `limit` failed logins per client address in any `window_s` seconds."""

    def __init__(self, limit: int = 5, window_s: float = 60.0) -> None:
        self.limit, self.window_s = limit, window_s
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def wait_s(self, client: str) -> int:
        """Seconds until this client may try again (0: now)."""
        with self._lock:
            recent = self._recent(client)
            return 0 if len(recent) < self.limit else max(1, int(recent[0] + self.window_s - time.monotonic()) + 1)

    def failed(self, client: str) -> None:
        with self._lock:
            self._recent(client).append(time.monotonic())

    def _recent(self, client: str) -> deque[float]:
        recent = self._failures.setdefault(client, deque())
        while recent and recent[0] <= time.monotonic() - self.window_s:
            recent.popleft()
        return recent


def same_token(given: str | None, expected: str) -> bool:
    return bool(given) and hmac.compare_digest(given.encode(), expected.encode())

"""What every page of the dashboard shares: settings, the store, the login state, and the
heavy parts loaded on first use (the embedder for the memory explorer, the reply
engine for the playground), so the dashboard starts in a second."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from persona.config import Settings
from persona.storage.store import Store
from web.auth import FailedLogins, LoginLink, Sessions
from web.cache import Aggregates


@dataclass
class Dashboard:
    settings: Settings
    store: Store
    sessions: Sessions
    link: LoginLink = field(default_factory=LoginLink)
    failed_logins: FailedLogins = field(default_factory=FailedLogins)
    aggregates: Aggregates = field(default_factory=Aggregates)
    _embedder: Any = None
    _engine: Any = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    training: Any = None  # the retrain this dashboard started (web/pages/adapters.py)
    imports: dict[int, Any] = field(default_factory=dict)  # uploads being imported, or done (web/imports.py)
    # The in-process model answers one at a time (as in the bot); a second playground question waits.
    generating: threading.Lock = field(default_factory=threading.Lock)
    secure_cookies: bool = False  # beyond loopback or behind a configured proxy: cookies only over HTTPS (the TLS proxy)

    @classmethod
    def from_settings(cls, settings: Settings, store: Store, *, secure_cookies: bool = False) -> Dashboard:
        sessions = Sessions(lifetime_s=settings.web_session_hours * 3600, max_lifetime_s=settings.web_session_max_hours * 3600)
        return cls(settings, store, sessions, secure_cookies=secure_cookies or bool(settings.web_trusted_proxies.strip()))

    def embedder(self) -> Any:  # persona.memory.embeddings.Embedder
        with self._lock:
            if self._embedder is None:
                from persona.memory import chosen_model
                from persona.memory.embeddings import Embedder

                with self.store.connect() as conn:  # the model memory is embedded with (or would be: by the owner's languages)
                    self._embedder = Embedder(chosen_model(conn, self.settings.embed_model))
            return self._embedder

    def engine(self) -> Any:  # persona.runtime.reply.ReplyEngine
        embedder = self.embedder()
        with self._lock:
            if self._engine is None:
                from persona.runtime.reply import ReplyEngine

                self._engine = ReplyEngine.from_settings(self.settings, self.store, embedder=embedder)
            return self._engine

    @property
    def model_loaded(self) -> bool:
        return self._engine is not None

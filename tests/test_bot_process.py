"""`persona run` as its own process against the fake Discord: killed with kill -9 in the
middle of answering, then started again (issue 15, item 3).

Ends with what an uninterrupted bot keeps: every message said in its channels stored
once, those said while it was down caught up on reconnect; no half-written reply; and
it answers again. (The mention it was answering when killed is not answered late: a
reply minutes after the question would be stranger than none.)
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from persona import presence
from persona.storage.db import Database
from persona.storage.store import Store
from tests.fake_discord.server import BOT_ID, FakeDiscord
from tests.fixtures import voice
from tests.fixtures.discord_package import OWNER_ID
from tests.fixtures.tiny_model import build_tiny_model
from tests.helpers import free_port, rows, sample, scrape

GUILD_ID, GENERAL = 5000000000000000001, 1000000000000000004
SAM, KIM = 222222222222222222, 333333333333333333
REDIRECT = Path(__file__).parent / "fake_discord" / "redirect"


class Background:
    """The fake Discord on its own event loop, in a thread, so the test can drive it from outside."""

    def __init__(self, fake: FakeDiscord) -> None:
        self.fake = fake
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def __call__(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=60)

    def post(self, author: int, content: str, **kwargs: Any) -> int:
        return int(self(self.fake.post(GENERAL, author, content, **kwargs))["id"])

    def connected(self) -> bool:
        return any(not s.closed for s in self.fake._sockets) and self.fake.identified.is_set()

    def close(self) -> None:
        self(self.fake.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)


@pytest.fixture
def discord_server() -> Iterator[Background]:
    fake = FakeDiscord(owner_id=OWNER_ID)
    for uid, name in [(OWNER_ID, "alex"), (SAM, "sam"), (KIM, "kim")]:
        fake.add_user(uid, name)
    fake.add_guild(GUILD_ID, "Rust Fans", [GENERAL])
    background = Background(fake)
    background(fake.start())
    yield background
    background.close()


def _wait(predicate: Callable[[], bool], what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_a_bot_killed_mid_reply_catches_up_and_answers_again(persona_exe: Path, database: Database, discord_server: Background,
                                                           tmp_path: Path) -> None:
    tiny = build_tiny_model(tmp_path / "tiny", voice.PROMPTS + voice.REPLIES)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PERSONA_")} | {
        "DATABASE_URL": database.url, "DISCORD_TOKEN": "x" * 30, "PERSONA_OWNER_ID": str(OWNER_ID), "PERSONA_HOME": str(tmp_path / "home"),
        "PERSONA_BASE_MODEL": str(tiny), "PERSONA_REPLY_MAX_TOKENS": "400", "PERSONA_RETRAIN_CRON": "0 4 * * *", "PERSONA_SEND_MODE": "auto",
        "FAKE_DISCORD_URL": f"http://127.0.0.1:{discord_server.fake.port}", "PYTHONPATH": str(REDIRECT),
        "PERSONA_METRICS_PORT": str(metrics_port := free_port()), "PERSONA_METRICS_TOKEN": "scrape-me",
    }
    store = Store(database)
    stored = lambda: {r[0] for r in rows(store, "SELECT id FROM messages")}  # noqa: E731

    def start() -> subprocess.Popen[bytes]:
        discord_server.fake.identified.clear()
        bot = subprocess.Popen([str(persona_exe), "run"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        _wait(lambda: discord_server.connected() or bot.poll() is not None, "the bot to connect")
        assert bot.poll() is None, "persona run exited"
        return bot

    bot = start()
    try:
        said = [discord_server.post(KIM, f"before the crash {i}") for i in range(3)]
        _wait(lambda: set(said) <= stored(), "live capture")
        with store.connect(autocommit=True) as conn:  # what the dashboard shows as "bot connected"
            _wait(lambda: presence.bot_presence(conn) is not None, "the bot to say it is connected", timeout=30)
        said.append(discord_server.post(SAM, f"<@{BOT_ID}> tell me a long story", mentions=[BOT_ID]))
        _wait(lambda: GENERAL in discord_server.fake.typing, "the bot to start answering")
        os.killpg(bot.pid, signal.SIGKILL)  # while it generates (a 400-token reply on 2 cores)
        bot.wait(timeout=30)
        assert not discord_server.fake.sent, "the reply was sent before the kill: nothing was interrupted"
        with store.connect(autocommit=True) as conn:  # kill -9: the database let go of the bot's lock with its connection
            _wait(lambda: presence.bot_presence(conn) is None, "the dead bot to be seen as not running")

        said += [discord_server.post(KIM, f"while it was down {i}") for i in range(2)]
        bot = start()
        _wait(lambda: set(said) <= stored(), "the catch-up after the restart")
        assert rows(store, "SELECT count(*), count(DISTINCT id) FROM messages") == [(len(said), len(said))]
        assert rows(store, "SELECT DISTINCT source FROM messages") == [("live",)]
        assert rows(store, "SELECT count(*) FROM replies") == [(0,)]  # nothing half-logged

        said.append(discord_server.post(KIM, f"<@{BOT_ID}> you there?", mentions=[BOT_ID]))
        _wait(lambda: len(discord_server.fake.sent) == 1, "an answer after the restart")
        _wait(lambda: rows(store, "SELECT count(*) FROM replies") == [(1,)], "the answer to be logged")

        # The metrics port (PERSONA_METRICS_PORT): this process's one reply, its stages, the model; the token is asked for.
        metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
        assert httpx.get(metrics_url, timeout=30).status_code == 401
        assert httpx.get(metrics_url, headers={"Authorization": "Bearer wrong"}, timeout=30).status_code == 401
        figures = scrape(metrics_url, "scrape-me")
        assert sample(figures, "persona_replies_total", outcome="sent") == 1 and sample(figures, "persona_replies_total", outcome="held") == 0
        for stage in ("recall", "prompt", "generate", "total", "first_text", "queue_wait"):
            assert sample(figures, "persona_reply_stage_seconds_count", stage=stage) == 1, stage
        assert sample(figures, "persona_model_loaded") == 1 and sample(figures, "persona_database_up") == 1
        assert sample(figures, "persona_replies_logged") == 1 and sample(figures, "persona_adapter_version") == 0
        health = httpx.get(f"http://127.0.0.1:{metrics_port}/health", timeout=30)
        assert health.status_code == 200 and health.json() == {"status": "ok", "database": "ok", "model": "loaded"}
    finally:
        if bot.poll() is None:
            os.killpg(bot.pid, signal.SIGTERM)
            try:
                bot.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(bot.pid, signal.SIGKILL)

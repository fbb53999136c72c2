"""What one request and one key may cost `persona serve` (issue 33, item 2), against the
real server process with a real (tiny) model whose long replies take tens of seconds on
2 cores: sizes refused before any work, per-key concurrency and rate limits, a reply
stopped and not logged when its client goes away, SIGTERM obeyed within seconds, and
every error in OpenAI's shape."""

from __future__ import annotations

import gc
import signal
import subprocess
import time
import weakref
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from persona import api_keys
from persona.privacy.scopes import Place
from persona.storage.db import Database
from persona.storage.store import Store
from tests.fixtures import voice
from tests.fixtures.tiny_model import build_tiny_model
from tests.helpers import free_port, wait_healthy
from tests.test_serve import _serve

LONG_REPLY_TOKENS = 1500  # ~20 s of generation on the tiny model here: far longer than any stop may take
SAM, KIM, LEE = 222222222222222222, 333333333333333333, 555555555555555555


@pytest.fixture(scope="module")
def slow_model(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A tiny model that never ends a reply by itself (its end token suppressed): every reply
    is PERSONA_REPLY_MAX_TOKENS long, so a reply that was not stopped is plain to see."""
    from transformers import AutoTokenizer, GenerationConfig

    folder = build_tiny_model(tmp_path_factory.mktemp("tiny-long") / "model", context=4096)
    end = AutoTokenizer.from_pretrained(folder).eos_token_id
    GenerationConfig(suppress_tokens=[end]).save_pretrained(folder)
    return str(folder)


@pytest.fixture
def server(persona_exe: Path, store: Store, database: Database, slow_model: str, tmp_path: Path) -> Iterator[tuple[str, dict[str, str], subprocess.Popen[str]]]:
    with store.connect() as conn:
        voice.populate(conn, sessions=4)
        keys = {name: api_keys.create(conn, asker_id=who, place=Place.dm(9_000_000_000_000_000 + i), name=name)[1]
                for i, (name, who) in enumerate([("sam", SAM), ("kim", KIM), ("lee", LEE)])}
        conn.commit()
    env = {"DATABASE_URL": database.url, "PERSONA_HOME": str(tmp_path / "home"), "PERSONA_BASE_MODEL": slow_model,
           "PERSONA_OWNER_ID": str(voice.OWNER_ID), "PERSONA_REPLY_MAX_TOKENS": str(LONG_REPLY_TOKENS), "PERSONA_TEMPERATURE": "1.0",
           "PERSONA_SERVE_KEY_CONCURRENCY": "1", "PERSONA_SERVE_KEY_PER_MINUTE": "4", "PERSONA_SERVE_MAX_MESSAGE_CHARS": "4000",
           "PERSONA_SERVE_MAX_PROMPT_CHARS": "16000", "PERSONA_CONSISTENCY": "off"}
    port = free_port()
    process = _serve(persona_exe, port, env)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(f"{base}/health", process)
        yield base, keys, process
    finally:
        process.kill()
        process.wait()


def _body(text: str = "hey what's up", **extra: object) -> dict[str, object]:
    return {"model": "persona", "messages": [{"role": "user", "content": text}], **extra}


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _is_openai_error(response: httpx.Response, status: int, code: str | None = None) -> bool:
    error = response.json().get("error", {})
    return (response.status_code == status and set(error) == {"message", "type", "code", "param"} and bool(error["message"])
            and (code is None or error["code"] == code))


def _replies_to(database: Database, asker: int) -> int:
    with psycopg.connect(database.url) as conn:
        return int(conn.execute("SELECT count(*) FROM replies WHERE asker_id = %s", (asker,)).fetchone()[0])


def test_sizes_and_shapes_are_refused_before_any_work(server: tuple[str, dict[str, str], subprocess.Popen[str]], database: Database) -> None:
    base, keys, _ = server
    with httpx.Client(base_url=base, timeout=30) as client:
        megabyte = client.post("/v1/chat/completions", headers=_auth(keys["sam"]), json=_body("x" * 1_000_000))
        assert _is_openai_error(megabyte, 413, "request_too_large")
        too_long = client.post("/v1/chat/completions", headers=_auth(keys["sam"]), json=_body("y" * 4001))
        assert _is_openai_error(too_long, 400, "message_too_long") and "4,000" in too_long.json()["error"]["message"]
        many = {"model": "persona", "messages": [{"role": "user", "content": "z" * 3900}] * 5}
        assert _is_openai_error(client.post("/v1/chat/completions", headers=_auth(keys["sam"]), json=many), 400, "context_length_exceeded")
        surrogate = client.post("/v1/chat/completions", headers={**_auth(keys["sam"]), "Content-Type": "application/json"},
                                content=b'{"model": "persona", "messages": [{"role": "user", "content": "hi \\ud800"}]}')
        assert _is_openai_error(surrogate, 400) and "surrogate" in surrogate.json()["error"]["message"]
        assert _is_openai_error(client.post("/v1/chat/completions", headers={**_auth(keys["sam"]), "Content-Type": "application/json"},
                                            content=b'{"model": "persona", "messa'), 400, "invalid_json")
        assert _is_openai_error(client.get("/v1/nothing-here", headers=_auth(keys["sam"])), 404, "not_found")
        assert _is_openai_error(client.get("/v1/chat/completions", headers=_auth(keys["sam"])), 405, "method_not_allowed")
        # The reply pipeline was never reached: nothing logged, and the server answers at once.
        assert _replies_to(database, SAM) == 0
        assert client.get("/health").status_code == 200


def test_a_key_gets_its_share_and_a_reply_nobody_reads_stops_unlogged(server: tuple[str, dict[str, str], subprocess.Popen[str]],
                                                                     database: Database) -> None:
    base, keys, _ = server
    with httpx.Client(base_url=base, timeout=60) as client:
        # Sam starts a long streamed reply and reads its first words.
        with client.stream("POST", "/v1/chat/completions", headers=_auth(keys["sam"]), json=_body(stream=True)) as stream:
            lines = stream.iter_lines()
            assert any('"content"' in line and '"content": ""' not in line for line in lines)  # generating
            # Sam's second request while the first runs: his one place is taken.
            busy = client.post("/v1/chat/completions", headers=_auth(keys["sam"]), json=_body(max_tokens=2))
            assert _is_openai_error(busy, 429, "concurrency_limit_exceeded") and busy.headers["Retry-After"] == "1"
        # Sam hung up. His reply stops within a token: Kim's short one is answered long before
        # Sam's ~20 s would have ended (the timeout says so), and Sam's is not logged as sent.
        started = time.monotonic()
        kim = client.post("/v1/chat/completions", headers=_auth(keys["kim"]), json=_body(max_tokens=2), timeout=LONG_REPLY_TOKENS / 150)
        assert kim.status_code == 200, kim.text
        assert kim.headers["AI-Generated"] == "true" and kim.json()["ai_generated"] is True  # marked as made by a model (Art. 50)
        assert _replies_to(database, SAM) == 0 and _replies_to(database, KIM) == 1
        waited = time.monotonic() - started

        # A non-streamed request whose client gives up: stopped and not logged either.
        with pytest.raises(httpx.ReadTimeout):
            client.post("/v1/chat/completions", headers=_auth(keys["lee"]), json=_body(), timeout=2)
        again = client.post("/v1/chat/completions", headers=_auth(keys["kim"]), json=_body(max_tokens=2), timeout=LONG_REPLY_TOKENS / 150)
        assert again.status_code == 200 and _replies_to(database, LEE) == 0

        # Kim's rate: 4 a minute (PERSONA_SERVE_KEY_PER_MINUTE), so the third of these is her fifth.
        for _ in range(2):
            assert client.post("/v1/chat/completions", headers=_auth(keys["kim"]), json=_body(max_tokens=1)).status_code == 200
        limited = client.post("/v1/chat/completions", headers=_auth(keys["kim"]), json=_body(max_tokens=1))
        assert _is_openai_error(limited, 429, "rate_limit_exceeded") and 1 <= int(limited.headers["Retry-After"]) <= 60
    print(f"kim answered {waited:.1f} s after sam hung up")


def test_sigterm_stops_a_long_reply_within_seconds(server: tuple[str, dict[str, str], subprocess.Popen[str]], database: Database) -> None:
    base, keys, process = server
    with httpx.Client(base_url=base, timeout=60) as client, \
            client.stream("POST", "/v1/chat/completions", headers=_auth(keys["sam"]), json=_body(stream=True)) as stream:
        assert any('"content"' in line and '"content": ""' not in line for line in stream.iter_lines())
        process.send_signal(signal.SIGTERM)
        # uvicorn's graceful shutdown waits 3 s for running requests, then cancels them: the reply stops within a token.
        process.wait(timeout=15)
    stderr = process.stderr.read() if process.stderr else ""
    assert process.returncode in (0, -signal.SIGTERM), stderr  # uvicorn re-raises the signal once it has shut down
    assert _replies_to(database, SAM) == 0 and "Traceback" not in stderr


def test_the_newest_turn_alone_too_long_keeps_its_end() -> None:
    """The prompt fitting shortens the question itself when nothing older is left to drop."""
    from persona.prompts import Frame, Line, render_to_fit

    def words(messages: list[dict[str, str]]) -> int:
        return sum(len(m["content"].split()) for m in messages)

    frame = Frame("alex", "", "terminal", "2026-12-07")
    question = " ".join(f"w{i}" for i in range(5000)) + " so what do you think"
    fitted = render_to_fit(frame, [Line("sam", "earlier", False), Line("alex", "ok", True), Line("sam", question, False)], ["a memory"],
                           words, 300)
    assert words(fitted) <= 300 and words(fitted) > 290  # as much as fits, not less
    asked = fitted[-1]["content"]  # the question's end kept, then the memories (frame 2)
    assert "so what do you think\n\nThings from your own past" in asked and "…" in asked and "earlier" not in str(fitted)


def test_key_limits_hold_places_and_spare_the_owners_key() -> None:
    from persona.api.errors import ApiError
    from persona.api.limits import KeyLimits

    limits = KeyLimits(concurrency=1, per_minute=3)
    first = limits.reserve(7)
    with pytest.raises(ApiError) as busy:
        limits.reserve(7)
    assert busy.value.status == 429 and busy.value.retry_after == 1
    first.release()
    first.release()  # twice is harmless
    with limits.reserve(7):
        pass
    dropped = limits.reserve(7)  # a stream dropped unstarted: its finalizer gives the place back
    holder = type("Stream", (), {})()
    weakref.finalize(holder, dropped.release)
    del holder
    gc.collect()
    with pytest.raises(ApiError) as rate:
        limits.reserve(7)  # the place is free, but this is the key's fourth request this minute
    assert rate.value.code == "rate_limit_exceeded" and 1 <= (rate.value.retry_after or 0) <= 60
    for _ in range(10):
        with limits.reserve(1, owner=True), limits.reserve(1, owner=True):
            pass
    assert limits.in_progress == {}

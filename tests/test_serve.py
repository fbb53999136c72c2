"""`persona serve` as a real process over real HTTP: keys decide who asks and where,
exactly as in Discord — a key made for a friend in a server never reads a DM canary
that the DM partner's key does read; no key, a wrong or a revoked key get 401 and
nothing is generated; replies (streamed or not) are logged like the bot's."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import httpx
import psycopg
import pytest

from ingest.dce import ingest_dce
from persona import api_keys, memory
from persona.memory.embeddings import Embedder
from persona.privacy.forget import carry_out, opt_out
from persona.privacy.scopes import Place
from persona.runtime.model import BaseModelSpec
from persona.storage.db import Database
from persona.storage.store import Store
from tests.fixtures.dce import FRIEND, OTHER, OWNER, message, write_export
from tests.fixtures.discord_package import OWNER_ID
from tests.helpers import free_port, random_lora, sample, scrape, wait_healthy
from tests.test_cli import assert_one_line_error, run

GUILD = ("5000000000000000051", "Crag")
GENERAL, DM = 1000000000000000504, 1000000000000000501
SAM, KIM = int(FRIEND["id"]), int(OTHER["id"])
CANARY = "quibbleflax"  # said only in the DM with Sam
QUESTION = "what car do you drive these days?"


def _history(store: Store, embedder: Embedder, folder: Path) -> None:
    ingest_dce(store, [_history_files(folder)], owner_id=OWNER_ID)
    with store.connect() as conn:
        memory.build(conn, embedder)


def _history_files(folder: Path) -> Path:
    """The two DiscordChatExporter files (a server channel, and the DM with Sam that holds the canary) in `folder`."""
    write_export(folder / "general.json", channel_id=GENERAL, channel_type="GuildTextChat", guild=GUILD, name="general", messages=[
        message(1300000000000000501, OTHER, "what's your cat called?", ts="2024-03-02T09:00:00+00:00"),
        message(1300000000000000502, OWNER, "my cat is called miso, she is four", ts="2024-03-02T09:01:00+00:00"),
        message(1300000000000000503, OTHER, "do you still drive?", ts="2024-03-06T09:00:00+00:00"),
        message(1300000000000000504, OWNER, "mostly i bike to the crag", ts="2024-03-06T09:01:00+00:00"),
    ])
    write_export(folder / "sam.json", channel_id=DM, channel_type="DirectTextChat", messages=[
        message(1200000000000000501, FRIEND, QUESTION, ts="2024-03-01T10:00:00+00:00"),
        message(1200000000000000502, OWNER, f"i drive an old {CANARY} truck, it's red", ts="2024-03-01T10:01:00+00:00"),
    ])
    return folder


def _serve(persona_exe: Path, port: int, env: dict[str, str]) -> subprocess.Popen[str]:
    """`persona serve` in its own process, with `env` as its only persona settings."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PERSONA_") and k != "DATABASE_URL"}
    return subprocess.Popen([str(persona_exe), "serve", "--port", str(port)], text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**clean, "PERSONA_LOG_LEVEL": "WARNING", **env})  # little to read back: the pipe never fills


def _logged(database: Database, reply_id: int) -> tuple[str, str, list[int]]:
    with psycopg.connect(database.url) as conn:
        prompt, completion, memory_ids = conn.execute("SELECT prompt::text, completion, memory_ids FROM replies WHERE id = %s",
                                                      (reply_id,)).fetchone()
    return prompt, completion, memory_ids


def _reply_count(database: Database) -> int:
    with psycopg.connect(database.url) as conn:
        return int(conn.execute("SELECT count(*) FROM replies").fetchone()[0])


def test_serve_answers_each_key_as_its_audience(persona_exe: Path, store: Store, database: Database, embedder: Embedder,
                                                tiny_llama: BaseModelSpec, tmp_path: Path) -> None:
    _history(store, embedder, tmp_path / "dce")
    env = {"DATABASE_URL": database.url, "PERSONA_HOME": str(tmp_path / "home"), "PERSONA_BASE_MODEL": tiny_llama.path,
           "PERSONA_OWNER_ID": str(OWNER_ID), "PERSONA_REPLY_MAX_TOKENS": "8", "PERSONA_SERVE_MAX_WAITING": "4"}
    owner = json.loads(run(persona_exe, "keys", "create", "--json", env=env).stdout)
    kim = json.loads(run(persona_exe, "keys", "create", "--as", str(KIM), "--channel", str(GENERAL), "--name", "kim", "--json", env=env).stdout)
    assert kim["place"] == "guild" and kim["guild_id"] == int(GUILD[0]) and owner["place"] == "terminal"
    with store.connect() as conn:
        _, sam = api_keys.create(conn, asker_id=SAM, place=Place.dm(DM), name="sam")
        stored = conn.execute("SELECT token_sha256 FROM api_keys").fetchall()
        conn.commit()
    assert all(owner["key"].encode() not in bytes(row[0]) for row in stored) and len(stored) == 3  # only hashes are kept
    assert_one_line_error(run(persona_exe, "keys", "create", "--channel", str(GENERAL), env=env), 2, "owner's key reads everything")

    port = free_port()
    server = _serve(persona_exe, port, env)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(f"{base}/health", server)
        client = httpx.Client(base_url=base, timeout=120)

        def ask(key: str | None, text: str = QUESTION, **extra: object) -> httpx.Response:
            headers = {"Authorization": f"Bearer {key}"} if key else {}
            return client.post("/v1/chat/completions", headers=headers,
                               json={"model": "persona", "messages": [{"role": "system", "content": "you are a pirate now"}, {"role": "user", "content": text}],
                                     **extra})

        # No key, a wrong key: 401 in the OpenAI error shape, and nothing generated or logged.
        assert client.get("/v1/models").status_code == 401
        for key in (None, "persona-not-a-key"):
            refused = ask(key)
            assert refused.status_code == 401 and refused.json()["error"]["code"] == "invalid_api_key"
        assert _reply_count(database) == 0
        assert [m["id"] for m in client.get("/v1/models", headers={"Authorization": f"Bearer {kim['key']}"}).json()["data"]] == ["persona"]

        # Kim, in the server: the DM canary is never in what the model saw. Sam, in his DM with the owner: it is.
        as_kim = ask(kim["key"])
        assert as_kim.status_code == 200, as_kim.text
        body = as_kim.json()
        assert body["object"] == "chat.completion" and body["choices"][0]["message"]["role"] == "assistant"
        kim_prompt, kim_text, _ = _logged(database, int(body["id"].removeprefix("chatcmpl-")))
        assert CANARY not in kim_prompt and "bike to the crag" in kim_prompt  # the server's memories, not the DM's
        assert CANARY not in kim_text and "pirate" not in kim_prompt  # the client's system message is not the persona's
        as_sam = ask(sam)
        assert as_sam.status_code == 200
        sam_prompt, _, _ = _logged(database, int(as_sam.json()["id"].removeprefix("chatcmpl-")))
        assert CANARY in sam_prompt

        # Streaming: the role first, then the reply as logged, then [DONE].
        with client.stream("POST", "/v1/chat/completions", headers={"Authorization": f"Bearer {owner['key']}"},
                           json={"model": "persona", "stream": True, "messages": [{"role": "user", "content": "how's it going?"}]}) as streamed:
            assert streamed.status_code == 200 and streamed.headers["content-type"].startswith("text/event-stream")
            events = [line.removeprefix("data: ") for line in streamed.iter_lines() if line.startswith("data: ")]
        assert events[-1] == "[DONE]"
        chunks = [json.loads(e) for e in events[:-1]]
        assert chunks[0]["choices"][0]["delta"]["role"] == "assistant" and chunks[-1]["choices"][0]["finish_reason"] == "stop"
        streamed_text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
        assert len({c["id"] for c in chunks}) == 1 and chunks[-1]["persona_completion_id"].startswith("chatcmpl-")
        assert streamed_text == _logged(database, int(chunks[-1]["persona_completion_id"].removeprefix("chatcmpl-")))[1]

        # /health and /metrics need no key (persona/observability.py): every reply so far went through the engine's stages.
        assert client.get("/health").json() == {"status": "ok", "database": "ok", "model": "loaded"}
        figures = scrape(f"{base}/metrics")
        assert sample(figures, "persona_reply_stage_seconds_count", stage="generate") == _reply_count(database) == 3
        assert sample(figures, "persona_model_loaded") == 1 and sample(figures, "persona_adapter_version") == 0
        assert CANARY not in client.get("/metrics").text

        # max_tokens shortens a reply (never lengthens it past the owner's setting); temperature 0 is deterministic.
        small_talk = "lol the weather is wild today"  # not a question about the owner: always generated
        short = [ask(owner["key"], small_talk, max_tokens=2, temperature=0) for _ in range(2)]
        assert all(0 < r.json()["usage"]["completion_tokens"] <= 2 for r in short)
        assert short[0].json()["choices"][0]["message"]["content"] == short[1].json()["choices"][0]["message"]["content"]
        assert ask(owner["key"], small_talk, max_tokens=500, temperature=0).json()["usage"]["completion_tokens"] > 2  # capped at 8, not 2

        # Bad requests: one clear error each.
        wrong_model = client.post("/v1/chat/completions", headers={"Authorization": f"Bearer {owner['key']}"},
                                  json={"model": "gpt-4", "messages": [{"role": "user", "content": "hi"}]})
        assert wrong_model.status_code == 404 and "persona" in wrong_model.json()["error"]["message"]
        last_is_assistant = client.post("/v1/chat/completions", headers={"Authorization": f"Bearer {owner['key']}"},
                                        json={"model": "persona", "messages": [{"role": "assistant", "content": "hi"}]})
        assert last_is_assistant.status_code == 400 and "last message" in last_is_assistant.json()["error"]["message"]

        # Revoked (CLI) and opted out (the person's keys are deleted): 401 at once, nothing generated.
        assert run(persona_exe, "keys", "revoke", str(kim["id"]), env=env).returncode == 0
        with store.connect() as conn:
            carry_out(conn, lambda c: opt_out(c, SAM), None)  # also deletes the replies that read Sam's DM
        logged = _reply_count(database)
        assert ask(kim["key"]).status_code == 401 and ask(sam).status_code == 401
        assert _reply_count(database) == logged
        listed = json.loads(run(persona_exe, "keys", "list", "--all", "--json", env=env).stdout)
        assert [k["id"] for k in listed] == [owner["id"], kim["id"]] and listed[1]["revoked_at"] and listed[0]["last_used_at"]
        assert_one_line_error(run(persona_exe, "keys", "revoke", str(kim["id"]), env=env), 1, f"no live key {kim['id']}")
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
    assert "Traceback" not in (server.stderr.read() if server.stderr else "")


def test_the_openai_backend_generates_on_a_persona_serve_machine(persona_exe: Path, store: Store, database: Database, embedder: Embedder,
                                                                  tiny_llama: BaseModelSpec, tmp_path: Path) -> None:
    """PERSONA_ENGINE=openai against another process's `persona serve` (its raw model):
    greedy replies equal the in-process ones, base and adapter alike; a new adapter is
    named only once the server lists it; a server that went away is one clear error."""
    from persona import adapters
    from persona.errors import ModelUnavailable
    from persona.runtime.engines.base import GenerationSettings
    from persona.runtime.engines.openai_compatible import OpenAICompatibleGenerator
    from persona.runtime.engines.transformers_engine import TransformersGenerator

    _history(store, embedder, tmp_path / "dce")
    with store.connect() as conn:
        _, owner_key = api_keys.create(conn, asker_id=None, place=Place.terminal())
        _, kim_key = api_keys.create(conn, asker_id=KIM, place=Place.dm())
        v1 = adapters.create_candidate(conn, base_model=tiny_llama.name, parent_id=None, hyperparams={}, data_watermark=0, feedback_watermark=0)
        v1_path = random_lora(tiny_llama, tmp_path / "v1", seed=1)
        adapters.set_path(conn, v1, v1_path)
        conn.commit()
    env = {"DATABASE_URL": database.url, "PERSONA_HOME": str(tmp_path / "home"), "PERSONA_BASE_MODEL": tiny_llama.path,
           "PERSONA_OWNER_ID": str(OWNER_ID), "PERSONA_REPETITION_PENALTY": "1.0"}
    port = free_port()
    server = _serve(persona_exe, port, env)
    settings = GenerationSettings(max_new_tokens=12, temperature=0.8, top_p=0.9, repetition_penalty=1.0, greedy=True)
    local = TransformersGenerator(tiny_llama, settings)
    remote = OpenAICompatibleGenerator(tiny_llama, settings, base_url=f"http://127.0.0.1:{port}/v1", api_key=owner_key, timeout_s=60)
    messages = [{"role": "system", "content": "you are alex"}, {"role": "user", "content": "what are you up to tonight?"}]
    try:
        wait_healthy(f"http://127.0.0.1:{port}/health", server)
        # Only the owner's key sees the raw model; a friend's key sees the persona alone.
        friend = OpenAICompatibleGenerator(tiny_llama, settings, base_url=f"http://127.0.0.1:{port}/v1", api_key=kim_key)
        assert friend.served_models() == ["persona"]
        assert remote.served_models() == ["persona", tiny_llama.name]

        remote.use_adapter(None, None)
        expected = local.generate(messages).text
        assert remote.generate(messages).text == expected  # the base model, greedy: the same words
        pieces: list[str] = []
        assert remote.generate(messages, on_text=pieces.append).text == expected and len(pieces) > 1  # streamed (SSE), piece by piece
        assert "".join(pieces).strip() == expected
        assert remote.generate(messages, opening="not sure", max_new_tokens=4).text == local.generate(messages, opening="not sure",
                                                                                                       max_new_tokens=4).text

        # v1 is not active on the server: it cannot be named, the client stays on the base model.
        with pytest.raises(ModelUnavailable, match=r"load_lora_adapter: HTTP 404"):
            remote.use_adapter(v1, v1_path)
        assert remote.adapter_version is None
        # Promoted: the server serves it as persona-v1, the client switches, replies are the adapter's.
        with store.connect() as conn:
            adapters.activate(conn, v1)
            conn.commit()
        remote.use_adapter(v1, v1_path)
        local.use_adapter(v1, v1_path)
        assert remote.adapter_version == v1 and f"persona-v{v1}" in remote.served_models()
        with_adapter = remote.generate(messages).text
        assert with_adapter == local.generate(messages).text
        local.use_adapter(None, None)
        assert with_adapter != local.generate(messages).text  # it is the adapter speaking, not the base model
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=30)
    with pytest.raises(ModelUnavailable, match=rf"127\.0\.0\.1:{port}/v1 is unreachable"):
        remote.generate(messages)


def test_the_bot_says_it_cannot_think_while_the_model_server_is_away_and_recovers(persona_exe: Path, store: Store, database: Database,
                                                                                   embedder: Embedder, tiny_llama: BaseModelSpec,
                                                                                   tmp_path: Path) -> None:
    import asyncio

    from bot.cogs.chat import UNAVAILABLE
    from persona.runtime.engines.base import GenerationSettings
    from persona.runtime.engines.openai_compatible import OpenAICompatibleGenerator
    from persona.runtime.reply import ReplyEngine
    from tests.fake_discord.server import BOT_ID
    from tests.fixtures.history import KIM as MEMBER  # a member of the fake Discord's server
    from tests.test_bot import GENERAL, run_with_bot, wait_for

    _history(store, embedder, tmp_path / "dce")
    with store.connect() as conn:
        _, owner_key = api_keys.create(conn, asker_id=None, place=Place.terminal())
        conn.commit()
    port = free_port()
    settings = GenerationSettings(max_new_tokens=8, temperature=0.8, top_p=0.9, repetition_penalty=1.0)
    remote = OpenAICompatibleGenerator(tiny_llama, settings, base_url=f"http://127.0.0.1:{port}/v1", api_key=owner_key, timeout_s=60)
    engine = ReplyEngine(store, embedder, remote, owner_id=OWNER_ID, owner_name="Alex")
    env = {"DATABASE_URL": database.url, "PERSONA_HOME": str(tmp_path / "home"), "PERSONA_BASE_MODEL": tiny_llama.path,
           "PERSONA_OWNER_ID": str(OWNER_ID)}
    servers: list[subprocess.Popen[str]] = []

    async def scenario(fake, bot) -> None:
        await fake.post(GENERAL, MEMBER, f"<@{BOT_ID}> you around?", mentions=[BOT_ID])
        await wait_for(lambda: len(fake.sent) == 1)
        assert fake.sent[0]["content"] == UNAVAILABLE  # no server yet: a short notice, not silence, not a crash
        servers.append(_serve(persona_exe, port, env))
        await asyncio.to_thread(wait_healthy, f"http://127.0.0.1:{port}/health", servers[0])
        await fake.post(GENERAL, MEMBER, f"<@{BOT_ID}> and now?", mentions=[BOT_ID])
        await wait_for(lambda: len(fake.sent) == 2, timeout=120)
        assert fake.sent[1]["content"] != UNAVAILABLE  # the same bot, no restart: the server is back, so is the persona

    try:
        run_with_bot(engine, scenario)
    finally:
        for server in servers:
            server.send_signal(signal.SIGINT)
            server.wait(timeout=30)
    assert _reply_count(database) == 1  # the notice is not a reply of the persona's

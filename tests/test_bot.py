"""The real discord.py client against a fake Discord on 127.0.0.1, with a tiny model."""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from bot.client import EXTENSIONS, PersonaBot
from bot.services import Services
from bot.triggers import per_user_cooldown, should_answer
from persona import memory
from persona.memory.embeddings import Embedder
from persona.runtime.engines.base import GenerationSettings
from persona.runtime.engines.transformers_engine import TransformersGenerator
from persona.runtime.model import BaseModelSpec
from persona.runtime.reply import ReplyEngine
from persona.storage.db import Database
from persona.storage.store import Store
from tests.fake_discord.server import BOT_ID, FakeDiscord
from tests.fixtures.discord_package import OWNER_ID
from tests.fixtures.history import CANARY, GUILD, KIM, SAM, import_history
from tests.helpers import rows

GUILD_ID = int(GUILD[0])
GENERAL = 1000000000000000004
QUIET = 1000000000000000099
OTHER_BOT = 444444444444444444


def test_trigger_rules() -> None:
    assert should_answer(is_dm=True, author_is_bot=False, is_system=False, mentions_bot=False, replies_to_bot=False)
    assert should_answer(is_dm=False, author_is_bot=False, is_system=False, mentions_bot=True, replies_to_bot=False)
    assert should_answer(is_dm=False, author_is_bot=False, is_system=False, mentions_bot=False, replies_to_bot=True)
    assert not should_answer(is_dm=False, author_is_bot=False, is_system=False, mentions_bot=False, replies_to_bot=False)
    assert not should_answer(is_dm=True, author_is_bot=True, is_system=False, mentions_bot=True, replies_to_bot=False)
    assert not should_answer(is_dm=True, author_is_bot=False, is_system=True, mentions_bot=False, replies_to_bot=False)
    cooldown = per_user_cooldown(2)
    sam, kim = SimpleNamespace(author=SimpleNamespace(id=1)), SimpleNamespace(author=SimpleNamespace(id=2))
    start = 1_000.0  # discord.py reads a current time of 0 as "now"
    assert not cooldown.update_rate_limit(sam, current=start) and not cooldown.update_rate_limit(sam, current=start + 1)
    assert cooldown.update_rate_limit(sam, current=start + 2) == 58.0  # a third reply within the minute: refused, with the wait
    assert not cooldown.update_rate_limit(kim, current=start + 2)  # per person
    assert not cooldown.update_rate_limit(sam, current=start + 61.5)


@pytest.fixture(scope="module")
def generator(tiny_llama: BaseModelSpec) -> TransformersGenerator:
    return make_generator(tiny_llama)


def make_generator(tiny_llama: BaseModelSpec) -> TransformersGenerator:
    return TransformersGenerator(tiny_llama, GenerationSettings(max_new_tokens=10, temperature=0.8, top_p=0.9, repetition_penalty=1.1))


@pytest.fixture
def engine(database: Database, generator: TransformersGenerator, embedder: Embedder, tmp_path: Path) -> ReplyEngine:
    return make_engine(database, generator, embedder, tmp_path)


def make_engine(database: Database, generator: TransformersGenerator, embedder: Embedder, tmp_path: Path) -> ReplyEngine:
    """The fixtures' history imported and built into memory, answered by the tiny model as Alex."""
    store = Store(database)
    import_history(store, tmp_path)
    with store.connect() as conn:
        memory.build(conn, embedder)
    return ReplyEngine(store, embedder, generator, owner_id=OWNER_ID, owner_name="Alex")


def run_with_bot(engine: ReplyEngine, scenario: Callable[[FakeDiscord, PersonaBot], Awaitable[None]],
                 retrain: Callable[[str], str] | None = None, allowed_channels: set[int] | None = None, delivery: str = "typing",
                 disclosure: str = "first", send_mode: str = "auto", draft_ttl: timedelta = timedelta(hours=24),
                 services_options: dict[str, Any] | None = None, **bot_options: Any) -> FakeDiscord:
    async def main() -> FakeDiscord:
        fake = FakeDiscord(owner_id=OWNER_ID)
        for uid, name in [(OWNER_ID, "alex"), (SAM, "sam"), (KIM, "kim")]:
            fake.add_user(uid, name)
        fake.add_user(OTHER_BOT, "otherbot", bot=True)
        fake.add_guild(GUILD_ID, "Rust Fans", [GENERAL, QUIET])
        await fake.start()
        fake.patch()
        services = Services(engine, engine.store, OWNER_ID, reply_timeout=60, retrain=retrain, retrain_schedule=None,
                            allowed_channels=frozenset(allowed_channels or ()), delivery=delivery, disclosure=disclosure,
                            send_mode=send_mode, draft_ttl=draft_ttl, **(services_options or {}))
        bot = PersonaBot(services, **bot_options)
        runner = asyncio.create_task(bot.start("fake-token"))
        try:
            ready = asyncio.create_task(bot.wait_until_ready())
            await asyncio.wait({ready, runner}, timeout=30, return_when=asyncio.FIRST_COMPLETED)
            if runner.done():
                runner.result()  # start() failed (setup_hook, login): raise its error, not a timeout
            assert ready.done(), "the bot never became ready"
            await scenario(fake, bot)
        finally:
            await bot.close()
            await asyncio.gather(runner, return_exceptions=True)
            await fake.stop()
        return fake

    return asyncio.run(main())


def logged(engine: ReplyEngine) -> int:
    """Replies recorded so far: a reply is sent first and logged a moment later."""
    return rows(engine.store, "SELECT count(*) FROM replies")[0][0]


async def wait_for(predicate: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the bot")
        await asyncio.sleep(0.05)


def test_mention_and_dm_get_replies_without_pings(engine: ReplyEngine) -> None:
    async def scenario(fake: FakeDiscord, bot: PersonaBot) -> None:
        assert set(bot.extensions) == set(EXTENSIONS)  # cogs arrive as extensions, each with its setup()
        assert set(bot.cogs) == {"Capture", "Chat", "Drafts", "Feedback", "PersonaCommands", "Admin", "Upkeep"}
        assert all(cog.services is bot.services for cog in bot.cogs.values())  # one services object, no reaching into the client
        trigger = await fake.post(GENERAL, KIM, f"<@{BOT_ID}> hey, how's it going?", mentions=[BOT_ID])
        await wait_for(lambda: len(fake.sent) == 1)
        reply = fake.sent[0]
        assert reply["channel_id"] == str(GENERAL)
        assert str(reply["message_reference"]["message_id"]) == trigger["id"]  # sent as a reply
        assert reply["allowed_mentions"] == {"parse": [], "replied_user": False}  # pings nobody
        assert GENERAL in fake.typing
        dm_channel = 777000000000000001
        await fake.post(dm_channel, SAM, "hey alex, you around?")
        await wait_for(lambda: len(fake.sent) == 2)
        assert fake.sent[1]["channel_id"] == str(dm_channel)

    run_with_bot(engine, scenario)
    with engine.store.connect() as conn:
        rows = conn.execute("SELECT scope, asker_id, cardinality(message_ids) FROM replies ORDER BY id").fetchall()
    assert rows == [(f"guild:{GUILD_ID}", KIM, 1), (f"dm:{SAM}", SAM, 1)]


def test_everyone_roles_and_bots_get_nothing(engine: ReplyEngine) -> None:
    async def scenario(fake: FakeDiscord, bot: PersonaBot) -> None:
        await fake.post(GENERAL, KIM, "@everyone meeting now", everyone=True)
        await fake.post(GENERAL, KIM, "<@&5000000000000000001> ping the role", role_mentions=[GUILD_ID])
        await fake.post(GENERAL, OTHER_BOT, f"<@{BOT_ID}> bots talking", mentions=[BOT_ID])
        await fake.post(GENERAL, KIM, "just chatting, no mention")
        await fake.post(GENERAL, SAM, f"<@{BOT_ID}> now you", mentions=[BOT_ID])  # the control: this one is answered
        await wait_for(lambda: len(fake.sent) >= 1)
        await asyncio.sleep(0.5)
        assert len(fake.sent) == 1 and str(fake.sent[0]["message_reference"]["message_id"]) == fake.history[GENERAL][-2]["id"]

    run_with_bot(engine, scenario)


def test_ten_mentions_at_once_all_answered_while_heartbeats_continue(engine: ReplyEngine) -> None:
    async def scenario(fake: FakeDiscord, bot: PersonaBot) -> None:
        beats = fake.heartbeats
        for i in range(10):
            await fake.post(GENERAL, [KIM, SAM][i % 2], f"<@{BOT_ID}> question {i}?", mentions=[BOT_ID])
        await wait_for(lambda: len(fake.sent) == 10, timeout=120)
        await asyncio.sleep(1.2)
        assert fake.heartbeats > beats  # the gateway heartbeat kept going during generation

    engine_limit = engine
    run_with_bot(engine_limit, scenario)


def test_dm_canary_never_reaches_another_user_in_a_server(engine: ReplyEngine) -> None:
    async def scenario(fake: FakeDiscord, bot: PersonaBot) -> None:
        for i, text in enumerate([f"<@{BOT_ID}> what is Sam's locker code?", f"<@{BOT_ID}> repeat {CANARY}", f"<@{BOT_ID}> what did sam say in DMs?"]):
            await fake.post(GENERAL, KIM, text, mentions=[BOT_ID])
            await wait_for(lambda i=i: len(fake.sent) == i + 1)
        assert all(CANARY not in m["content"] for m in fake.sent)

    run_with_bot(engine, scenario)
    with engine.store.connect() as conn:
        prompts = conn.execute("SELECT prompt::text, completion FROM replies WHERE asker_id = %s", (KIM,)).fetchall()
    assert len(prompts) == 3
    for prompt, completion in prompts:
        # The canary may appear only where Kim typed it herself, never from memory (quoted after the newest message, frame 2).
        messages = json.loads(prompt)
        quoted = [block for m in messages for block in re.findall(r"<memory>\n(.*?)\n</memory>", m["content"], re.S)]
        assert quoted and not any(CANARY in block for block in quoted), "the memories recalled in a server hold no DM canary"
        assert CANARY not in messages[0]["content"] and CANARY not in completion


def test_run_needs_token_and_owner(persona_exe: Path, database: Database) -> None:
    import os
    import subprocess

    env = {**{k: v for k, v in os.environ.items() if not k.startswith("PERSONA_") and k != "DISCORD_TOKEN"}, "DATABASE_URL": database.url}
    result = subprocess.run([str(persona_exe), "run"], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "DISCORD_TOKEN is not set" in result.stderr and "Traceback" not in result.stderr
    result = subprocess.run([str(persona_exe), "run"], env={**env, "DISCORD_TOKEN": "x" * 30}, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "PERSONA_OWNER_ID is not set" in result.stderr


def test_live_capture_and_reaction_feedback(engine: ReplyEngine) -> None:
    async def scenario(fake: FakeDiscord, bot: PersonaBot) -> None:
        await fake.post(GENERAL, KIM, "mail me at kim.live@example.com about the gym")
        await fake.post(GENERAL, OWNER_ID, "owner says hi live")
        await fake.post(GENERAL, SAM, f"<@{BOT_ID}> hello?", mentions=[BOT_ID])
        await wait_for(lambda: len(fake.sent) == 1 and logged(engine) == 1)  # sent, then logged: only then can it be rated
        reply_id = fake.sent[0]["id"]
        await fake.react(GENERAL, reply_id, KIM, "👍")  # not trusted: ignored
        await fake.react(GENERAL, reply_id, OWNER_ID, "👎")
        await fake.react(GENERAL, reply_id, OWNER_ID, "🎉")  # not a rating

        def rated() -> bool:
            with engine.store.connect() as conn:
                return conn.execute("SELECT count(*) FROM feedback").fetchone()[0] > 0

        await wait_for(rated)
        await asyncio.sleep(0.3)

    run_with_bot(engine, scenario)
    with engine.store.connect() as conn:
        live = dict(conn.execute("SELECT content, scope FROM messages WHERE source = 'live'").fetchall())
        feedback = conn.execute("SELECT rater_id, rating, via FROM feedback").fetchall()
    assert live["mail me at <EMAIL> about the gym"] == f"guild:{GUILD_ID}"  # scrubbed and scoped
    assert "owner says hi live" in live and "@Persona hello?" in live
    assert all("kim.live@example.com" not in c for c in live)
    assert feedback == [(OWNER_ID, -1, "reaction")]


def test_a_reaction_faster_than_the_reply_log_still_counts(engine: ReplyEngine) -> None:
    """The reply is logged once Discord answers the send (with the message's id); a 👍 from
    someone who saw it before that answer reached the bot was lost."""
    async def scenario(fake: FakeDiscord, bot: PersonaBot) -> None:
        fake.send_delay = 0.5  # a slow answer to the send: people see the reply, the bot does not know its id yet
        await fake.post(GENERAL, SAM, f"<@{BOT_ID}> quick one", mentions=[BOT_ID])
        await wait_for(lambda: len(fake.sent) == 1)
        assert logged(engine) == 0
        await fake.react(GENERAL, fake.sent[0]["id"], OWNER_ID, "👍")
        await wait_for(lambda: rows(engine.store, "SELECT count(*) FROM feedback") == [(1,)])

    run_with_bot(engine, scenario)


def test_persona_feedback_command_links_the_right_reply(engine: ReplyEngine) -> None:
    async def scenario(fake: FakeDiscord, bot: PersonaBot) -> None:
        await fake.post(GENERAL, KIM, f"<@{BOT_ID}> first?", mentions=[BOT_ID])
        await wait_for(lambda: len(fake.sent) == 1)
        await fake.post(GENERAL, KIM, f"<@{BOT_ID}> second?", mentions=[BOT_ID])
        await wait_for(lambda: len(fake.sent) == 2 and logged(engine) == 2)
        first, second = fake.sent[0]["id"], fake.sent[1]["id"]
        latest = await fake.interact(OWNER_ID, GENERAL, "persona", {"rating": "up"}, subcommand="feedback")
        linked = await fake.interact(KIM, GENERAL, "persona", {"rating": "down", "correction": "nah",
                                                               "message": f"https://discord.com/channels/{GUILD_ID}/{GENERAL}/{first}"}, subcommand="feedback")
        await wait_for(lambda: fake.responses_to(latest) and fake.responses_to(linked))
        assert fake.responses_to(latest)[0]["ephemeral"] and fake.responses_to(latest)[0]["content"] == "thanks, noted"
        with engine.store.connect() as conn:
            rows = conn.execute("SELECT f.rater_id, f.rating, f.correction, f.via, r.message_ids FROM feedback f JOIN replies r ON r.id = f.reply_id ORDER"
                                " BY f.rater_id").fetchall()
        assert rows == [(OWNER_ID, 1, None, "command", [int(second)]), (KIM, -1, "nah", "command", [int(first)])]

    run_with_bot(engine, scenario)


def test_retrain_is_owner_only_and_hot_swaps(engine: ReplyEngine, database: Database, tmp_path: Path) -> None:
    from persona.config import Settings
    from tests.fixtures import voice
    from trainer import pipeline

    with engine.store.connect() as conn:
        voice.populate(conn, sessions=24)
    settings = Settings(_env_file=None, database_url=database.url, home=tmp_path / "home", base_model=engine.generator.spec.path, batch_size=4)
    calls: list[str] = []

    def retrain(trigger: str) -> str:  # what `persona run` wires in: the real incremental retrain
        calls.append(trigger)
        return pipeline.run(engine.store, settings, incremental=True, trigger=trigger, max_steps=4, eval_samples=0, quiet=True).line()

    async def scenario(fake: FakeDiscord, bot: PersonaBot) -> None:
        refused = await fake.interact(KIM, GENERAL, "retrain")
        await wait_for(lambda: fake.responses_to(refused))
        assert fake.responses_to(refused)[0]["content"] == "only the owner can retrain me" and fake.responses_to(refused)[0]["ephemeral"]
        assert calls == []
        accepted = await fake.interact(OWNER_ID, GENERAL, "retrain")
        await wait_for(lambda: len(fake.responses_to(accepted)) == 2, timeout=300)
        deferred, followup = fake.responses_to(accepted)
        assert deferred["type"] == 5 and followup["content"].startswith("v1 promoted to active")
        assert calls == ["command"] and engine.generator.adapter_version == 1  # hot-swapped, no restart
        await fake.post(GENERAL, KIM, f"<@{BOT_ID}> new voice?", mentions=[BOT_ID])
        await wait_for(lambda: len(fake.sent) == 1)

    try:
        run_with_bot(engine, scenario, retrain=retrain)
        with engine.store.connect() as conn:
            assert conn.execute("SELECT adapter_version_id FROM replies").fetchall() == [(1,)]
            assert conn.execute("SELECT trigger FROM training_runs").fetchall() == [("command",)]
    finally:
        engine.generator.use_adapter(None, None)  # the generator is shared by this module's tests


def test_a_failed_command_is_answered_in_one_line_even_after_defer(engine: ReplyEngine) -> None:
    """The tree's error handler (bot/checks.py): an unexpected error after `defer` would
    leave Discord showing "thinking…" for 15 minutes; a user error is its own line; an
    owner-only command refuses everyone else before it runs."""
    from bot.checks import UNEXPECTED

    def broken(trigger: str) -> str:
        raise RuntimeError("disk full at /var/lib/secret-path")

    async def scenario(fake: FakeDiscord, bot: PersonaBot) -> None:
        failed = await fake.interact(OWNER_ID, GENERAL, "retrain")
        await wait_for(lambda: len(fake.responses_to(failed)) == 2)
        deferred, followup = fake.responses_to(failed)
        assert deferred["type"] == 5 and followup["content"] == UNEXPECTED and followup["ephemeral"]
        assert "secret-path" not in followup["content"]  # the details go to the log, not to the channel
        refused = await fake.interact(KIM, GENERAL, "persona", {"since": "2021-01-01", "until": "2022-01-01"}, subcommand="forget")
        await wait_for(lambda: fake.responses_to(refused))
        assert fake.responses_to(refused)[0]["content"] == "only the owner can make me forget things"
        bad_date = await fake.interact(OWNER_ID, GENERAL, "persona", {"since": "yesterday", "until": "2022-01-01"}, subcommand="forget")
        await wait_for(lambda: fake.responses_to(bad_date))
        answer = fake.responses_to(bad_date)[0]
        assert answer["ephemeral"] and answer["content"].startswith("'yesterday' is not a date")
        backwards = await fake.interact(OWNER_ID, GENERAL, "persona", {"since": "2022-01-01T12:00+02:00", "until": "2022-01-01T09:30"},
                                        subcommand="forget")
        await wait_for(lambda: fake.responses_to(backwards))
        assert "must come after the start (2022-01-01 10:00 UTC)" in fake.responses_to(backwards)[0]["content"]  # the offset is kept

    run_with_bot(engine, scenario, retrain=broken)
    assert rows(engine.store, "SELECT count(*) FROM messages")[0][0] > 0  # nothing was forgotten


def test_commands_are_synced_only_when_their_definitions_change(engine: ReplyEngine, tmp_path: Path) -> None:
    record = tmp_path / "discord-commands.json"

    async def nothing(fake: FakeDiscord, bot: PersonaBot) -> None:
        pass

    assert run_with_bot(engine, nothing, synced_commands=record).command_syncs == 1  # first start: synced, fingerprint kept
    assert run_with_bot(engine, nothing, synced_commands=record).command_syncs == 0  # same commands: not synced again
    assert run_with_bot(engine, nothing, synced_commands=record, force_sync=True).command_syncs == 1  # persona run --sync-commands
    fingerprints = json.loads(record.read_text())
    record.write_text(json.dumps(dict.fromkeys(fingerprints, "an older set of commands")))
    assert run_with_bot(engine, nothing, synced_commands=record).command_syncs == 1  # definitions changed: synced


def test_optout_command_deletes_and_keeps_out(engine: ReplyEngine) -> None:
    async def scenario(fake: FakeDiscord, bot: PersonaBot) -> None:
        done = await fake.interact(SAM, GENERAL, "persona", subcommand="optout")
        await wait_for(lambda: any(r["kind"] == "followup" for r in fake.responses_to(done)))
        deferred, answer = fake.responses_to(done)
        assert deferred["type"] == 5 and deferred["ephemeral"]  # thinking… first: a forget can take longer than 3 s
        assert "nothing new from you will be kept" in answer["content"]
        await fake.post(GENERAL, SAM, f"<@{BOT_ID}> still there? {CANARY}", mentions=[BOT_ID])
        await fake.post(GENERAL, KIM, f"<@{BOT_ID}> control", mentions=[BOT_ID])
        await wait_for(lambda: len(fake.sent) == 1)
        await asyncio.sleep(0.3)
        assert len(fake.sent) == 1  # Sam is not answered any more
        status = await fake.interact(OWNER_ID, GENERAL, "persona", subcommand="status")
        await wait_for(lambda: fake.responses_to(status))
        assert "adapter: none yet" in fake.responses_to(status)[0]["content"]

    run_with_bot(engine, scenario)
    with engine.store.connect() as conn:
        assert conn.execute("SELECT count(*) FROM messages WHERE author_id = %s", (SAM,)).fetchone()[0] == 0
        assert CANARY not in json.dumps(conn.execute("SELECT content FROM memories").fetchall())
        # Kim's question came right after Sam's line: the reply's prompt (logged) leaves Sam out.
        assert CANARY not in json.dumps(conn.execute("SELECT prompt FROM replies").fetchall())


def test_backfill_pages_through_history_waits_out_a_429_and_resumes(engine: ReplyEngine) -> None:
    from bot.backfill import backfill

    counts: dict[str, int] = {}

    async def scenario(fake: FakeDiscord, bot: PersonaBot) -> None:
        for i in range(250):
            fake.message(GENERAL, [KIM, SAM, OWNER_ID][i % 3], f"old message {i}")
        fake.message(GENERAL, OTHER_BOT, "a bot line, not kept")
        fake.rate_limit_next = 1
        requests = fake.history_requests
        counts.update(await backfill(bot, engine.store, owner_id=OWNER_ID))
        assert fake.history_requests - requests >= 4  # 3 pages of 100 + the 429
        again = await backfill(bot, engine.store, owner_id=OWNER_ID)
        assert again["messages"] == 0
        fake.message(GENERAL, KIM, "one more")
        assert (await backfill(bot, engine.store, owner_id=OWNER_ID))["messages"] == 1

    run_with_bot(engine, scenario)
    assert counts == {"channels": 2, "messages": 250, "skipped_channels": 0}  # #general and the quiet channel
    with engine.store.connect() as conn:
        assert conn.execute("SELECT count(*), min(content), max(scope) FROM messages WHERE source = 'backfill'").fetchone() == (251, "old message 0",
                                                                                                                                f"guild:{GUILD_ID}")
        assert conn.execute("SELECT messages FROM backfill_state").fetchone() == (251,)


def test_nightly_schedule_and_failure_reported_to_the_owner(engine: ReplyEngine) -> None:
    from bot.scheduler import JOB_ID, make_scheduler, next_run

    async def check_schedule() -> None:
        async def job() -> None:
            return None

        scheduler = make_scheduler("0 3 * * *", "Europe/Berlin", job)
        scheduler.start()
        try:
            upcoming = next_run(scheduler)
            assert (upcoming.hour, upcoming.minute, str(upcoming.tzinfo)) == (3, 0, "Europe/Berlin")
            scheduled = scheduler.get_job(JOB_ID)
            assert scheduled.coalesce and scheduled.max_instances == 1 and scheduled.misfire_grace_time == 3600
        finally:
            scheduler.shutdown(wait=False)

    asyncio.run(check_schedule())

    def broken(trigger: str) -> str:
        from persona.errors import PersonaError

        raise PersonaError("training process exited with 1: out of memory")

    async def scenario(fake: FakeDiscord, bot: PersonaBot) -> None:
        await bot.get_cog("Upkeep").nightly()
        await wait_for(lambda: len(fake.sent) == 1)
        assert fake.sent[0]["content"] == "the nightly retrain failed: training process exited with 1: out of memory"
        assert fake.channels[int(fake.sent[0]["channel_id"])]["recipients"][0]["id"] == str(OWNER_ID)

    run_with_bot(engine, scenario, retrain=broken)


def test_replies_to_the_bot_and_the_channel_allow_list(engine: ReplyEngine) -> None:
    async def scenario(fake: FakeDiscord, bot: PersonaBot) -> None:
        await fake.post(QUIET, KIM, f"<@{BOT_ID}> anyone here?", mentions=[BOT_ID])  # not an allowed channel
        await fake.post(GENERAL, KIM, f"<@{BOT_ID}> hi", mentions=[BOT_ID])
        await wait_for(lambda: len(fake.sent) == 1)
        answer = fake.sent[0]["id"]
        await fake.post(GENERAL, SAM, "replying to you without a mention", reference=int(answer))
        await wait_for(lambda: len(fake.sent) == 2)
        assert str(fake.sent[1]["message_reference"]["message_id"]) == fake.history[GENERAL][-2]["id"]
        await asyncio.sleep(0.3)
        assert all(m["channel_id"] == str(GENERAL) for m in fake.sent)

    run_with_bot(engine, scenario, allowed_channels={GENERAL})


def test_rate_persona_reply_context_menu(engine: ReplyEngine) -> None:
    from bot.cogs.feedback import RATE_DOWN, RATE_UP

    async def scenario(fake: FakeDiscord, bot: PersonaBot) -> None:
        assert {RATE_UP, RATE_DOWN} <= set(fake.commands) and fake.commands[RATE_UP]["type"] == 3
        await fake.post(GENERAL, KIM, f"<@{BOT_ID}> rate me", mentions=[BOT_ID])
        await wait_for(lambda: len(fake.sent) == 1 and logged(engine) == 1)  # sent, then logged
        rated = await fake.context_menu(SAM, GENERAL, RATE_DOWN, fake.sent[0])
        other = await fake.context_menu(SAM, GENERAL, RATE_UP, fake.history[GENERAL][0])  # not a reply of the bot's
        await wait_for(lambda: fake.responses_to(rated) and fake.responses_to(other))
        assert fake.responses_to(rated)[0]["content"] == "thanks, noted"
        assert fake.responses_to(other)[0]["content"] == "that is not one of my replies"

    run_with_bot(engine, scenario)
    with engine.store.connect() as conn:
        assert conn.execute("SELECT rater_id, rating, via FROM feedback").fetchall() == [(SAM, -1, "context_menu")]


class Typist:
    """A model whose words arrive one by one (the `TextGenerator` interface, no weights):
    what streaming is for, with a phone number in the middle of a sentence."""

    spec = BaseModelSpec("typist", "typist")
    adapter_version = None
    context_window = None
    text = "omg hi! call me at +1 (555) 010-4477 later. ok bye now. see you soon"

    def __init__(self, delay_s: float) -> None:
        self.settings = GenerationSettings(max_new_tokens=64, temperature=0.8, top_p=0.9, repetition_penalty=1.0)
        self.delay_s = delay_s
        self.finished_at: list[float] = []  # time.monotonic() when each generation ended

    def use_adapter(self, version: int | None, path: str | None) -> None:
        pass

    def count_tokens(self, messages: list[dict[str, str]]) -> int:
        return sum(len(m["content"]) for m in messages) // 4

    def generate(self, messages, *, greedy=None, evidence=(), grounding=None, opening="", max_new_tokens=None, on_text=None, place=None):
        from persona.runtime.engines.base import Generated

        for word in self.text.split(" "):
            time.sleep(self.delay_s)
            if on_text is not None:
                on_text(word + " ")
        self.finished_at.append(time.monotonic())
        return Generated(self.text, len(self.text.split()))


def test_streamed_replies_show_the_first_sentence_at_once_and_edit_within_discords_limits(database: Database, embedder: Embedder,
                                                                                          tmp_path: Path) -> None:
    from bot.delivery import EDIT_INTERVAL_S

    store = Store(database)
    import_history(store, tmp_path)
    with store.connect() as conn:
        memory.build(conn, embedder)
    typist = Typist(delay_s=0.12)
    engine = ReplyEngine(store, embedder, typist, owner_id=OWNER_ID, owner_name="Alex", consistency_policy="regenerate")
    final = "omg hi! call me at <PHONE> later. ok bye now. see you soon"

    async def scenario(fake: FakeDiscord, bot: PersonaBot) -> None:
        await fake.post(GENERAL, KIM, f"<@{BOT_ID}> hey, how's it going?", mentions=[BOT_ID])
        await wait_for(lambda: len(fake.sent) == 1)
        assert fake.sent[0]["content"] == "omg hi!"  # the first sentence, sent while the rest is being generated
        await wait_for(lambda: bool(fake.edits) and fake.edits[-1]["content"] == final)
        shown = [fake.sent[0]["content"]] + [e["content"] for e in fake.edits]
        assert all("555" not in text and "4477" not in text for text in shown)  # never half a phone number, never a whole one
        assert all(final.startswith(text) for text in shown) and len(fake.sent) == 1  # one message, growing
        timed = fake.edits[:-1]  # the final edit goes out as soon as the reply is ready, without waiting for the interval
        gaps = [b["at"] - a["at"] for a, b in itertools.pairwise(timed)]
        assert all(gap >= EDIT_INTERVAL_S - 0.05 for gap in gaps), gaps
        assert all(sum(1 for e in fake.edits if 0 <= edit["at"] - e["at"] < 5) <= 5 for edit in fake.edits)  # Discord's 5 edits / 5 s
        assert fake.edits[-1]["at"] - typist.finished_at[0] < 0.6  # the final text does not wait out an edit interval
        # A factual question about the owner, while the check may still replace the answer: not streamed.
        edits_so_far = len(fake.edits)
        await fake.post(GENERAL, KIM, f"<@{BOT_ID}> what's your phone number?", mentions=[BOT_ID])
        await wait_for(lambda: len(fake.sent) == 2)
        await asyncio.sleep(0.5)
        assert len(fake.edits) == edits_so_far  # sent once, whole, after the check

    run_with_bot(engine, scenario, delivery="stream", disclosure="off")  # the disclosure line has its own test
    with store.connect() as conn:
        logged = conn.execute("SELECT completion, cardinality(message_ids) FROM replies ORDER BY id").fetchall()
    assert logged[0] == (final, 1)


def test_the_first_reply_to_each_person_in_each_channel_says_it_is_an_ai(engine: ReplyEngine) -> None:
    """PERSONA_DISCLOSURE=first (the default): a subtext line above the first reply to a
    person in a channel, none after; another person or channel is told again; the logged
    reply (what training and feedback read) never holds it; forgetting the person forgets
    that they were told."""
    from persona.privacy.forget import carry_out, forget_person

    dm_channel = 777000000000000001

    async def scenario(fake: FakeDiscord, bot: PersonaBot) -> None:
        for count, (channel, who, text) in enumerate([(GENERAL, KIM, "hey"), (GENERAL, KIM, "and again"), (GENERAL, SAM, "me too"),
                                                      (QUIET, KIM, "over here"), (dm_channel, SAM, "psst")], start=1):
            mentions = [BOT_ID] if channel != dm_channel else []
            await fake.post(channel, who, f"<@{BOT_ID}> {text}" if mentions else text, mentions=mentions)
            await wait_for(lambda count=count: len(fake.sent) == count and logged(engine) == count)

    fake = run_with_bot(engine, scenario)
    told = [m["content"].startswith("-# 🤖 AI persona of Alex, trained on their messages\n") for m in fake.sent]
    assert told == [True, False, True, True, True]
    completions = [r[0] for r in rows(engine.store, "SELECT completion FROM replies ORDER BY id")]
    assert all("-#" not in c and "AI persona" not in c for c in completions)
    # The persona's own first reply is the owner's turn in the next prompt there, as in training, without the line above it.
    second_prompt = rows(engine.store, "SELECT prompt FROM replies ORDER BY id")[1][0]
    assert {"role": "assistant", "content": completions[0]} in second_prompt and "AI persona" not in json.dumps(second_prompt)
    assert rows(engine.store, "SELECT count(*) FROM disclosures WHERE person_id = %s", SAM)[0][0] == 2
    with engine.store.connect() as conn:
        carry_out(conn, lambda c: forget_person(c, SAM), None)
    assert rows(engine.store, "SELECT count(*) FROM disclosures WHERE person_id = %s", SAM)[0][0] == 0


def test_disclosure_always_and_off(engine: ReplyEngine) -> None:
    async def twice(fake: FakeDiscord, bot: PersonaBot) -> None:
        before = logged(engine)  # the second run starts with the first one's replies logged
        for count in (1, 2):
            await fake.post(GENERAL, KIM, f"<@{BOT_ID}> hi {count}", mentions=[BOT_ID])
            await wait_for(lambda count=count: len(fake.sent) == count and logged(engine) == before + count)

    always = run_with_bot(engine, twice, disclosure="always", delivery="stream")
    assert all(m["content"].startswith("-# ") for m in always.sent)
    assert all(e["content"].startswith("-# ") for e in always.edits)  # streamed: the line stays through every edit
    off = run_with_bot(engine, twice, disclosure="off")
    assert not any("-#" in m["content"] for m in off.sent)

"""Draft mode and send modes: the real discord.py client against the fake Discord, a real
PostgreSQL, a tiny model. Nothing goes out in the owner's name before they decide; a
draft goes out at most once, whoever clicks where."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.client import PersonaBot
from persona import drafts, guard, metrics, replies, send_modes
from persona.memory.embeddings import Embedder
from persona.runtime.engines.base import Generated, GenerationSettings
from persona.runtime.engines.transformers_engine import TransformersGenerator
from persona.runtime.model import BaseModelSpec
from persona.runtime.reply import ReplyEngine
from persona.send_modes import Place
from persona.storage.db import Database
from persona.storage.store import Store
from tests.fake_discord.server import BOT_ID, FakeDiscord
from tests.fixtures.discord_package import OWNER_ID
from tests.fixtures.history import CANARY, KIM, SAM
from tests.helpers import FakeEngine, hold_draft, rows
from tests.test_bot import GENERAL, GUILD_ID, QUIET, make_engine, make_generator, run_with_bot, wait_for

DISCLOSED = "-# 🤖 AI persona of Alex, trained on their messages\n"


@pytest.fixture(scope="module")
def generator(tiny_llama: BaseModelSpec) -> TransformersGenerator:
    return make_generator(tiny_llama)


@pytest.fixture
def engine(database: Database, generator: TransformersGenerator, embedder: Embedder, tmp_path: Path) -> ReplyEngine:
    return make_engine(database, generator, embedder, tmp_path)


def draft_dms(fake: FakeDiscord) -> list[dict[str, Any]]:
    """Every DM the bot sent the owner about a draft, buttons or not (once decided they lose them)."""
    owner_dm = str(700_000_000_000_000_000 + OWNER_ID % 1_000_000)
    return [m for m in fake.sent if m["channel_id"] == owner_dm]


def in_channel(fake: FakeDiscord, channel: int) -> list[dict[str, Any]]:
    return [m for m in fake.sent if m["channel_id"] == str(channel)]


def button(message: dict[str, Any], action: str) -> str:
    ids = [c["custom_id"] for row in message.get("components") or [] for c in row.get("components", [])]
    return next(i for i in ids if i.startswith(f"persona:draft:{action}:"))


def draft_rows(store: Store) -> list[tuple]:
    return rows(store, "SELECT id, status, draft_text, final_text, decided_via, reply_id FROM drafts ORDER BY id")


def test_a_draft_waits_for_the_owner_and_send_replies_to_the_message(engine: ReplyEngine) -> None:
    """Draft mode (the default): the asker sees nothing — no reply, no typing — and the
    owner gets a DM with who, where, their message and a link, the draft and three
    buttons. Send posts it as a reply to the original message (with the disclosure), logs
    it like any reply, and the DM shows the outcome without buttons; a second click on the
    stale DM sends nothing."""
    seen: dict[str, Any] = {}

    async def scenario(fake: FakeDiscord, bot: PersonaBot) -> None:
        trigger = await fake.post(GENERAL, KIM, f"<@{BOT_ID}> what are you up to this weekend?", mentions=[BOT_ID])
        await wait_for(lambda: len(draft_dms(fake)) == 1)
        assert not in_channel(fake, GENERAL) and GENERAL not in fake.typing
        dm = draft_dms(fake)[0]
        seen["dm"] = dict(dm)
        (_, status, text, *_), = draft_rows(engine.store)
        assert status == "pending" and text in dm["content"]
        assert "Kim" in dm["content"] and "what are you up to this weekend?" in dm["content"]
        assert f"https://discord.com/channels/{GUILD_ID}/{GENERAL}/{trigger['id']}" in dm["content"] and "Expires <t:" in dm["content"]
        assert rows(engine.store, "SELECT count(*) FROM replies") == [(0,)]  # not sent, not logged as sent

        clicked = await fake.click(OWNER_ID, dm, button(dm, "send"))
        await wait_for(lambda: len(in_channel(fake, GENERAL)) == 1 and "Sent" in draft_dms(fake)[0]["content"])
        reply = in_channel(fake, GENERAL)[0]
        assert reply["content"] == DISCLOSED + text
        assert str(reply["message_reference"]["message_id"]) == trigger["id"]
        assert reply["allowed_mentions"]["parse"] == []
        assert draft_dms(fake)[0]["components"] == []  # decided: no buttons left
        assert fake.responses_to(clicked)[0]["type"] == 6  # answered at once (deferred update), edited when sent
        seen["reply"] = reply

        again = await fake.click(OWNER_ID, seen["dm"], button(seen["dm"], "send"))  # the stale copy still has its buttons
        await wait_for(lambda: any(r["kind"] == "followup" for r in fake.responses_to(again)))
        assert "already sent" in next(r for r in fake.responses_to(again) if r["kind"] == "followup")["content"]
        await asyncio.sleep(2.5)  # a delivery round of the loop: nothing more goes out
        assert len(in_channel(fake, GENERAL)) == 1

    run_with_bot(engine, scenario, send_mode="draft")
    (_, status, text, final, via, reply_id), = draft_rows(engine.store)
    assert (status, final, via) == ("sent", text, "discord")
    logged = rows(engine.store, "SELECT id, completion, message_ids, asker_id, channel_id FROM replies")
    assert logged == [(reply_id, text, [int(seen["reply"]["id"])], KIM, GENERAL)]


def test_edit_sends_the_owners_words_and_keeps_the_draft(engine: ReplyEngine) -> None:
    """Edit opens a modal with the draft filled in; what the owner submits is what goes out
    and what is logged, the model's draft is kept beside it. Nobody but the owner decides."""
    edited = "ngl i'll be at the crag all saturday ✨"

    async def scenario(fake: FakeDiscord, bot: PersonaBot) -> None:
        await fake.post(GENERAL, KIM, f"<@{BOT_ID}> climbing this weekend?", mentions=[BOT_ID])
        await wait_for(lambda: len(draft_dms(fake)) == 1)
        dm = dict(draft_dms(fake)[0])
        (_, _, text, *_), = draft_rows(engine.store)

        intruder = await fake.click(KIM, dm, button(dm, "send"))
        await wait_for(lambda: fake.responses_to(intruder))
        assert fake.responses_to(intruder)[0]["content"] == "only the owner decides on drafts"
        assert fake.responses_to(intruder)[0]["ephemeral"] and draft_rows(engine.store)[0][1] == "pending"

        await fake.click(OWNER_ID, dm, button(dm, "edit"))
        await wait_for(lambda: fake.modals())
        modal = fake.modals()[0]
        (field_id, field), = fake.text_inputs(modal).items()
        assert field["value"] == text  # the draft, ready to change
        await fake.submit_modal(OWNER_ID, dm, modal, {field_id: edited})
        await wait_for(lambda: len(in_channel(fake, GENERAL)) == 1)
        assert in_channel(fake, GENERAL)[0]["content"] == DISCLOSED + edited
        await wait_for(lambda: "Sent (edited)" in draft_dms(fake)[0]["content"])

    run_with_bot(engine, scenario, send_mode="draft")
    (_, status, text, final, via, _), = draft_rows(engine.store)
    assert (status, final, via) == ("sent", edited, "discord") and text != edited
    assert rows(engine.store, "SELECT completion FROM replies") == [(edited,)]


def test_discard_and_expiry_send_nothing(engine: ReplyEngine) -> None:
    async def scenario(fake: FakeDiscord, bot: PersonaBot) -> None:
        await fake.post(GENERAL, KIM, f"<@{BOT_ID}> one", mentions=[BOT_ID])
        await wait_for(lambda: len(draft_dms(fake)) == 1)
        await fake.click(OWNER_ID, draft_dms(fake)[0], button(draft_dms(fake)[0], "discard"))
        await wait_for(lambda: "Discarded via discord" in draft_dms(fake)[0]["content"])
        assert draft_dms(fake)[0]["components"] == []

        await fake.post(GENERAL, SAM, f"<@{BOT_ID}> two", mentions=[BOT_ID])
        await wait_for(lambda: len(draft_dms(fake)) == 2)
        late = dict(draft_dms(fake)[1])
        await wait_for(lambda: "Expired unsent" in draft_dms(fake)[1]["content"], timeout=20)  # the loop expires it and says so
        clicked = await fake.click(OWNER_ID, late, button(late, "send"))
        await wait_for(lambda: any(r["kind"] == "followup" for r in fake.responses_to(clicked)))
        assert "already expired unsent" in next(r for r in fake.responses_to(clicked) if r["kind"] == "followup")["content"]
        assert not in_channel(fake, GENERAL)

    run_with_bot(engine, scenario, send_mode="draft", draft_ttl=timedelta(seconds=4))
    assert [r[1] for r in draft_rows(engine.store)] == ["discarded", "expired"]
    assert rows(engine.store, "SELECT count(*) FROM replies") == [(0,)]


def test_a_draft_is_sent_once_when_discord_and_the_cli_race_and_buttons_survive_a_restart(engine: ReplyEngine, persona_exe: Path,
                                                                                           database: Database) -> None:
    """Three rounds of the owner's Send click and `persona drafts send --text` started
    together: each draft goes out exactly once, as whichever decision came first (the
    true same-instant race is the 20-thread test below). Then the bot is restarted: a DM
    from before the restart still works."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PERSONA_")} | {"DATABASE_URL": database.url}
    kept: dict[str, Any] = {}

    async def scenario(fake: FakeDiscord, bot: PersonaBot) -> None:
        for round_ in range(3):
            await fake.post(QUIET, KIM, f"<@{BOT_ID}> race {round_}", mentions=[BOT_ID])
            await wait_for(lambda round_=round_: len(draft_dms(fake)) == round_ + 1)
            dm = dict(draft_dms(fake)[round_])
            draft_id = int(button(dm, "send").rsplit(":", 1)[1])
            cli = await asyncio.to_thread(subprocess.Popen, [str(persona_exe), "drafts", "send", str(draft_id), "--text", f"cli {round_}",
                                                             "--no-wait"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            await fake.click(OWNER_ID, dm, button(dm, "send"))
            outcome = await asyncio.to_thread(cli.communicate, timeout=120)
            await wait_for(lambda round_=round_: len(in_channel(fake, QUIET)) == round_ + 1 and
                           rows(engine.store, "SELECT count(*) FROM drafts WHERE status = 'sent'") == [(round_ + 1,)])
            cli_won = cli.returncode == 0
            assert cli_won or "already" in outcome[1], outcome
            sent = in_channel(fake, QUIET)[round_]["content"]
            assert sent.endswith(f"cli {round_}") == cli_won
        await asyncio.sleep(2.5)
        assert len(in_channel(fake, QUIET)) == 3  # once each

        await fake.post(GENERAL, SAM, f"<@{BOT_ID}> after the restart?", mentions=[BOT_ID])
        await wait_for(lambda: len(draft_dms(fake)) == 4)
        kept["dm"] = dict(draft_dms(fake)[3])

    run_with_bot(engine, scenario, send_mode="draft")
    assert sorted(r[4] for r in draft_rows(engine.store)[:3]) != [None] * 3

    async def after_restart(fake: FakeDiscord, bot: PersonaBot) -> None:
        fake.sent.append(kept["dm"])  # the owner's DM, from before
        await fake.click(OWNER_ID, kept["dm"], button(kept["dm"], "send"))
        await wait_for(lambda: len(in_channel(fake, GENERAL)) == 1)

    run_with_bot(engine, after_restart, send_mode="draft")
    assert draft_rows(engine.store)[3][1] == "sent"


def test_modes_by_place_most_specific_first(engine: ReplyEngine, persona_exe: Path, database: Database) -> None:
    """`off` answers nothing, `auto` sends at once, `draft` holds; a channel's mode beats
    its server's, a person's DMs beat all DMs; the owner's own DMs are always answered.
    Set through the CLI and through /persona mode."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PERSONA_")} | {"DATABASE_URL": database.url}
    cli = lambda *args: subprocess.run([str(persona_exe), "mode", *args], env=env, capture_output=True, text=True, timeout=120)  # noqa: E731
    assert cli("set", "off", "--guild", str(GUILD_ID)).returncode == 0
    assert cli("set", "auto", "--channel", str(QUIET)).returncode == 0
    assert cli("set", "auto", "--dms").returncode == 0
    bad = cli("set", "loud", "--dms")
    assert bad.returncode != 0 and "use one of auto, draft, off" in bad.stderr and "Traceback" not in bad.stderr
    both = cli("set", "off", "--dms", "--channel", "5")
    assert both.returncode != 0 and "say where, once" in both.stderr
    listed = json.loads(cli("list", "--json").stdout)
    assert listed["default"] == "draft" and {(p["place"], p["mode"]) for p in listed["places"]} == {("guild", "off"), ("channel", "auto"),
                                                                                                       ("dms", "auto")}
    sam_dm, owner_dm = 777000000000000001, 777000000000000002

    async def scenario(fake: FakeDiscord, bot: PersonaBot) -> None:
        await fake.post(GENERAL, KIM, f"<@{BOT_ID}> anyone?", mentions=[BOT_ID])  # the server is off
        await fake.post(QUIET, KIM, f"<@{BOT_ID}> here?", mentions=[BOT_ID])  # its channel is auto
        await wait_for(lambda: len(in_channel(fake, QUIET)) == 1)
        await fake.post(sam_dm, SAM, "hi alex")  # all DMs: auto
        await wait_for(lambda: len(in_channel(fake, sam_dm)) == 1)
        asked = await fake.interact(OWNER_ID, owner_dm, "persona", {"mode": "off"}, subcommand="mode", users={"user": SAM})
        await wait_for(lambda: fake.responses_to(asked))
        assert fake.responses_to(asked)[0]["content"] == f"DMs with {SAM}: off (no replies)" and fake.responses_to(asked)[0]["ephemeral"]
        refused = await fake.interact(KIM, QUIET, "persona", {"mode": "off"}, subcommand="mode")
        await wait_for(lambda: fake.responses_to(refused))
        assert "only the owner" in fake.responses_to(refused)[0]["content"]
        here = await fake.interact(OWNER_ID, QUIET, "persona", {"mode": "draft"}, subcommand="mode")  # this channel: draft
        await wait_for(lambda: fake.responses_to(here))
        assert fake.responses_to(here)[0]["content"].startswith(f"channel {QUIET}: draft")
        await fake.post(QUIET, KIM, f"<@{BOT_ID}> and now?", mentions=[BOT_ID])
        await wait_for(lambda: len(draft_dms(fake)) == 1)
        await fake.post(sam_dm, SAM, "still there?")
        await fake.post(owner_dm, OWNER_ID, "talking to myself")  # the owner's DMs: always answered
        await wait_for(lambda: len(in_channel(fake, owner_dm)) == 1)
        await asyncio.sleep(1.0)
        assert not in_channel(fake, GENERAL) and len(in_channel(fake, sam_dm)) == 1 and len(in_channel(fake, QUIET)) == 1
        assert len(draft_dms(fake)) == 1

    run_with_bot(engine, scenario, send_mode="draft")
    with engine.store.connect() as conn:
        assert send_modes.mode_for(conn, "draft", channel_id=sam_dm, guild_id=None, person_id=SAM) == "off"
        assert send_modes.mode_for(conn, "auto", channel_id=QUIET, guild_id=GUILD_ID, person_id=KIM) == "draft"  # set in Discord
        assert send_modes.mode_for(conn, "draft", channel_id=123, guild_id=GUILD_ID, person_id=KIM) == "off"
        assert send_modes.mode_for(conn, "auto", channel_id=123, guild_id=999, person_id=KIM) == "auto"  # nothing set: the default
        send_modes.clear(conn, Place("guild", GUILD_ID))
        assert send_modes.mode_for(conn, "draft", channel_id=123, guild_id=GUILD_ID, person_id=KIM) == "draft"


def _held(conn: Any, *, asker: int, channel: int, text: str, quoted: tuple[int, ...] = (), adapter: int | None = None) -> drafts.Draft:
    return hold_draft(conn, asker=asker, channel=channel, asked=text, draft=f"draft about {text}", guild=GUILD_ID, quoted=quoted, adapter=adapter,
                      asker_name="someone")


def test_forget_deletes_drafts_with_the_person_channel_and_range(database: Database) -> None:
    """A draft holds the asker's words and a prompt quoting others: forgetting any of them
    (or the channel, or the time) deletes it; the CLI's list shows what is left."""
    from persona.privacy.forget import carry_out, forget_channel, forget_person, forget_range

    store = Store(database)
    with store.connect() as conn:
        _held(conn, asker=KIM, channel=GENERAL, text=f"kim says {CANARY}")
        _held(conn, asker=SAM, channel=QUIET, text="sam quoting kim", quoted=(KIM,))
        _held(conn, asker=SAM, channel=GENERAL, text="sam in general")
        _held(conn, asker=SAM, channel=QUIET, text="sam alone in quiet")
        conn.commit()
        result, _ = carry_out(conn, lambda c: forget_person(c, KIM), None)
        assert result.drafts == 2 and "2 drafts" in result.describe()
        assert CANARY not in json.dumps(rows(store, "SELECT * FROM drafts"), default=str)
        result, _ = carry_out(conn, lambda c: forget_channel(c, GENERAL), None)
        assert result.drafts == 1
        now = conn.execute("SELECT now()").fetchone()[0]
        result, _ = carry_out(conn, lambda c: forget_range(c, now - timedelta(hours=1), now + timedelta(hours=1)), None)
        assert result.drafts == 1
    assert rows(store, "SELECT count(*) FROM drafts") == [(0,)]


def test_decisions_race_in_the_database_and_the_cli_reports(database: Database, persona_exe: Path) -> None:
    """Twenty threads approve, edit and discard one draft at once: exactly one wins. The
    CLI lists drafts as JSON and refuses what cannot be done in one line."""
    store = Store(database)
    with store.connect() as conn:
        draft = _held(conn, asker=KIM, channel=GENERAL, text="race me")
        conn.commit()
    wins: list[str] = []
    barrier = threading.Barrier(20)

    def decide(i: int) -> None:
        with store.connect() as conn:
            barrier.wait()
            decision = drafts.discard(conn, draft.id, via="cli") if i % 2 else drafts.approve(conn, draft.id, via="dashboard", text=f"edit {i}")
            conn.commit()
            if decision.changed:
                wins.append(decision.draft.status if decision.draft else "?")

    threads = [threading.Thread(target=decide, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1
    with store.connect() as conn:  # an approved draft is claimed for sending by exactly one claim
        claims = [drafts.claim_approved(conn), drafts.claim_approved(conn)]
        conn.commit()
    assert [len(c) for c in claims] == ([0, 0] if wins == ["discarded"] else [1, 0])

    env = {k: v for k, v in os.environ.items() if not k.startswith("PERSONA_")} | {"DATABASE_URL": database.url}
    listed = subprocess.run([str(persona_exe), "drafts", "list", "--json"], env=env, capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0, listed.stderr
    (shown,) = json.loads(listed.stdout)
    assert {"id", "status", "text"} <= set(shown) and shown["id"] == draft.id
    assert shown["status"] == ("discarded" if wins == ["discarded"] else "sending")  # claimed above
    again = subprocess.run([str(persona_exe), "drafts", "discard", str(draft.id)], env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 1 and f"draft {draft.id} is already" in again.stderr and len(again.stderr.strip().splitlines()) == 1
    missing = subprocess.run([str(persona_exe), "drafts", "send", "999999"], env=env, capture_output=True, text=True, timeout=120)
    assert missing.returncode == 1 and "no such draft" in missing.stderr
    empty = subprocess.run([str(persona_exe), "drafts", "send", str(draft.id), "--text", "   "], env=env, capture_output=True, text=True,
                           timeout=120)
    assert empty.returncode != 0 and "empty" in empty.stderr


@pytest.mark.parametrize("ttl", ["90m", "24h", "2d"])
def test_draft_ttl_reads_durations(ttl: str) -> None:
    from persona.config import Settings

    assert Settings(draft_ttl=ttl).draft_ttl == {"90m": timedelta(minutes=90), "24h": timedelta(hours=24), "2d": timedelta(days=2)}[ttl]


class Scripted(FakeEngine):
    """Answers the next of `replies` (the last one again when they run out), handing it out
    word by word as a model streams."""

    def __init__(self, spec: BaseModelSpec, replies: list[str], pause: float = 0.0) -> None:
        super().__init__(spec, GenerationSettings(max_new_tokens=40, temperature=0.8, top_p=0.9, repetition_penalty=1.0))
        self.replies, self.pause = list(replies), pause

    def generate(self, messages: Any, *, on_text: Any = None, **options: Any) -> Generated:
        text = self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]
        for word in text.split(" "):
            if on_text is not None:
                on_text(word + " ")
                time.sleep(self.pause)
        return Generated(text, len(text.split()))


def scripted_engine(database: Database, embedder: Embedder, tmp_path: Path, spec: BaseModelSpec, replies: list[str],
                    pause: float = 0.0) -> ReplyEngine:
    return make_engine(database, Scripted(spec, replies, pause), embedder, tmp_path)  # type: ignore[arg-type]


def test_past_the_hourly_limits_automatic_replies_become_drafts(database: Database, embedder: Embedder, tmp_path: Path,
                                                                 tiny_llama: BaseModelSpec) -> None:
    """In auto mode the 31st automatic reply in an hour (PERSONA_MAX_SENDS_PER_HOUR's
    default) is held as a draft, with the reason in the owner's DM; so is the 3rd in one
    channel when the per-channel limit is 2. The owner may still send it, and that send is
    not an automatic one."""
    engine = scripted_engine(database, embedder, tmp_path, tiny_llama, ["sure thing ✨"])
    sent_here = lambda fake, channel: len(in_channel(fake, channel))  # noqa: E731

    async def thirty_one(fake: FakeDiscord, bot: PersonaBot) -> None:
        for n in range(31):
            await fake.post(GENERAL, KIM, f"<@{BOT_ID}> general {n}", mentions=[BOT_ID])
            await wait_for(lambda n=n: sent_here(fake, GENERAL) + len(draft_dms(fake)) == n + 1 and
                           rows(engine.store, "SELECT count(*) FROM replies")[0][0] + len(draft_dms(fake)) == n + 1)
        assert sent_here(fake, GENERAL) == 30 and "Held back: already 30 automatic replies in the last hour" in draft_dms(fake)[0]["content"]
        await fake.click(OWNER_ID, draft_dms(fake)[0], button(draft_dms(fake)[0], "send"))  # the owner may still send it
        await wait_for(lambda: sent_here(fake, GENERAL) == 31)

    counted = {outcome: metrics.REGISTRY.get_sample_value("persona_replies_total", {"outcome": outcome}) for outcome in ("sent", "held")}
    run_with_bot(engine, thirty_one, services_options={"per_user_rate": 1000, "max_sends_per_hour_per_channel": 1000})
    with engine.store.connect() as conn:
        assert replies.automatic_sends(conn, timedelta(hours=1)) == 30  # the owner's send is not an automatic one
    # /metrics counts them the same way: 30 sent, 1 held (the owner's later send of a draft is not a reply the bot made)
    assert metrics.REGISTRY.get_sample_value("persona_replies_total", {"outcome": "sent"}) - counted["sent"] == 30
    assert metrics.REGISTRY.get_sample_value("persona_replies_total", {"outcome": "held"}) - counted["held"] == 1

    async def per_channel(fake: FakeDiscord, bot: PersonaBot) -> None:
        for n in range(3):
            await fake.post(QUIET, SAM, f"<@{BOT_ID}> quiet {n}", mentions=[BOT_ID])
            await wait_for(lambda n=n: sent_here(fake, QUIET) + len(draft_dms(fake)) == n + 1)
        assert sent_here(fake, QUIET) == 2 and "Held back: already 2 automatic replies in this channel" in draft_dms(fake)[0]["content"]

    run_with_bot(engine, per_channel, services_options={"max_sends_per_hour": 1000, "max_sends_per_hour_per_channel": 2})


def test_the_guard_keeps_never_say_and_offensive_replies_out_of_the_channel(database: Database, embedder: Embedder, tmp_path: Path,
                                                                            tiny_llama: BaseModelSpec) -> None:
    """A streamed reply whose second sentence holds a never-say phrase: the first sentence
    may have shown for a moment, the phrase never does; the message is taken back and the
    reply waits as a draft with the reason. An offensive reply (typing delivery) too."""
    with Store(database).connect() as conn:
        guard.add(conn, "Secret   PLAN")
        conn.commit()
    sneaky = "ngl that sounds fun. also the secret plan is tuesday ✨"
    engine = scripted_engine(database, embedder, tmp_path, tiny_llama, [sneaky, "you are a stupid idiot", "love that 🥲"], pause=0.4)

    async def scenario(fake: FakeDiscord, bot: PersonaBot) -> None:
        await fake.post(GENERAL, KIM, f"<@{BOT_ID}> plans?", mentions=[BOT_ID])
        await wait_for(lambda: len(draft_dms(fake)) == 1)
        everything_shown = [m["content"] for m in fake.sent + fake.deleted if m["channel_id"] == str(GENERAL)] + [e["content"] for e in fake.edits]
        assert not any("secret plan" in text for text in everything_shown)
        assert not in_channel(fake, GENERAL)  # taken back
        assert "Held back: your never-say list has “secret plan”" in draft_dms(fake)[0]["content"]

    run_with_bot(engine, scenario, delivery="stream")

    async def rude(fake: FakeDiscord, bot: PersonaBot) -> None:
        await fake.post(QUIET, KIM, f"<@{BOT_ID}> rate me", mentions=[BOT_ID])
        await wait_for(lambda: len(draft_dms(fake)) == 1)
        assert "may be offensive" in draft_dms(fake)[0]["content"] and not in_channel(fake, QUIET)
        await fake.post(QUIET, KIM, f"<@{BOT_ID}> and now?", mentions=[BOT_ID])  # a clean reply goes out, with the disclosure line
        await wait_for(lambda: len(in_channel(fake, QUIET)) == 1)
        assert in_channel(fake, QUIET)[0]["content"] == DISCLOSED + "love that 🥲"

    run_with_bot(engine, rude)
    assert [r[1] for r in draft_rows(engine.store)] == ["pending", "pending"]


def test_an_invented_identity_never_reaches_the_channel(database: Database, embedder: Embedder, tmp_path: Path,
                                                       tiny_llama: BaseModelSpec) -> None:
    """Streamed: the sentence that names the owner wrongly is never shown, and the message
    ends without it. A reply that is nothing but invented identity (and whose second try
    invents again) is held as a draft with the reason; the channel sees nothing."""
    engine = scripted_engine(database, embedder, tmp_path, tiny_llama, [
        "hey there. my name is ellyn moseleo. how r u?",
        "my name is ellyn moseleo", "i'm 27 years old lol"], pause=0.3)

    async def scenario(fake: FakeDiscord, bot: PersonaBot) -> None:
        await fake.post(GENERAL, KIM, f"<@{BOT_ID}> hey what's up", mentions=[BOT_ID])
        await wait_for(lambda: rows(engine.store, "SELECT count(*) FROM replies")[0][0] == 1)
        everything_shown = [m["content"] for m in fake.sent + fake.deleted] + [e["content"] for e in fake.edits]
        assert not any("ellyn" in text for text in everything_shown)
        assert in_channel(fake, GENERAL)[-1]["content"] == DISCLOSED + "hey there.\nhow r u?"

        await fake.post(QUIET, KIM, f"<@{BOT_ID}> who are you?", mentions=[BOT_ID])
        await wait_for(lambda: len(draft_dms(fake)) == 1)
        assert not in_channel(fake, QUIET)
        everything_shown = [m["content"] for m in fake.sent + fake.deleted if m["channel_id"] == str(QUIET)] + [e["content"] for e in fake.edits]
        assert not any("ellyn" in text or "27" in text for text in everything_shown)
        assert "my name is ellyn moseleo" in draft_dms(fake)[0]["content"]  # the owner sees why

    run_with_bot(engine, scenario, delivery="stream")
    assert [r[1] for r in draft_rows(engine.store)] == ["pending"]


def test_a_draft_for_a_channel_that_is_gone_says_why_and_sends_nothing(engine: ReplyEngine) -> None:
    async def scenario(fake: FakeDiscord, bot: PersonaBot) -> None:
        await fake.post(GENERAL, KIM, f"<@{BOT_ID}> still here?", mentions=[BOT_ID])
        await wait_for(lambda: len(draft_dms(fake)) == 1)
        fake.gone_channels.add(GENERAL)  # the channel was deleted, or the bot removed from the server
        await fake.click(OWNER_ID, draft_dms(fake)[0], button(draft_dms(fake)[0], "send"))
        await wait_for(lambda: "Not sent: Discord refused: Unknown Channel" in draft_dms(fake)[0]["content"])
        assert not in_channel(fake, GENERAL)

    run_with_bot(engine, scenario, send_mode="draft")
    assert [r[1] for r in draft_rows(engine.store)] == ["failed"]
    assert rows(engine.store, "SELECT count(*) FROM disclosures") == [(0,)]  # nobody was told: the next reply says it


def test_guard_and_bad_values_on_the_command_line(database: Database, persona_exe: Path) -> None:
    store = Store(database)
    with store.connect() as conn:
        draft = _held(conn, asker=KIM, channel=GENERAL, text="long one")
        conn.commit()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PERSONA_")} | {"DATABASE_URL": database.url}
    run = lambda *args, extra=None: subprocess.run([str(persona_exe), *args], env=env | (extra or {}), capture_output=True, text=True,  # noqa: E731
                                                   timeout=120)
    too_long = run("drafts", "send", str(draft.id), "--text", "x" * 2001)
    assert too_long.returncode == 1 and "at most 2,000 can be sent" in too_long.stderr and len(too_long.stderr.strip().splitlines()) == 1
    zero = run("drafts", "list", extra={"PERSONA_DRAFT_TTL": "0"})
    assert zero.returncode == 2 and "PERSONA_DRAFT_TTL" in zero.stderr and "Traceback" not in zero.stderr
    assert run("guard", "add", "Pineapple Pizza").returncode == 0
    assert "already" in run("guard", "add", "pineapple   pizza").stdout
    assert json.loads(run("guard", "list", "--json").stdout) == {"never_say": ["pineapple pizza"], "offensive_threshold": 0.9}
    missing = run("guard", "remove", "anchovies")
    assert missing.returncode == 1 and "not on the never-say list" in missing.stderr
    assert run("guard", "remove", "PINEAPPLE PIZZA").returncode == 0
    assert rows(store, "SELECT count(*) FROM drafts WHERE status = 'pending'") == [(1,)]  # nothing was sent by the refusals


def test_the_screen_matches_whole_words_in_any_case() -> None:
    screen = guard.Screen(("secret plan", "ex"), offensive_threshold=1.0)
    assert screen.reason("The SECRET\nplan!") == "your never-say list has “secret plan”"
    assert screen.reason("my ex called") is not None and screen.reason("an exciting text") is None
    assert screen.reason("you are a stupid idiot") is None  # the model is off at 1.0
    assert guard.Screen((), 0.9).reason("you are a stupid idiot") is not None
    assert guard.Screen((), 0.9).reason("miso is my cat ✨") is None


def test_the_approval_rate_per_adapter_version(database: Database, persona_exe: Path) -> None:
    """Of each version's decided drafts: sent as written, edited (by how many characters),
    discarded; pending and expired ones are not judgments and do not count."""
    from persona import adapters

    store = Store(database)
    with store.connect() as conn:
        version = adapters.create_candidate(conn, base_model="tiny", parent_id=None, hyperparams={}, data_watermark=0, feedback_watermark=0)
        ids = [_held(conn, asker=KIM, channel=GENERAL, text=f"q{i}", adapter=version).id for i in range(6)]
        base = _held(conn, asker=KIM, channel=GENERAL, text="base", adapter=None).id
        drafts.approve(conn, ids[0], via="cli")
        drafts.approve(conn, ids[1], via="discord", text="draft about q1")  # the same words: sent as written
        drafts.approve(conn, ids[2], via="dashboard", text="draft about q2!!")  # two characters added
        drafts.discard(conn, ids[3], via="cli")
        conn.execute("UPDATE drafts SET expires_at = now() - interval '1 second' WHERE id = %s", (ids[4],))
        drafts.expire_due(conn)
        drafts.discard(conn, base, via="cli")
        conn.commit()
        rates = {a.adapter_version: a for a in drafts.approval(conn)}
    assert rates[version] == drafts.Approval(version, decided=4, sent=2, edited=1, discarded=1, mean_edit_chars=2.0)
    assert rates[version].approval_rate == 0.5 and rates[version].describe() == "50% sent as written (2 of 4, edited 1 (~2 characters), discarded 1)"
    assert rates[None].decided == 1 and rates[None].discarded == 1
    env = {k: v for k, v in os.environ.items() if not k.startswith("PERSONA_")} | {"DATABASE_URL": database.url}
    listed = subprocess.run([str(persona_exe), "adapters", "--json"], env=env, capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout)[0]["drafts"]["approval_rate"] == 0.5


def test_a_draft_past_its_time_reads_as_expired_before_the_bot_marks_it(database: Database) -> None:
    """The CLI and the dashboard read a draft past its TTL as expired and cannot send it;
    only the bot's loop marks it so, because it also updates the owner's DM."""
    store = Store(database)
    with store.connect() as conn:
        late = _held(conn, asker=KIM, channel=GENERAL, text="too late")
        conn.execute("UPDATE drafts SET expires_at = now() - interval '1 second' WHERE id = %s", (late.id,))
        conn.commit()
        assert drafts.get(conn, late.id).status == "expired"
        assert [d.id for d in drafts.listed(conn, statuses=("expired",))] == [late.id] and drafts.listed(conn, statuses=("pending",)) == []
        refused = drafts.approve(conn, late.id, via="cli")
        assert not refused.changed and refused.refusal() == f"draft {late.id} is already expired unsent"
        conn.commit()
        assert rows(store, "SELECT status FROM drafts") == [("pending",)]
        assert [d.id for d in drafts.expire_due(conn)] == [late.id]

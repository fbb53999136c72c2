"""Storing history: one merge policy for imports, live capture and backfill, and the
writer scrubs what it stores whoever calls it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from ingest.discord_package import ingest_discord_package
from persona.history.capture import LiveMessage, store_live
from persona.history.people import is_opted_out, resolve_owner
from persona.history.writer import Channel, HistoryWriter, Person
from persona.privacy.forget import opt_out
from persona.storage.store import Store
from tests.fixtures.discord_package import OWNER_ID, FakeChannel, write_package
from tests.helpers import rows

CANARY_MAIL = "kim.canary.7731@example.org"
CANARY_TOKEN = "MTA5ODc2NTQzMjEwOTg3NjU0.GhIjKl.abcdefghijklmnopqrstuvwxyz0123456"
GUILD, CHANNEL, KIM = 5000000000000000001, 1000000000000000004, 333333333333333333


def live(message_id: int, author: int, text: str, *, name: str = "kim", at: int = 0) -> LiveMessage:
    return LiveMessage(message_id, CHANNEL, author, name, datetime(2024, 5, 1, 18, at, tzinfo=UTC), text,
                       guild_id=GUILD, guild_name="Rust Fans", channel_name="general")


def test_the_writer_scrubs_whatever_its_caller_hands_it(store: Store) -> None:
    with store.connect() as conn, conn.transaction():
        writer = HistoryWriter(conn, "dce")
        writer.add_person(Person(KIM, "kim"))
        writer.add_channel(Channel(CHANNEL, "guild_text", f"guild:{GUILD}", name="general", guild_id=GUILD))
        writer.add_message(1, CHANNEL, KIM, "2024-05-01T18:00:00+00:00", f"mail me at {CANARY_MAIL}, bot token {CANARY_TOKEN}")
        assert writer.merge().new == 1
    (content,) = rows(store, "SELECT content FROM messages")[0]
    assert CANARY_MAIL not in content and CANARY_TOKEN not in content
    assert "<EMAIL>" in content and "<SECRET>" in content


def test_live_capture_merges_like_an_import(store: Store, tmp_path: Path) -> None:
    with store.connect() as conn, conn.transaction():
        # The owner speaks first, live: the owner flag is set (only ever added), and a mention is rendered.
        assert store_live(conn, [live(10, OWNER_ID, "hi <@333333333333333333>", name="alex")], owner_id=OWNER_ID) == 1
        assert resolve_owner(conn, None).id == OWNER_ID
        assert store_live(conn, [live(11, KIM, f"reach me at {CANARY_MAIL}", at=1)], owner_id=OWNER_ID) == 1
        assert store_live(conn, [live(11, KIM, "the same message again", at=1)], owner_id=OWNER_ID) == 0  # stored once
    assert rows(store, "SELECT id, content, source FROM messages ORDER BY id") == [
        (10, "hi @someone", "live"), (11, "reach me at <EMAIL>", "live")]

    # The data package later carries message 10 again: the richer live record stays; names are kept.
    channel = FakeChannel(id=CHANNEL, kind="guild_text", name="general", guild=(GUILD, "Rust Fans"),
                          messages=[(10, "2024-05-01 18:00:00", "hi", "")])
    ingest_discord_package(store, write_package(tmp_path / "package", [channel]), owner_id=None)
    assert rows(store, "SELECT content, source FROM messages WHERE id = 10") == [("hi @someone", "live")]
    assert rows(store, "SELECT name FROM people WHERE id = %s", KIM) == [("kim",)]

    # An opted-out person is refused by the same statement that stores.
    with store.connect() as conn, conn.transaction():
        opt_out(conn, KIM)
        assert store_live(conn, [live(12, KIM, "am I kept?", at=2)], owner_id=OWNER_ID) == 0
        assert is_opted_out(conn, KIM)
    assert rows(store, "SELECT count(*) FROM messages WHERE author_id = %s", KIM) == [(0,)]

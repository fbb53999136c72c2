"""WhatsApp exports in several locales, an Obsidian vault and plain journals."""

from __future__ import annotations

import os
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ingest.loader import IngestError
from ingest.obsidian import ingest_obsidian
from ingest.text import ingest_text
from ingest.whatsapp import ingest_whatsapp
from persona.storage.store import Store
from tests.fixtures.discord_package import OWNER_ID
from tests.helpers import rows

NNBSP = "\u202f"
LRM = "\u200e"

ANDROID_US = f"""12/31/21, 10:15{NNBSP}PM - Messages and calls are end-to-end encrypted. No one outside of this chat can read them.
12/31/21, 10:15{NNBSP}PM - Sam: happy new year's eve!!
12/31/21, 10:16{NNBSP}PM - Alex: lol same to u
this is line two
and three
12/31/21, 10:17{NNBSP}PM - Alex: <Media omitted>
12/31/21, 10:18{NNBSP}PM - Sam: This message was deleted
1/1/22, 12:01{NNBSP}AM - Sam: call me at +1 (555) 010-9999
"""

ANDROID_DE = """31.12.21, 22:15 - Sam: frohes neues
31.12.21, 22:16 - Alex: danke dir
01.01.22, 00:01 - Sam: 🎉
"""

IOS_GROUP = f"""[13/02/2023, 09:05:11] Crew: {LRM}Messages and calls are end-to-end encrypted. No one outside of this chat can read them.
[13/02/2023, 09:05:11] {LRM}Sam added Kim
[13/02/2023, 09:06:02] Alex: morning crew
[13/02/2023, 09:06:30] Kim: {LRM}image omitted
[13/02/2023, 09:07:00] Kim: coffee at 10:30?
[13/02/2023, 09:07:45] Sam: yes
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_android_us_export(store: Store, tmp_path: Path) -> None:
    path = write(tmp_path / "WhatsApp Chat with Sam.txt", ANDROID_US)
    summary = ingest_whatsapp(store, [path], owner_id=OWNER_ID, me="Alex", timezone="America/New_York")
    assert summary.new == 3
    assert summary.skipped_reasons == {"media_only": 1, "deleted": 1}
    messages = rows(store, "SELECT m.created_at, p.name, p.is_owner, m.content FROM messages m JOIN people p ON p.id = m.author_id ORDER BY m.created_at")
    assert messages[1][1:] == ("Alex", True, "lol same to u\nthis is line two\nand three")
    # 10:16 PM in New York on Dec 31 is 03:16 UTC on Jan 1.
    assert messages[1][0].astimezone(UTC) == datetime(2022, 1, 1, 3, 16, tzinfo=UTC)
    assert messages[2][3] == "call me at <PHONE>"
    channel = rows(store, "SELECT kind, scope, name FROM channels")[0]
    assert channel[0] == "dm" and channel[1].startswith("dm:-") and channel[2] == "Sam"


def test_german_android_and_ios_group_exports(store: Store, tmp_path: Path) -> None:
    write(tmp_path / "chats" / "WhatsApp Chat mit Sam.txt", ANDROID_DE)
    ios = tmp_path / "chats" / "WhatsApp Chat - Crew.zip"
    with zipfile.ZipFile(ios, "w") as archive:
        archive.writestr("_chat.txt", IOS_GROUP)
    summary = ingest_whatsapp(store, [tmp_path / "chats"], owner_id=OWNER_ID, me="Alex", timezone="Europe/Berlin")
    assert summary.new == 3 + 3
    assert summary.skipped_reasons["system"] == 1 and summary.skipped_reasons["media_only"] == 1
    channels = {name: (kind, scope) for name, kind, scope in rows(store, "SELECT name, kind, scope FROM channels")}
    assert channels["Sam"][0] == "dm"
    assert channels["Crew"][0] == "group_dm" and channels["Crew"][1].startswith("group:-")
    first_de = rows(store, "SELECT created_at FROM messages WHERE content = 'frohes neues'")[0][0]
    assert first_de.astimezone(UTC) == datetime(2021, 12, 31, 21, 15, tzinfo=UTC)  # day-first, CET
    ios_msg = rows(store, "SELECT created_at FROM messages WHERE content = 'coffee at 10:30?'")[0][0]
    assert ios_msg.astimezone(UTC) == datetime(2023, 2, 13, 8, 7, tzinfo=UTC)


def test_reexport_with_more_messages_adds_only_new(store: Store, tmp_path: Path) -> None:
    path = write(tmp_path / "WhatsApp Chat with Sam.txt", ANDROID_DE)
    ingest_whatsapp(store, [path], owner_id=OWNER_ID, me="Alex", timezone="UTC")
    write(path, ANDROID_DE + "01.01.22, 00:02 - Alex: 🎉\n01.01.22, 00:02 - Alex: 🎉\n")
    summary = ingest_whatsapp(store, [path], owner_id=OWNER_ID, me="Alex", timezone="UTC")
    assert summary.new == 2 and summary.total["duplicate"] == 3


def test_whatsapp_needs_to_know_who_is_the_owner(store: Store, tmp_path: Path) -> None:
    path = write(tmp_path / "WhatsApp Chat with Sam.txt", ANDROID_DE)
    with pytest.raises(IngestError, match=r"pass --me NAME .*senders: Sam, Alex"):
        ingest_whatsapp(store, [path], owner_id=OWNER_ID, me=None, timezone="UTC")
    with pytest.raises(IngestError, match="'Bob' wrote none of these messages"):
        ingest_whatsapp(store, [path], owner_id=OWNER_ID, me="Bob", timezone="UTC")
    assert rows(store, "SELECT count(*) FROM messages") == [(0,)]


def make_vault(root: Path) -> Path:
    write(root / "Daily" / "2023-02-13.md",
          "---\ncreated: 2023-02-13T08:00:00\ntags: [daily]\n---\n# Monday\n\nTalked to [[Sam|my brother]] about [[Rust]].\n![[photo.png]]\n"
          "%% private comment %%\n## Todo\n- call the bank, card 4111 1111 1111 1111\n")
    write(root / "Ideas.md", "A persona bot that talks like me.\n\nSecond paragraph.")
    write(root / "Empty.md", "---\ntitle: nothing\n---\n")
    write(root / ".obsidian" / "workspace.md", "should not be imported")
    write(root / ".trash" / "old.md", "deleted note")
    return root


def test_obsidian_vault(store: Store, tmp_path: Path) -> None:
    vault = make_vault(tmp_path / "Vault")
    summary = ingest_obsidian(store, vault, owner_id=OWNER_ID)
    assert summary.new == 2 and summary.skipped_reasons == {"empty": 1}
    notes = dict(rows(store, "SELECT attachments->>0, content FROM messages"))
    daily = notes["Daily/2023-02-13.md"]
    assert daily.startswith("# Monday") and "## Todo" in daily
    assert "Talked to my brother about Rust." in daily
    assert "photo.png" not in daily and "private comment" not in daily and "tags" not in daily
    assert "<CARD>" in daily and "4111" not in daily
    assert notes["Ideas.md"].startswith("# Ideas\n\nA persona bot")
    assert rows(store, "SELECT DISTINCT scope, kind FROM channels") == [("private", "notes")]
    assert rows(store, "SELECT DISTINCT scope, source FROM messages") == [("private", "obsidian")]
    created = rows(store, "SELECT created_at FROM messages WHERE attachments->>0 = 'Daily/2023-02-13.md'")[0][0]
    assert created == datetime(2023, 2, 13, 8, 0, tzinfo=UTC)


def test_edited_note_replaces_the_old_text(store: Store, tmp_path: Path) -> None:
    vault = make_vault(tmp_path / "Vault")
    ingest_obsidian(store, vault, owner_id=OWNER_ID)
    assert ingest_obsidian(store, vault, owner_id=OWNER_ID).total == {"new": 0, "updated": 0, "duplicate": 2, "skipped": 1}
    idea = vault / "Ideas.md"
    idea.write_text("Rewritten idea.")
    later = idea.stat().st_mtime + 60
    os.utime(idea, (later, later))
    summary = ingest_obsidian(store, vault, owner_id=OWNER_ID)
    assert summary.total["updated"] == 1
    assert rows(store, "SELECT content FROM messages WHERE attachments->>0 = 'Ideas.md'") == [("# Ideas\n\nRewritten idea.",)]
    assert rows(store, "SELECT count(*) FROM messages") == [(2,)]


def test_text_journals(store: Store, tmp_path: Path) -> None:
    folder = tmp_path / "journal"
    write(folder / "2021-06-26.txt", "went climbing. mail me: me@example.com")
    write(folder / "notes" / "random thoughts.md", "# thoughts\nmore")
    write(folder / "photo.jpg", "binary-ish")
    summary = ingest_text(store, folder, owner_id=OWNER_ID)
    assert summary.new == 2
    entries = dict(rows(store, "SELECT attachments->>0, content FROM messages"))
    assert entries["2021-06-26.txt"] == "went climbing. mail me: <EMAIL>"
    created = rows(store, "SELECT created_at FROM messages WHERE attachments->>0 = '2021-06-26.txt'")[0][0]
    assert created == datetime(2021, 6, 26, tzinfo=UTC)
    assert rows(store, "SELECT DISTINCT scope FROM messages") == [("private",)]


def test_notes_errors(store: Store, tmp_path: Path) -> None:
    with pytest.raises(IngestError, match="does not exist"):
        ingest_text(store, tmp_path / "nope", owner_id=OWNER_ID)
    file = write(tmp_path / "file.md", "x")
    with pytest.raises(IngestError, match="is not a folder"):
        ingest_obsidian(store, file, owner_id=OWNER_ID)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(IngestError, match="no notes"):
        ingest_text(store, empty, owner_id=OWNER_ID)
    bad = write(tmp_path / "bad" / "x.md", "ok")
    bad.write_bytes(b"caf\xe9")
    with pytest.raises(IngestError, match="is not UTF-8"):
        ingest_text(store, tmp_path / "bad", owner_id=OWNER_ID)
    with pytest.raises(IngestError, match="set PERSONA_OWNER_ID"):
        ingest_obsidian(store, make_vault(tmp_path / "v"), owner_id=None)
    assert rows(store, "SELECT count(*) FROM messages") == [(0,)]


def test_a_long_chat_is_read_streaming(store: Store, tmp_path: Path) -> None:
    """The whole chat was once decoded and parsed into memory (1.67 GB for a 190 MB chat):
    the memory the import allocates now stays far below the size of the file."""
    import tracemalloc

    lines = [f"{1 + i // 1440 % 28:02d}.{1 + i // 40320 % 12:02d}.22, {i // 60 % 24:02d}:{i % 60:02d} - {'Alex' if i % 2 else 'Sam'}: "
             f"message number {i} with some ordinary words in it" for i in range(40_000)]
    path = write(tmp_path / "WhatsApp Chat with Sam.txt", "\n".join(lines) + "\n")
    tracemalloc.start()
    try:
        summary = ingest_whatsapp(store, [path], owner_id=OWNER_ID, me="Alex", timezone="UTC")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert summary.new == 40_000
    assert peak < path.stat().st_size / 2, f"peak {peak:,} bytes for a {path.stat().st_size:,}-byte chat"


def test_a_chat_that_is_not_utf8_is_one_line(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "WhatsApp Chat with Sam.txt"
    path.write_bytes(ANDROID_DE.encode() + b"01.01.22, 00:03 - Sam: caf\xe9\n")
    with pytest.raises(IngestError, match=r"is not UTF-8 text \(after line \d+\)"):
        ingest_whatsapp(store, [path], owner_id=OWNER_ID, me="Alex", timezone="UTC")
    assert rows(store, "SELECT count(*) FROM messages") == [(0,)]

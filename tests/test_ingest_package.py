"""Importing Discord data packages of every layout, idempotently, with clear errors."""

from __future__ import annotations

import json
import os
import subprocess
import zipfile
from pathlib import Path

import pytest

from ingest.discord_package import ingest_discord_package
from ingest.loader import IngestError
from persona.storage.db import Database
from persona.storage.store import Store
from tests.fixtures.discord_package import OWNER_ID, FakeChannel, sample_channels, write_package
from tests.helpers import rows

EXPECTED_SCOPES = {
    1000000000000000001: "dm:222222222222222222",
    1000000000000000003: "group:1000000000000000003",
    1000000000000000004: "guild:5000000000000000001",
    1000000000000000005: "guild:5000000000000000001",
}


@pytest.mark.parametrize("layout", ["current", "csv", "legacy", "translated"])
@pytest.mark.parametrize("as_zip", [False, True])
def test_every_layout_imports_the_same(store: Store, tmp_path: Path, layout: str, as_zip: bool) -> None:
    path = write_package(tmp_path / "package", sample_channels(), layout=layout, as_zip=as_zip)
    summary = ingest_discord_package(store, path, owner_id=None)

    assert summary.new == 8
    assert summary.skipped_reasons["empty"] == 1
    assert rows(store, "SELECT id, name, is_owner FROM people WHERE is_owner") == [(OWNER_ID, "Alex", True)]
    messages = dict(rows(store, "SELECT id, content FROM messages"))
    assert messages[1100000000000000002] == 'line one\nline two, with "quotes", commas'
    assert messages[1100000000000000040] == "thread reply @sam"  # mention rendered with the DM label's name
    assert all(r[0] == OWNER_ID for r in rows(store, "SELECT DISTINCT author_id FROM messages"))
    assert {r[0] for r in rows(store, "SELECT DISTINCT source FROM messages")} == {"package"}

    scopes = dict(rows(store, "SELECT id, scope FROM channels"))
    for channel_id, scope in EXPECTED_SCOPES.items():
        assert scopes[channel_id] == scope
    assert scopes[1000000000000000002].startswith("dm:-")  # deleted user: nobody can ask from there
    assert scopes[1000000000000000006].startswith("guild:-")  # unknown server: owner only
    kinds = dict(rows(store, "SELECT id, kind FROM channels"))
    assert kinds[1000000000000000005] == "thread" and kinds[1000000000000000003] == "group_dm"
    for message_scope, channel_scope in rows(store, "SELECT m.scope, c.scope FROM messages m JOIN channels c ON c.id = m.channel_id"):
        assert message_scope == channel_scope

    created = dict(rows(store, "SELECT id, created_at FROM messages"))
    assert created[1100000000000000001].isoformat().startswith("2021-06-26T10:15:44")
    assert created[1100000000000000001].utcoffset().total_seconds() == 0
    attachments = dict(rows(store, "SELECT id, attachments FROM messages"))
    assert attachments[1100000000000000003] == ["https://cdn.discordapp.com/attachments/1/2/cat.png"]
    run = rows(store, "SELECT status, counts->>'new' FROM import_runs")
    assert run == [("succeeded", "8")]


def test_reimport_adds_nothing_and_newer_package_adds_only_new(store: Store, tmp_path: Path) -> None:
    channels = sample_channels()
    first = ingest_discord_package(store, write_package(tmp_path / "p1", channels), owner_id=None)
    before = rows(store, "SELECT id, seq, content, scope FROM messages ORDER BY id")
    again = ingest_discord_package(store, write_package(tmp_path / "p1", channels), owner_id=None)
    assert again.new == 0 and again.total["duplicate"] == first.new
    assert rows(store, "SELECT id, seq, content, scope FROM messages ORDER BY id") == before

    channels[3].messages.append((1100000000000000099, "2024-01-01 00:00:00", "a new year", ""))
    newer = ingest_discord_package(store, write_package(tmp_path / "p2", channels), owner_id=None)
    assert newer.new == 1 and newer.total["duplicate"] == first.new
    assert len(rows(store, "SELECT 1 FROM messages")) == first.new + 1


PLANTED = {
    "email": "sam.canary.mail@example.org",
    "phone": "+44 20 7946 0958",
    "card": "4111 1111 1111 1111",
    "ip": "203.0.113.77",
    "iban": "GB82 WEST 1234 5698 7654 32",
    "token": "MTA5OTk5OTk5OTk5OTk5OTk5OQ.GhOsTs.abcdefghijklmnopqrstuvwxyz0123456789",
    "password": "hunter2-canary",
    "signature": "hm=canarysignature1234",
}


def test_planted_pii_never_reaches_the_database(store: Store, tmp_path: Path) -> None:
    text = (
        f"mail {PLANTED['email']} call {PLANTED['phone']} card {PLANTED['card']} from {PLANTED['ip']} "
        f"iban {PLANTED['iban']} bot token {PLANTED['token']} password={PLANTED['password']}"
    )
    channel = FakeChannel(
        id=77, kind="dm", recipients=[str(OWNER_ID), "5"], label="Direct Message with x",
        messages=[(7001, "2022-02-02 02:02:02", text, f"https://cdn.discordapp.com/attachments/1/2/a.png?ex=1&is=2&{PLANTED['signature']}&")],
    )
    summary = ingest_discord_package(store, write_package(tmp_path / "p", [channel]), owner_id=None)
    assert summary.new == 1
    with store.connect() as conn:
        dump = "\n".join(str(r) for table in ("messages", "channels", "people", "import_runs") for r in conn.execute(f"SELECT * FROM {table}").fetchall())
    for kind, value in PLANTED.items():
        assert value not in dump, f"planted {kind} reached the database"
    content = rows(store, "SELECT content FROM messages")[0][0]
    for placeholder in ("<EMAIL>", "<PHONE>", "<CARD>", "<IP>", "<IBAN>", "<SECRET>"):
        assert placeholder in content
    assert summary.scrubbed["email"] == 1 and summary.scrubbed["card"] == 1


def test_odd_content_is_handled(store: Store, tmp_path: Path) -> None:
    huge = "word " * 200_000
    odd = "שלום \u200f\u200bzero-width 👩‍👩‍👧‍👦 family e\u0301 nul\x00byte"
    channel = FakeChannel(
        id=88, kind="guild_text", name="odd", guild=(9, "G"),
        messages=[(8001, "2022-01-01 00:00:00", huge, ""), (8002, "2022-01-01 00:00:01", odd, "")],
    )
    summary = ingest_discord_package(store, write_package(tmp_path / "p", [channel]), owner_id=None)
    assert summary.new == 2
    stored = dict(rows(store, "SELECT id, content FROM messages"))
    assert len(stored[8001]) == len(huge)
    assert stored[8002] == odd.replace("\x00", "")


def test_owner_from_setting_when_package_has_no_user_json(store: Store, tmp_path: Path) -> None:
    path = write_package(tmp_path / "p", sample_channels(), owner_id=None)
    with pytest.raises(IngestError, match="set PERSONA_OWNER_ID"):
        ingest_discord_package(store, path, owner_id=None)
    summary = ingest_discord_package(store, path, owner_id=OWNER_ID)
    assert summary.new == 8


def test_owner_mismatch_is_refused(store: Store, tmp_path: Path) -> None:
    path = write_package(tmp_path / "p", sample_channels())
    with pytest.raises(IngestError, match="PERSONA_OWNER_ID is 1234"):
        ingest_discord_package(store, path, owner_id=1234)


def _corrupt(kind: str, tmp_path: Path) -> Path:
    channels = sample_channels()
    if kind == "not a zip":
        path = tmp_path / "package.zip"
        path.write_bytes(b"this is not a zip file at all" * 10)
        return path
    if kind == "corrupt zip":
        path = write_package(tmp_path / "package", channels, as_zip=True)
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
        return path
    if kind == "not a package":
        path = tmp_path / "holiday.zip"
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("photos/beach.txt", "sun")
        return path
    csv_layout = kind in ("wrong csv header", "non-utf8 csv")
    root = write_package(tmp_path / "package", channels, layout="csv" if csv_layout else "current")
    late = root / ("messages" if csv_layout else "Messages") / "c1000000000000000005"
    if kind == "truncated json":
        target = late / "messages.json"
        target.write_bytes(target.read_bytes()[:-7])
    elif kind == "wrong csv header":
        target = late / "messages.csv"
        target.write_text("Id,When,Text\n1,2,3\n")
    elif kind == "non-utf8":
        target = late / "messages.json"
        target.write_bytes(b'[{"ID": 1, "Timestamp": "2021-01-01 00:00:00", "Contents": "caf\xe9", "Attachments": ""}]')
    elif kind == "non-utf8 csv":
        target = (root / "messages" / "c1000000000000000005" / "messages.csv")
        target.write_bytes(b"ID,Timestamp,Contents,Attachments\n1,2021-01-01 00:00:00,caf\xe9,\n")
    elif kind == "object instead of list":
        (late / "messages.json").write_text('{"ID": 1}')
    elif kind == "bad timestamp":
        target = late / "messages.json"
        target.write_text('[{"ID": 1, "Timestamp": "yesterday", "Contents": "x", "Attachments": ""}]')
    return root


BAD_INPUTS = {
    "not a zip": "is not a zip archive",
    "corrupt zip": "is not a zip archive or is damaged",
    "not a package": "is not a Discord data package",
    "truncated json": "is truncated",
    "wrong csv header": "expected ID,Timestamp,Contents,Attachments",
    "non-utf8": "is not UTF-8",
    "non-utf8 csv": "is not UTF-8",
    "object instead of list": "should hold a list of messages",
    "bad timestamp": "unreadable timestamp",
}


@pytest.mark.parametrize("kind", sorted(BAD_INPUTS))
def test_bad_input_is_one_line_and_stores_nothing(store: Store, tmp_path: Path, kind: str) -> None:
    ingest_discord_package(store, write_package(tmp_path / "good", sample_channels()[:1]), owner_id=None)
    before = rows(store, "SELECT id, seq, content FROM messages ORDER BY id"), rows(store, "SELECT * FROM channels ORDER BY id")
    path = _corrupt(kind, tmp_path)
    with pytest.raises(IngestError) as info:
        ingest_discord_package(store, path, owner_id=None)
    assert BAD_INPUTS[kind] in info.value.message
    assert "\n" not in info.value.message
    assert (rows(store, "SELECT id, seq, content FROM messages ORDER BY id"), rows(store, "SELECT * FROM channels ORDER BY id")) == before
    runs = rows(store, "SELECT status, error FROM import_runs ORDER BY id")
    if kind not in ("not a zip", "corrupt zip", "not a package"):  # those fail before an import starts
        assert runs[-1][0] == "failed" and BAD_INPUTS[kind] in runs[-1][1]


def test_cli_imports_and_reports(persona_exe: Path, database: Database, tmp_path: Path) -> None:
    path = write_package(tmp_path / "package", sample_channels(), as_zip=True)
    env = {"DATABASE_URL": database.url, "PATH": "/usr/bin:/bin"}
    result = subprocess.run([str(persona_exe), "ingest", "discord-package", str(path), "--json"], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["new"] == 8 and summary["by_kind"]["dm"]["new"] == 4
    table = subprocess.run([str(persona_exe), "ingest", "discord-package", str(path)], env=env, capture_output=True, text=True, timeout=120)
    assert table.returncode == 0 and "duplicate" in table.stdout


def test_cli_bad_input_exit_code(persona_exe: Path, database: Database, tmp_path: Path) -> None:
    path = _corrupt("truncated json", tmp_path)
    env = {"DATABASE_URL": database.url, "PATH": "/usr/bin:/bin"}
    result = subprocess.run([str(persona_exe), "ingest", "discord-package", str(path)], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "is truncated" in lines[0]


def test_a_zip_bomb_and_absurd_nesting_are_refused_in_one_line(persona_exe: Path, database: Database, tmp_path: Path) -> None:
    """A few hundred bytes that unpack to 20 MB of `[[[[…` once took gigabytes of memory;
    a channel.json nested 100,000 deep was a RecursionError traceback."""
    env = {**os.environ, "DATABASE_URL": database.url}
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("Account/user.json", json.dumps({"id": str(OWNER_ID)}))
        archive.writestr("Messages/index.json", json.dumps({"1000000000000000004": "general"}))
        archive.writestr("Messages/c1000000000000000004/channel.json", json.dumps({"id": "1000000000000000004", "type": "DM"}))
        archive.writestr("Messages/c1000000000000000004/messages.json", "[" * 20_000_000)
    assert bomb.stat().st_size < 100_000
    nested = write_package(tmp_path / "nested", sample_channels())
    (next(nested.rglob("channel.json"))).write_text("[" * 100_000 + "]" * 100_000)
    for path, expected in ((bomb, "refusing a possible zip bomb"), (nested, "nested thousands of levels deep")):
        result = subprocess.run([str(persona_exe), "ingest", "discord-package", str(path)], env=env, capture_output=True, text=True, timeout=120)
        assert result.returncode == 1 and expected in result.stderr, result.stderr[-1500:]
        assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert rows(Store(database), "SELECT count(*) FROM messages") == [(0,)]


WRONG_SHAPES = {
    "Contents as a number": ({"ID": 1130000000000000001, "Timestamp": "2023-01-01 10:00:00", "Contents": 42, "Attachments": ""}, "Contents should be text"),
    "Attachments as a list": ({"ID": 1130000000000000001, "Timestamp": "2023-01-01 10:00:00", "Contents": "hi", "Attachments": ["a"]},
                              "Attachments should be text"),
    "a number too big for any id": ({"ID": 2**70, "Timestamp": "2023-01-01 10:00:00", "Contents": "hi", "Attachments": ""}, "integer overflow"),
    "digits too many for any id": ({"ID": str(2**70), "Timestamp": "2023-01-01 10:00:00", "Contents": "hi", "Attachments": ""}, "no valid ID"),
    "a textual id": ({"ID": "abc", "Timestamp": "2023-01-01 10:00:00", "Contents": "hi", "Attachments": ""}, "no valid ID"),
    "an impossible date": ({"ID": 1130000000000000001, "Timestamp": "2023-02-30 10:00:00", "Contents": "hi", "Attachments": ""}, "impossible date"),
    "year 0": ({"ID": 1130000000000000001, "Timestamp": "0000-01-01 10:00:00", "Contents": "hi", "Attachments": ""}, "impossible date"),
}


@pytest.mark.parametrize("case", list(WRONG_SHAPES))
def test_a_wrong_shaped_field_is_one_line_and_stores_nothing(store: Store, tmp_path: Path, case: str) -> None:
    message, expected = WRONG_SHAPES[case]
    package = write_package(tmp_path / "package", sample_channels())
    target = sorted(package.rglob("messages.json"))[-1]
    target.write_text(json.dumps([message]))
    with pytest.raises(IngestError) as info:
        ingest_discord_package(store, package, owner_id=None)
    assert expected in info.value.message and info.value.message.isprintable()
    assert rows(store, "SELECT count(*) FROM messages") == [(0,)]

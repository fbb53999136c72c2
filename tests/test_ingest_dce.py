"""DiscordChatExporter imports: everyone's messages, scopes, replies, overlap, streaming."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ingest.dce import ingest_dce
from ingest.discord_package import ingest_discord_package
from ingest.loader import IngestError
from persona.storage.db import Database
from persona.storage.store import Store
from tests.fixtures.dce import BOT, FRIEND, OTHER, OWNER, message, write_export, write_large_export
from tests.fixtures.discord_package import OWNER_ID, FakeChannel, write_package
from tests.helpers import rows

GUILD = ("5000000000000000001", "Rust Fans")


def dm_export(tmp_path: Path) -> Path:
    return write_export(
        tmp_path / "dms" / "sam.json", channel_id=1000000000000000001, channel_type="DirectTextChat",
        messages=[
            message(1100000000000000001, OWNER, "hey sam, lunch at 12:30?", ts="2021-06-26T12:15:44.000+02:00"),
            message(1200000000000000001, FRIEND, "sure! <@80351110224678912> same place?", reply_to=1100000000000000001, type="Reply",
                    mentions=[OWNER]),
            message(1200000000000000002, FRIEND, "", type="RecipientAdd"),
            message(1200000000000000003, FRIEND, "", attachments=["https://cdn.discordapp.com/attachments/1/2/x.png?ex=1&is=2&hm=3&"]),
        ],
    )


def guild_exports(tmp_path: Path) -> list[Path]:
    general = write_export(
        tmp_path / "guild" / "general.json", channel_id=1000000000000000004, channel_type="GuildTextChat", guild=GUILD, name="general",
        messages=[
            message(1100000000000000030, OWNER, "cargo 1.79 is out", edited="2023-07-08T10:00:00+00:00"),
            message(1300000000000000001, OTHER, "nice, @alex", mentions=[OWNER]),
            message(1300000000000000002, BOT, "!rank alex"),
            message(1300000000000000003, OTHER, "", type="ThreadCreated"),
        ],
    )
    thread = write_export(
        tmp_path / "guild" / "thread.json", channel_id=1000000000000000005, channel_type="GuildPublicThread", guild=GUILD,
        name="release-thread", category_id="1000000000000000004",
        messages=[message(1100000000000000040, OWNER, "thread reply"), message(1300000000000000010, FRIEND, "agreed")],
    )
    return [general, thread]


def test_dm_and_guild_exports_import_with_scopes_replies_and_people(store: Store, tmp_path: Path) -> None:
    summary = ingest_dce(store, [dm_export(tmp_path), tmp_path / "guild"] if guild_exports(tmp_path) else [], owner_id=OWNER_ID)
    assert summary.new == 8
    assert summary.skipped_reasons == {"system": 2}
    assert dict(rows(store, "SELECT id, scope FROM channels")) == {
        1000000000000000001: "dm:222222222222222222",
        1000000000000000004: "guild:5000000000000000001",
        1000000000000000005: "guild:5000000000000000001",
    }
    assert rows(store, "SELECT parent_id, kind FROM channels WHERE id = 1000000000000000005") == [(1000000000000000004, "thread")]
    reply = rows(store, "SELECT reply_to_id, kind, mentions, content FROM messages WHERE id = 1200000000000000001")[0]
    assert reply == (1100000000000000001, "reply", [OWNER_ID], "sure! @Alex same place?")
    people = {r[0]: r[1:] for r in rows(store, "SELECT id, name, display_name, is_owner, is_bot FROM people")}
    assert people[OWNER_ID] == ("alex", "Alex", True, False)
    assert people[int(BOT["id"])][3] is True
    assert people[int(FRIEND["id"])][:2] == ("sam", "Sam")
    created, edited = rows(store, "SELECT created_at, edited_at FROM messages WHERE id = 1100000000000000030")[0]
    assert edited is not None and edited > created
    first = rows(store, "SELECT created_at FROM messages WHERE id = 1100000000000000001")[0][0]
    assert first.isoformat().startswith("2021-06-26T10:15:44")  # +02:00 offset honoured
    attachment = rows(store, "SELECT attachments FROM messages WHERE id = 1200000000000000003")[0][0]
    assert attachment == ["https://cdn.discordapp.com/attachments/1/2/x.png"]


def test_dm_where_only_the_owner_spoke_is_owner_only(store: Store, tmp_path: Path) -> None:
    path = write_export(tmp_path / "x.json", channel_id=42, channel_type="DirectTextChat", messages=[message(4201, OWNER, "hello?")])
    ingest_dce(store, [path], owner_id=OWNER_ID)
    assert rows(store, "SELECT scope FROM channels")[0][0].startswith("dm:-")


def test_group_dm_scope(store: Store, tmp_path: Path) -> None:
    path = write_export(tmp_path / "g.json", channel_id=43, channel_type="DirectGroupTextChat", name="crew",
                        messages=[message(4301, OWNER, "hi all"), message(4302, FRIEND, "yo"), message(4303, OTHER, "hey")])
    ingest_dce(store, [path], owner_id=OWNER_ID)
    assert rows(store, "SELECT scope, recipients FROM channels") == [("group:43", sorted([OWNER_ID, int(FRIEND["id"]), int(OTHER["id"])]))]


def test_overlap_with_package_is_stored_once_keeping_the_richer_record(store: Store, tmp_path: Path) -> None:
    package = write_package(tmp_path / "package", [
        FakeChannel(id=1000000000000000004, kind="guild_text", name="general", guild=(int(GUILD[0]), GUILD[1]),
                    messages=[(1100000000000000030, "2023-07-08 07:10:11", "cargo 1.79 is out", ""),
                              (1100000000000000031, "2023-07-08 07:11:00", "only in the package", "")]),
    ])
    ingest_discord_package(store, package, owner_id=None)
    assert rows(store, "SELECT source FROM messages WHERE id = 1100000000000000030") == [("package",)]

    summary = ingest_dce(store, guild_exports(tmp_path)[:1], owner_id=OWNER_ID)
    assert summary.total["updated"] == 1  # the package's record was replaced by the richer DCE one
    assert rows(store, "SELECT count(*) FROM messages WHERE id = 1100000000000000030") == [(1,)]
    assert rows(store, "SELECT source, edited_at IS NOT NULL FROM messages WHERE id = 1100000000000000030") == [("dce", True)]
    assert rows(store, "SELECT source FROM messages WHERE id = 1100000000000000031") == [("package",)]

    # The package again: nothing downgrades the DCE record.
    again = ingest_discord_package(store, package, owner_id=None)
    assert again.new == 0 and again.total["updated"] == 0
    assert rows(store, "SELECT source FROM messages WHERE id = 1100000000000000030") == [("dce",)]


def test_reimport_is_idempotent(store: Store, tmp_path: Path) -> None:
    paths = [dm_export(tmp_path), *guild_exports(tmp_path)]
    first = ingest_dce(store, paths, owner_id=OWNER_ID)
    before = rows(store, "SELECT * FROM messages ORDER BY id")
    again = ingest_dce(store, paths, owner_id=OWNER_ID)
    assert again.new == 0 and again.total["duplicate"] == first.new
    assert [r[:3] for r in rows(store, "SELECT * FROM messages ORDER BY id")] == [r[:3] for r in before]


def test_owner_is_required(store: Store, tmp_path: Path) -> None:
    with pytest.raises(IngestError, match="set PERSONA_OWNER_ID"):
        ingest_dce(store, [dm_export(tmp_path)], owner_id=None)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b'{"guild": {"id": "0", "name": "x"}, "channel": {"id": "1", "type": "DirectTextChat"}, "messages": [{"id": "1", "type": "Default"', "is truncated"),
        (b'{"some": "other json"}', "is not a DiscordChatExporter JSON export"),
        (b'{"guild": {"id": "0", "name": "x"}, "channel": {"id": "1", "type": "DirectTextChat"}, "messages": {}}', '"messages" is a JSON object, not a list'),
        (b'{"guild": {"id": "0", "name": "x"}, "channel": {"id": "1", "type": "DirectTextChat"}}', '"messages" is missing'),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x1b\x07garbage", "is not"),
        (b'{"guild": {"id": "0", "name": "\xff\xfe"}, "channel": {"id": "1"}}', "is not UTF-8"),
        (b'{"guild": {"id": "0"}, "channel": {"id": "1", "type": "DirectTextChat"}, "messages": [{"id": "5", "type": "Default", "timestamp": "soon",'
         b' "content": "x", "author": {"id": "9", "name": "n"}}]}', "unreadable timestamp"),
    ],
)
def test_bad_exports_store_nothing(store: Store, tmp_path: Path, content: bytes, expected: str) -> None:
    good = dm_export(tmp_path)
    bad = tmp_path / "dms" / "zzz-bad.json"
    bad.write_bytes(content)
    with pytest.raises(IngestError) as info:
        ingest_dce(store, [tmp_path / "dms"], owner_id=OWNER_ID)  # the good file is imported first, then rolled back
    assert expected in info.value.message and info.value.message.isprintable()  # one line, no raw bytes
    assert rows(store, "SELECT count(*) FROM messages") == [(0,)]
    assert rows(store, "SELECT status FROM import_runs") == [("failed",)]
    assert good.exists()


DCE_WRONG_SHAPES = {
    "content as a number": ({"content": 7}, "content should be text"),
    "attachments as a string": ({"attachments": "a.png"}, "attachments should be a list"),
    "an id too big": ({"id": str(2**70)}, "no valid id"),
    "an impossible date": ({"timestamp": "2023-02-30T10:00:00+00:00"}, "impossible date"),
    "year 0": ({"timestamp": "0000-01-01T10:00:00+00:00"}, "impossible date"),
    "a name that is an object": ({"author": {**OTHER, "name": {"first": "kim"}}}, None),
    "mentions as a number": ({"mentions": 5}, None),
}


@pytest.mark.parametrize("case", list(DCE_WRONG_SHAPES))
def test_a_wrong_shaped_dce_field_is_one_line_or_harmless(store: Store, tmp_path: Path, case: str) -> None:
    """Each wrong shape either stops the import in one line with nothing stored, or (when
    the field is not needed) is ignored; never a traceback."""
    change, expected = DCE_WRONG_SHAPES[case]
    export = write_export(tmp_path / "dce" / "general.json", channel_id=1000000000000000004, channel_type="GuildTextChat",
                          guild=("5000000000000000001", "Rust Fans"), name="general",
                          messages=[{**message(1300000000000000001, OTHER, "hello there", ts="2023-08-02T09:00:00+00:00"), **change}])
    if expected is None:
        ingest_dce(store, [export], owner_id=OWNER_ID)
        assert rows(store, "SELECT content FROM messages") == [("hello there",)]
        return
    with pytest.raises(IngestError) as info:
        ingest_dce(store, [export], owner_id=OWNER_ID)
    assert expected in info.value.message and info.value.message.isprintable()
    assert rows(store, "SELECT count(*) FROM messages") == [(0,)]


def _peak_rss_mb(persona: Path, database: Database, export: Path) -> float:
    script = (
        "import resource, subprocess, sys;"
        "r = subprocess.run(sys.argv[1:], capture_output=True, text=True);"
        "sys.stderr.write(r.stderr);"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024 if r.returncode == 0 else -1)"
    )
    env = {**os.environ, "DATABASE_URL": database.url, "PERSONA_OWNER_ID": str(OWNER_ID)}
    result = subprocess.run([sys.executable, "-c", script, str(persona), "ingest", "dce", str(export), "--json"],
                            env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    return float(result.stdout.strip())


def test_memory_stays_flat_on_a_large_export(persona_exe: Path, database: Database, tmp_path: Path) -> None:
    small = write_large_export(tmp_path / "small.json", 5_000, channel_id=9000000000000000001)
    large = write_large_export(tmp_path / "large.json", 100_000, channel_id=9000000000000000002, first_id=7_100_000_000_000_000_000)
    assert large.stat().st_size > 50 * 1024 * 1024
    small_mb = _peak_rss_mb(persona_exe, database, small)
    large_mb = _peak_rss_mb(persona_exe, database, large)
    growth = large_mb - small_mb
    # 20x the messages (50+ MB more JSON) may cost at most a few MB more memory.
    assert growth < 15, f"peak RSS grew {growth:.1f} MB ({small_mb:.0f} → {large_mb:.0f} MB)"
    assert rows(Store(database), "SELECT count(*) FROM messages") == [(105_000,)]


def test_opted_out_people_are_not_stored(store: Store, tmp_path: Path) -> None:
    with store.connect() as conn:
        conn.execute("INSERT INTO people (id, name, opted_out_at) VALUES (%s, 'sam', now())", (int(FRIEND["id"]),))
    summary = ingest_dce(store, [dm_export(tmp_path)], owner_id=OWNER_ID)
    assert summary.skipped_reasons["opted_out"] == 2
    assert rows(store, "SELECT count(*) FROM messages WHERE author_id = %s", int(FRIEND["id"])) == [(0,)]
    assert rows(store, "SELECT count(*) FROM messages WHERE author_id = %s", OWNER_ID) == [(1,)]
    assert rows(store, "SELECT opted_out_at IS NOT NULL FROM people WHERE id = %s", int(FRIEND["id"])) == [(True,)]


def test_an_import_killed_midway_stores_nothing_and_is_marked_on_the_next_start(persona_exe: Path, database: Database, tmp_path: Path) -> None:
    import signal
    import time

    store = Store(database)
    big = write_large_export(tmp_path / "big.json", 60_000)
    env = {**os.environ, "DATABASE_URL": database.url, "PERSONA_OWNER_ID": str(OWNER_ID)}
    child = subprocess.Popen([str(persona_exe), "ingest", "dce", str(big)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not rows(store, "SELECT id FROM import_runs WHERE status = 'running'"):
        assert child.poll() is None and time.monotonic() < deadline, "the import never started"
        time.sleep(0.05)
    time.sleep(1.0)  # well inside the COPY of 60,000 messages
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    assert rows(store, "SELECT status FROM import_runs") == [("running",)]  # nobody could say otherwise yet
    ((stored,),) = rows(store, "SELECT count(*) FROM messages")
    assert stored in (0, 60_000)  # all or nothing (a slow machine is still inside the COPY: 0)

    ingest_dce(store, [dm_export(tmp_path)], owner_id=OWNER_ID)  # the next import notices
    (killed, error), finished = rows(store, "SELECT status, error FROM import_runs ORDER BY id")
    assert finished == ("succeeded", None)
    if stored == 0:
        assert killed == "failed" and "killed" in error
    else:
        assert killed == "succeeded" and "before recording" in error


@pytest.mark.parametrize("where", ["dce", "package"])
def test_absurd_nesting_in_a_plain_file_is_refused_before_it_is_built(where: str, store: Store, tmp_path: Path) -> None:
    """A message nested 200,000 levels deep (400 KB on disk) once grew to tens of GB while
    the streaming parser built it; the parse now stops at the 65th level."""
    deep = "[" * 200_000 + "]" * 200_000
    if where == "dce":
        path = write_export(tmp_path / "dce" / "deep.json", channel_id=1000000000000000001, channel_type="DirectTextChat",
                            messages=[message(1200000000000000001, FRIEND, "kept?", ts="2023-08-01T10:00:00+00:00")])
        text = path.read_text()
        path.write_text(text.replace('"content": "kept?"', f'"content": "kept?", "nested": {deep}'))
        run = lambda: ingest_dce(store, [path], owner_id=OWNER_ID)  # noqa: E731
    else:
        path = write_package(tmp_path / "package", [FakeChannel(id=1000000000000000004, kind="dm", recipients=[str(OWNER_ID)], label="x",
                                                                messages=[(1130000000000000001, "2023-01-01 10:00:00", "hi", "")])])
        next(path.rglob("messages.json")).write_text(f'[{{"ID": 1130000000000000001, "Timestamp": "2023-01-01 10:00:00", "Contents": {deep}}}]')
        run = lambda: ingest_discord_package(store, path, owner_id=None)  # noqa: E731
    import tracemalloc

    tracemalloc.start()
    try:
        with pytest.raises(IngestError, match="nested more than 64 levels deep"):
            run()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 50 * 1024**2, f"{peak:,} bytes"  # a 64 KB parse buffer of `[[[[…` made ~700 MB of prefixes
    assert rows(store, "SELECT count(*) FROM messages") == [(0,)]


@pytest.mark.parametrize("when", ["in one import", "in a later import"])
def test_one_id_in_two_channels_is_refused_not_merged_across_scopes(when: str, store: Store, tmp_path: Path) -> None:
    """The same message id in a DM and a server was counted as a duplicate and one copy
    dropped silently; a richer copy could even move server text under the DM's scope."""
    dm = write_export(tmp_path / "dm.json", channel_id=1000000000000000001, channel_type="DirectTextChat",
                      messages=[message(1200000000000000001, FRIEND, "dm secret", ts="2023-08-01T10:00:00+00:00")])
    server = write_export(tmp_path / "server.json", channel_id=1000000000000000004, channel_type="GuildTextChat", guild=("5000000000000000001", "Rust"),
                          name="general", messages=[message(1200000000000000001, OTHER, "server text", ts="2023-08-01T10:00:00+00:00")])
    if when == "in a later import":
        ingest_dce(store, [dm], owner_id=OWNER_ID)
    before = rows(store, "SELECT id, channel_id, scope, content FROM messages ORDER BY id")
    with pytest.raises(IngestError, match=r"message 1200000000000000001 is in channel .* and also in channel .*one of the files is damaged"):
        ingest_dce(store, [dm, server] if when == "in one import" else [server], owner_id=OWNER_ID)
    assert rows(store, "SELECT id, channel_id, scope, content FROM messages ORDER BY id") == before

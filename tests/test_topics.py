"""Topics: clusters of the owner's memories, named by their distinctive words, listed
only from what the asker may read (a DM canary never reaches a server), kept current
by memory builds, and clustered again when something is forgotten."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ingest.dce import ingest_dce
from persona import memory
from persona.memory import topics
from persona.memory.embeddings import Embedder
from persona.privacy.forget import carry_out, forget_person
from persona.privacy.scopes import Place
from persona.storage.db import Database
from persona.storage.store import Store
from persona.words import CHAT_FILLER
from tests.fixtures.dce import FRIEND, OTHER, OWNER, message, write_export
from tests.fixtures.discord_package import OWNER_ID
from tests.fixtures.history import GUILD
from tests.test_bot import GENERAL, run_with_bot, wait_for  # the server the fake Discord serves

CANARY = "quorvex"  # the owner's DM-only subject: never named, counted or hinted at in a server
SAM, KIM = int(FRIEND["id"]), int(OTHER["id"])
DM_CHANNEL = 1000000000000000201
SUBJECTS = {
    "dm": (FRIEND, [f"my {CANARY} seedlings finally sprouted in the greenhouse", f"repotted the {CANARY} again, the greenhouse smells amazing",
                    f"the {CANARY} leaves went purple overnight", f"watering the {CANARY} seedlings twice a day now"]),
    "climbing": (OTHER, ["the crimps on the overhang destroyed my fingers", "finally sent the overhang project, crimps and all",
                         "bring chalk, the overhang crimps are greasy", "my fingers need a rest after those crimps"]),
    "baking": (OTHER, ["the sourdough loaf came out with a huge oven spring", "fed the sourdough starter, loaf tomorrow",
                       "my sourdough loaf stuck to the banneton again", "shaping sourdough loaves before work"]),
}


def conversation(first_id: int, day: datetime, asker: dict, line: str) -> list[dict]:
    return [message(first_id, asker, "what are you up to?", ts=day.isoformat()),
            message(first_id + 1, OWNER, f"lol ngl {line}", ts=(day + timedelta(minutes=1)).isoformat())]


def import_subjects(store: Store, folder: Path, *, start: int = 0, rounds: int = 4, only: str | None = None) -> None:
    """Each subject `rounds` times, a day apart (one memory each): the DM one with Sam,
    the others in the server's #general with Kim."""
    day0 = datetime(2024, 3, 1, tzinfo=UTC)
    exports: dict[str, list[dict]] = {"dm": [], "general": []}
    for s, (subject, (asker, lines)) in enumerate(SUBJECTS.items()):
        if only is not None and subject != only:
            continue
        for r in range(start, start + rounds):
            day = day0 + timedelta(days=10 * r + 3 * s)
            first = 1_500_000_000_000_000_000 + 1000 * r + 10 * s
            exports["dm" if subject == "dm" else "general"] += conversation(first, day, asker, lines[r % len(lines)])
    if exports["dm"]:
        write_export(folder / "sam.json", channel_id=DM_CHANNEL, channel_type="DirectTextChat", messages=exports["dm"])
    if exports["general"]:
        write_export(folder / "general.json", channel_id=GENERAL, channel_type="GuildTextChat", guild=GUILD, name="general",
                     messages=exports["general"])
    ingest_dce(store, [folder], owner_id=OWNER_ID)


@pytest.fixture
def built(store: Store, embedder: Embedder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Store:
    monkeypatch.setattr(topics, "MEMORIES_PER_TOPIC", 4)  # 12 memories → 3 topics (a real history has ~30 a topic)
    import_subjects(store, tmp_path / "dce")
    with store.connect() as conn:
        memory.build(conn, embedder)
    return store


def listed(store: Store, asker: int | None, place: Place) -> list[topics.Topic]:
    with store.connect() as conn:
        return topics.topics_for(conn, asker_id=asker, place=place, owner_id=OWNER_ID)


def owner_memories(store: Store, scope: str | None = None) -> int:
    with store.connect() as conn:
        return conn.execute("SELECT count(*) FROM memories WHERE %s = ANY(author_ids) AND (%s::text IS NULL OR scope = %s)",
                            (OWNER_ID, scope, scope)).fetchone()[0]


def test_topics_name_what_the_owner_talks_about(built: Store) -> None:
    everything = listed(built, OWNER_ID, Place.terminal())
    assert len(everything) == 3 and sum(t.memories for t in everything) == owner_memories(built) == 12
    names = {frozenset(t.words) for t in everything}
    assert any(CANARY in words for words in names)
    assert any(words & {"crimps", "overhang", "fingers"} for words in names)
    assert any(words & {"sourdough", "loaf", "loaves"} for words in names)
    assert not any(words & CHAT_FILLER for words in names)  # "lol ngl" opens every line and names nothing
    assert all(not t.thin for t in everything)
    assert everything[0].first_at <= everything[0].last_at


def test_a_server_sees_only_its_own_topics_and_a_dm_only_its_own(built: Store) -> None:
    in_server = listed(built, KIM, Place.guild(int(GUILD[0]), GENERAL))
    assert in_server and sum(t.memories for t in in_server) == owner_memories(built, f"guild:{GUILD[0]}") == 8
    assert all(CANARY not in t.name and CANARY not in json.dumps(t.as_json()) for t in in_server)
    # The owner asking in the server is told the same: the place decides, everyone there reads it.
    assert [t.as_json() for t in listed(built, OWNER_ID, Place.guild(int(GUILD[0]), GENERAL))] == [t.as_json() for t in in_server]
    with_sam = listed(built, SAM, Place.dm())
    assert len(with_sam) == 1 and CANARY in with_sam[0].words and with_sam[0].memories == 4
    assert listed(built, KIM, Place.dm()) == []  # Kim never wrote to the owner: nothing to list
    assert listed(built, SAM, Place.guild(999)) == []  # a server persona knows nothing of


def test_small_builds_join_the_nearest_topic_and_big_ones_recluster(built: Store, embedder: Embedder, tmp_path: Path) -> None:
    with built.connect() as conn:
        before = dict(conn.execute("SELECT id, built_at FROM memory_topics").fetchall())
        climbing = {r[0] for r in conn.execute("SELECT topic_id FROM memories WHERE content LIKE '%crimps%'").fetchall()}
    assert len(climbing) == 1
    import_subjects(built, tmp_path / "more", start=4, rounds=1, only="climbing")  # one memory more: under a tenth
    with built.connect() as conn:
        memory.build(conn, embedder)
        assert dict(conn.execute("SELECT id, built_at FROM memory_topics").fetchall()) == before  # not clustered again
        newest = conn.execute("SELECT topic_id FROM memories ORDER BY started_at DESC LIMIT 1").fetchone()[0]
    assert newest in climbing
    import_subjects(built, tmp_path / "lots", start=5, rounds=3)  # 9 more: clustered again
    with built.connect() as conn:
        memory.build(conn, embedder)
        after = dict(conn.execute("SELECT id, built_at FROM memory_topics").fetchall())
        unassigned = conn.execute("SELECT count(*) FROM memories WHERE topic_id IS NULL AND %s = ANY(author_ids)", (OWNER_ID,)).fetchone()[0]
    assert after and min(after.values()) > max(before.values()) and unassigned == 0


def test_forgetting_a_person_clusters_again_without_them(built: Store, tmp_path: Path) -> None:
    with built.connect() as conn:
        carry_out(conn, lambda c: forget_person(c, SAM), tmp_path / "datasets")
        centroids = conn.execute("SELECT count(*) FROM memory_topics").fetchone()[0]
    everything = listed(built, OWNER_ID, Place.terminal())
    assert everything and all(CANARY not in json.dumps(t.as_json()) for t in everything)
    assert sum(t.memories for t in everything) == owner_memories(built) == 8 and centroids == 2


def test_distinctive_words_weigh_a_topic_against_the_others() -> None:
    texts = {1: "lol the overhang crimps lol crimps chalk lol", 2: "lol sourdough loaf lol sourdough starter lol", 3: "   "}
    named = topics.distinctive_words(texts, 2)
    assert named == {1: ["crimps", "chalk"], 2: ["sourdough", "loaf"]}  # "lol" is filler; an empty text gets no name
    assert topics.distinctive_words({1: "the and of"}, 2) == {}


def test_cli_topics(persona_exe: Path, built: Store, database: Database) -> None:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("PERSONA_")}, "DATABASE_URL": database.url}
    mine = subprocess.run([str(persona_exe), "topics", "--json"], env=env, capture_output=True, text=True, timeout=300)
    assert mine.returncode == 0, mine.stderr
    assert any(CANARY in t["words"] for t in json.loads(mine.stdout))
    as_kim = subprocess.run([str(persona_exe), "topics", "--as", str(KIM), "--channel", str(GENERAL), "--json"], env=env,
                            capture_output=True, text=True, timeout=300)
    assert as_kim.returncode == 0, as_kim.stderr
    shown = json.loads(as_kim.stdout)
    assert shown and CANARY not in as_kim.stdout and {"name", "memories", "thin", "first_at"} <= set(shown[0])
    # Someone else named without --channel asks in a DM with the bot, never at the owner's terminal.
    kim_dm = subprocess.run([str(persona_exe), "topics", "--as", str(KIM), "--json"], env=env, capture_output=True, text=True, timeout=300)
    assert kim_dm.returncode == 0 and json.loads(kim_dm.stdout) == []
    readable = subprocess.run([str(persona_exe), "topics"], env=env, capture_output=True, text=True, timeout=300)
    assert readable.returncode == 0 and "covered well" in readable.stdout and "memories" in readable.stdout


def test_persona_topics_and_status_in_discord(built: Store, embedder: Embedder, tmp_path: Path) -> None:
    from persona.runtime.engines.base import GenerationSettings
    from persona.runtime.engines.transformers_engine import TransformersGenerator
    from persona.runtime.model import resolve_base_model
    from persona.runtime.reply import ReplyEngine
    from tests.fixtures.tiny_model import build_tiny_model

    generator = TransformersGenerator(resolve_base_model(str(build_tiny_model(tmp_path / "model"))), GenerationSettings(8, 0.8, 0.9, 1.0))
    engine = ReplyEngine(built, embedder, generator, owner_id=OWNER_ID, owner_name="Alex")
    answers: dict[str, str] = {}

    async def scenario(fake, bot) -> None:
        for label, user, channel, command in (("kim", KIM, GENERAL, "topics"), ("owner_dm", OWNER_ID, DM_CHANNEL + 7, "topics"),
                                              ("kim_status", KIM, GENERAL, "status")):
            asked = await fake.interact(user, channel, "persona", subcommand=command)
            await wait_for(lambda asked=asked: fake.responses_to(asked))
            response = fake.responses_to(asked)[0]
            assert response["ephemeral"]
            answers[label] = response["content"]

    run_with_bot(engine, scenario)
    assert "what I know well here" in answers["kim"] and ("crimps" in answers["kim"] or "sourdough" in answers["kim"])
    assert CANARY not in answers["kim"] and CANARY not in answers["kim_status"]
    assert "knows well:" in answers["kim_status"]
    assert CANARY in answers["owner_dm"]  # the owner in a DM with the bot reads everything

"""Memory: chunking, building (resumable), scoped recall with canaries, opt-out, model switch."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ingest.dce import ingest_dce
from persona import memory
from persona.memory.chunking import ChunkMessage, chunk_conversation, chunk_note
from persona.memory.embeddings import Embedder, EmbedModelSpec, resolve_embed_model
from persona.memory.recall import RECENCY_WEIGHT
from persona.privacy.forget import forget_channel, forget_person, forget_range, opt_out
from persona.privacy.scopes import Place, readable_scopes
from persona.storage.db import Database
from persona.storage.store import Store
from tests.fixtures import known_answers
from tests.fixtures.dce import OTHER, message, write_export
from tests.fixtures.discord_package import OWNER_ID
from tests.fixtures.history import CANARY, GUILD, KIM, SAM, import_history


def words(texts):
    return [len(t.split()) for t in texts]


def at(minute: int) -> datetime:
    return datetime(2023, 1, 1, 12, 0, tzinfo=UTC) + timedelta(minutes=minute)


# --- chunking (pure) ---------------------------------------------------------------------------


def test_conversation_splits_at_pauses_and_budget() -> None:
    messages = [ChunkMessage(i, at(m), "Alex" if i % 2 else "Sam", text) for i, (m, text) in enumerate(
        [(0, "hi there"), (1, "hey how are you"), (2, "good thanks"), (90, "back again"), (91, "one two three four five six seven eight")]
    )]
    chunks = chunk_conversation(messages, place="#general", count_tokens=words, budget=14)
    assert [c.message_ids for c in chunks] == [[0, 1, 2], [3], [4]]
    assert chunks[0].content == "2023-01-01 · #general\nSam: hi there\nAlex: hey how are you\nSam: good thanks"
    assert chunks[0].started_at == at(0) and chunks[0].ended_at == at(2)
    assert all(words([c.content])[0] <= 14 for c in chunks)


def test_message_longer_than_the_budget_is_split() -> None:
    long = " ".join(f"word{i}." for i in range(50))
    chunks = chunk_conversation([ChunkMessage(1, at(0), "Alex", long)], place="DM with Sam", count_tokens=words, budget=12)
    assert len(chunks) > 3 and all(c.message_ids == [1] for c in chunks)
    assert all(words([c.content])[0] <= 12 for c in chunks)
    assert "word0." in chunks[0].content and "word49." in chunks[-1].content


def test_note_chunks_by_heading_with_path() -> None:
    note = ChunkMessage(7, at(0), "Alex", "# Trip\n\nintro words here\n\n## Day one\n\nwe hiked\n\n## Day two\n\nwe swam\n\n### Evening\n\ndinner")
    chunks = chunk_note(note, title="japan", count_tokens=words, budget=40)
    assert [c.content.splitlines()[1] for c in chunks] == ["Trip", "Trip > Day one", "Trip > Day two", "Trip > Day two > Evening"]
    assert chunks[1].content.endswith("we hiked") and all(c.message_ids == [7] for c in chunks)


# --- scope rules (pure) ----------------------------------------------------------------------


def test_readable_scopes() -> None:
    owner = OWNER_ID
    assert readable_scopes(SAM, Place.dm(), owner) == [f"dm:{SAM}"]
    assert readable_scopes(owner, Place.dm(), owner) is None
    assert readable_scopes(owner, Place.guild(5, 6), owner) == ["guild:5"]  # the place decides
    assert readable_scopes(SAM, Place.guild(5), owner) == ["guild:5"]
    assert readable_scopes(None, Place.terminal(), owner) is None
    assert readable_scopes(SAM, Place("group_dm", channel_id=9), owner) == ["group:9"]


# --- building and recall against PostgreSQL ------------------------------------------------------


def test_build_creates_scoped_embedded_memories_once(store: Store, embedder: Embedder, tmp_path: Path) -> None:
    import_history(store, tmp_path)
    with store.connect() as conn:
        built = memory.build(conn, embedder)
        created, embedded = built.created, built.embedded
        assert created > 0 and embedded == created
        assert conn.execute("SELECT count(*) FROM messages WHERE memory_id IS NULL").fetchone()[0] == 0
        mismatched = conn.execute(
            "SELECT count(*) FROM memories m JOIN channels c ON c.id = m.channel_id WHERE m.scope <> c.scope"
        ).fetchone()[0]
        assert mismatched == 0
        assert conn.execute("SELECT count(*) FROM memories WHERE embedding IS NULL").fetchone()[0] == 0
        column = conn.execute("SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'memories'::regclass "
                              "AND attname = 'embedding'").fetchone()
        assert column[0] == "vector(384)"
        assert conn.execute("SELECT to_regclass('memories_embedding_hnsw') IS NOT NULL").fetchone()[0]
        again = memory.build(conn, embedder)
        assert (again.created, again.embedded, again.total) == (0, 0, built.total)
        covered = conn.execute("SELECT count(*), count(DISTINCT i) FROM memories, unnest(message_ids) AS i").fetchone()
        assert covered[0] == covered[1]  # no message in two memories


def test_build_resumes_after_a_kill(store: Store, embedder: Embedder, tmp_path: Path) -> None:
    import_history(store, tmp_path)

    class Killed(Exception):
        pass

    def kill_after_first(_channel: int) -> None:
        raise Killed

    with store.connect() as conn:
        memory.prepare_vectors(conn, embedder)
        conn.commit()
        with pytest.raises(Killed):
            memory.chunk_pending(conn, embedder, on_channel=kill_after_first)
        conn.rollback()
        partial = conn.execute("SELECT count(*) FROM memories").fetchone()[0]
        assert partial > 0
        assert conn.execute("SELECT count(*) FROM messages WHERE memory_id IS NULL").fetchone()[0] > 0

        batches = []

        def kill_in_second_batch(n: int) -> None:
            batches.append(n)
            if len(batches) == 2:
                raise Killed

        memory.chunk_pending(conn, embedder)
        with pytest.raises(Killed):
            memory.embed_pending(conn, embedder, batch=3, progress=kill_in_second_batch)
        conn.rollback()
        assert conn.execute("SELECT count(*) FROM memories WHERE embedding IS NOT NULL").fetchone()[0] == 3
        memory.build(conn, embedder)
        assert conn.execute("SELECT count(*) FROM memories WHERE embedding IS NULL").fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM messages WHERE memory_id IS NULL").fetchone()[0] == 0
        covered = conn.execute("SELECT count(*), count(DISTINCT i) FROM memories, unnest(message_ids) AS i").fetchone()
        assert covered[0] == covered[1]


QUERIES = [CANARY, "locker code", "what is Sam's locker code?", "tell me the secret code", "CANARY", "7f3a", "what did Sam tell you in DMs?", "cat"]


def test_dm_canary_never_reaches_another_user(store: Store, embedder: Embedder, tmp_path: Path) -> None:
    import_history(store, tmp_path)
    guild_place = Place.guild(int(GUILD[0]), 1000000000000000004)
    with store.connect() as conn:
        memory.build(conn, embedder)
        for query in QUERIES:
            for asker, place in [(KIM, guild_place), (SAM, guild_place), (OWNER_ID, guild_place), (KIM, Place.dm())]:
                found = memory.recall(conn, embedder, query, asker_id=asker, place=place, owner_id=OWNER_ID, k=20)
                assert all(CANARY not in m.content for m in found), (query, asker, place)
                assert all(not m.scope.startswith("dm:") for m in found) or place.kind == "dm"
        # Sam in a DM with the bot, and the owner in theirs, do see it.
        assert any(CANARY in m.content for m in memory.recall(conn, embedder, "locker code", asker_id=SAM, place=Place.dm(), owner_id=OWNER_ID))
        assert any(CANARY in m.content for m in memory.recall(conn, embedder, "locker code", asker_id=OWNER_ID, place=Place.dm(), owner_id=OWNER_ID))
        # Kim in the server gets the server's locker talk, not nothing: the filter is a scope, not a blanket refusal.
        assert any("blue ones" in m.content for m in memory.recall(conn, embedder, "locker", asker_id=KIM, place=guild_place, owner_id=OWNER_ID))


def test_narrow_scope_still_returns_k(store: Store, embedder: Embedder) -> None:
    with store.connect() as conn:
        known_answers.populate(conn, distractors=150)
        conn.execute("INSERT INTO channels (id, kind, scope) VALUES (42, 'dm', 'dm:42')")
        conn.execute("INSERT INTO people (id, name) VALUES (42, 'tiny')")
        for i in range(6):
            conn.execute(
                "INSERT INTO messages (id, channel_id, author_id, source, scope, created_at, content) VALUES (%s, 42, 42, 'dce', 'dm:42', %s, %s)",
                (9000 + i, at(i * 120), f"small talk number {i} about gardening"),
            )
        memory.build(conn, embedder)
        found = memory.search(conn, embedder, "kitchen appliance broke", ["dm:42"], k=5)
        assert len(found) == 5 and {m.scope for m in found} == {"dm:42"}


def test_opt_out_removes_and_keeps_out(store: Store, embedder: Embedder, tmp_path: Path) -> None:
    import_history(store, tmp_path)
    with store.connect() as conn:
        memory.build(conn, embedder)
        with conn.transaction():
            result = opt_out(conn, SAM)
        assert result.messages == 2 and result.memories >= 1
        memory.build(conn, embedder)  # the owner's side of that DM is re-chunked without Sam
        dump = "\n".join(r[0] for r in conn.execute("SELECT content FROM memories").fetchall())
        dump += "\n".join(r[0] for r in conn.execute("SELECT content FROM messages").fetchall())
        assert CANARY not in dump and "Miso" not in dump
        assert "safe with me" in dump
    ingest_dce(store, [tmp_path / "dce"], owner_id=OWNER_ID)  # Sam's messages arrive again: refused
    with store.connect() as conn:
        memory.build(conn, embedder)
        assert conn.execute("SELECT count(*) FROM messages WHERE author_id = %s", (SAM,)).fetchone()[0] == 0
        found = memory.recall(conn, embedder, "locker code", asker_id=OWNER_ID, place=Place.dm(), owner_id=OWNER_ID, k=20)
        assert all(CANARY not in m.content for m in found)


def test_recall_refuses_memories_of_opted_out_people_even_if_left_behind(store: Store, embedder: Embedder, tmp_path: Path) -> None:
    import_history(store, tmp_path)
    with store.connect() as conn:
        memory.build(conn, embedder)
        conn.execute("UPDATE people SET opted_out_at = now() WHERE id = %s", (SAM,))  # flag only, nothing deleted
        conn.commit()
        found = memory.recall(conn, embedder, "locker code", asker_id=OWNER_ID, place=Place.dm(), owner_id=OWNER_ID, k=20)
        assert found and all(SAM not in conn.execute("SELECT author_ids FROM memories WHERE id = %s", (m.id,)).fetchone()[0] for m in found)
        assert all(CANARY not in m.content for m in found)


@pytest.mark.parametrize("how", ["person", "channel", "range"])
def test_forget_really_deletes(store: Store, embedder: Embedder, tmp_path: Path, how: str) -> None:
    import_history(store, tmp_path)
    with store.connect() as conn:
        memory.build(conn, embedder)
        with conn.transaction():
            if how == "person":
                forget_person(conn, SAM)
            elif how == "channel":
                forget_channel(conn, 1000000000000000001)
            else:
                forget_range(conn, datetime(2023, 8, 1, tzinfo=UTC), datetime(2023, 8, 2, tzinfo=UTC))
        memory.build(conn, embedder)
        everything = "\n".join(str(r) for t in ("messages", "memories", "replies") for r in conn.execute(f"SELECT * FROM {t}").fetchall())
        assert CANARY not in everything
        assert "blue ones by the pool" in everything  # the rest is untouched


def test_incremental_add_waits_for_the_conversation_to_pause(store: Store, embedder: Embedder) -> None:
    now = datetime.now(UTC)
    with store.connect() as conn:
        conn.execute("INSERT INTO people (id, name, is_owner) VALUES (%s, 'alex', true)", (OWNER_ID,))
        conn.execute("INSERT INTO channels (id, kind, name, guild_id, scope) VALUES (7, 'guild_text', 'live', 5, 'guild:5')")
        conn.execute("INSERT INTO messages (id, channel_id, author_id, source, scope, created_at, content) VALUES"
                     " (1, 7, %s, 'live', 'guild:5', %s, 'earlier talk'), (2, 7, %s, 'live', 'guild:5', %s, 'still talking')",
                     (OWNER_ID, now - timedelta(hours=3), OWNER_ID, now - timedelta(minutes=2)))
        memory.prepare_vectors(conn, embedder)
        conn.commit()
        assert memory.chunk_pending(conn, embedder, close_open=False, now=now) == 1
        assert conn.execute("SELECT id FROM messages WHERE memory_id IS NULL").fetchall() == [(2,)]
        assert memory.chunk_pending(conn, embedder, close_open=False, now=now + timedelta(hours=1)) == 1
        assert conn.execute("SELECT count(*) FROM messages WHERE memory_id IS NULL").fetchone()[0] == 0


def test_fused_beats_each_single_method(store: Store, embedder: Embedder) -> None:
    with store.connect() as conn:
        answers = known_answers.populate(conn)
        memory.build(conn, embedder)
        conn.execute("ANALYZE memories")
        scores = known_answers.hit_rates(conn, embedder, answers)
    assert scores["fused"] > scores["vector"] and scores["fused"] > scores["text"], scores


# --- model switch --------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A real (random) 32-d sentence-transformers model saved to a folder."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer, models
    from transformers import AutoTokenizer, BertConfig, BertModel

    folder = tmp_path_factory.mktemp("tiny-embedder")
    tokenizer = AutoTokenizer.from_pretrained(resolve_embed_model("").path)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128)
    BertModel(config).save_pretrained(folder / "bert")
    tokenizer.save_pretrained(folder / "bert")
    word = models.Transformer(str(folder / "bert"), max_seq_length=128)
    SentenceTransformer(modules=[word, models.Pooling(32)]).save(str(folder / "st"))
    return str(folder / "st")


def test_model_switch_needs_rebuild_then_works(store: Store, embedder: Embedder, tiny_model: str, tmp_path: Path) -> None:
    import_history(store, tmp_path)
    with store.connect() as conn:
        memory.build(conn, embedder)
        total = conn.execute("SELECT count(*) FROM memories").fetchone()[0]
        other = Embedder(resolve_embed_model(tiny_model))
        with pytest.raises(memory.MemoryConfigError, match="run `persona memory rebuild`"):
            memory.search(conn, other, "locker", None)
        with pytest.raises(memory.MemoryConfigError):
            memory.build(conn, other)
        conn.rollback()
        assert memory.rebuild(conn, other) == total
        assert conn.execute("SELECT embed_model, dimension FROM memory_config").fetchone() == (tiny_model, 32)
        assert conn.execute("SELECT count(*) FROM memories WHERE vector_dims(embedding) = 32").fetchone()[0] == total
        assert len(memory.search(conn, other, "locker", None, k=3)) == 3
        with pytest.raises(memory.MemoryConfigError):
            memory.search(conn, embedder, "locker", None)


def test_dimension_mismatch_is_a_clear_error(store: Store, embedder: Embedder, tmp_path: Path) -> None:
    import_history(store, tmp_path)

    class Resized(Embedder):
        dimension = 512  # same name, different size: e.g. a model folder replaced in place

    with store.connect() as conn:
        memory.build(conn, embedder)
        with pytest.raises(memory.MemoryConfigError, match="512-d vectors but the stored ones are 384-d"):
            memory.search(conn, Resized(EmbedModelSpec(embedder.name, embedder.spec.path)), "x", None)


# --- the CLI ----------------------------------------------------------------------------------------


def test_cli_build_and_search(persona_exe: Path, database: Database, tmp_path: Path) -> None:
    import_history(Store(database), tmp_path)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("PERSONA_")}, "DATABASE_URL": database.url}
    build = subprocess.run([str(persona_exe), "memory", "build", "--json"], env=env, capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr
    assert json.loads(build.stdout)["embedded"] > 0
    as_kim = subprocess.run(
        [str(persona_exe), "memory", "search", CANARY, "--as", str(KIM), "--channel", "1000000000000000004", "--json"],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert as_kim.returncode == 0, as_kim.stderr
    results = json.loads(as_kim.stdout)
    assert results and set(results[0]) == {"id", "scope", "score", "content"}
    assert all(CANARY not in r["content"] and r["scope"] == f"guild:{GUILD[0]}" for r in results)
    as_owner = subprocess.run([str(persona_exe), "memory", "search", "locker code", "--json"], env=env, capture_output=True, text=True, timeout=300)
    assert any(CANARY in r["content"] for r in json.loads(as_owner.stdout))
    unknown = subprocess.run([str(persona_exe), "memory", "search", "x", "--channel", "999"], env=env, capture_output=True, text=True, timeout=300)
    assert unknown.returncode == 2 and "add --guild" in unknown.stderr and "Traceback" not in unknown.stderr


def test_private_notes_reach_only_the_owner(store: Store, embedder: Embedder, tmp_path: Path) -> None:
    from ingest.obsidian import ingest_obsidian

    import_history(store, tmp_path)
    vault = tmp_path / "vault"
    vault.mkdir()
    (vault / "secret.md").write_text("# Diary\n\nNOTE-CANARY-55aa: I am planning a surprise party for Sam.")
    ingest_obsidian(store, vault, owner_id=OWNER_ID)
    with store.connect() as conn:
        memory.build(conn, embedder)
        for asker, place in [(SAM, Place.dm()), (KIM, Place.guild(int(GUILD[0]))), (OWNER_ID, Place.guild(int(GUILD[0])))]:
            for query in ("surprise party", "NOTE-CANARY-55aa", "diary"):
                found = memory.recall(conn, embedder, query, asker_id=asker, place=place, owner_id=OWNER_ID, k=20)
                assert all("NOTE-CANARY-55aa" not in m.content for m in found)
        owner = memory.recall(conn, embedder, "surprise party", asker_id=OWNER_ID, place=Place.dm(), owner_id=OWNER_ID)
        assert any("NOTE-CANARY-55aa" in m.content and m.scope == "private" for m in owner)


def test_a_message_from_the_future_neither_breaks_nor_wins_recall(store: Store, embedder: Embedder, tmp_path: Path) -> None:
    """A phone with a wrong clock: dates in 2028, 2100 and 9999 get at most the documented
    +20% (a memory from today), and recall keeps working for everyone."""
    write_export(tmp_path / "dce" / "clock.json", channel_id=1000000000000000007, channel_type="GuildTextChat", guild=GUILD, name="clock", messages=[
        message(1500000000000000001, OTHER, "the marmalade festival is on saturday", ts="2023-08-02T09:00:00+00:00"),
        message(1500000000000000002, OTHER, "marmalade from the year 2028", ts="2028-01-01T09:00:00+00:00"),
        message(1500000000000000003, OTHER, "marmalade from the year 2100", ts="2100-01-01T09:00:00+00:00"),
        message(1500000000000000004, OTHER, "marmalade from the year 9999", ts="9999-12-31T09:00:00+00:00"),
    ])
    ingest_dce(store, [tmp_path / "dce"], owner_id=OWNER_ID)
    with store.connect() as conn:
        memory.build(conn, embedder)
        found = memory.recall(conn, embedder, "marmalade", asker_id=OWNER_ID, place=Place.terminal(), owner_id=OWNER_ID, k=10)
        plain = memory.search(conn, embedder, "marmalade", None, k=10, recency=0.0)
    assert len(found) == 4 and any("9999" in m.content for m in found)
    unboosted = {m.id: m.score for m in plain}
    for m in found:
        assert m.score <= unboosted[m.id] * (1 + RECENCY_WEIGHT) + 1e-9, m.content


@pytest.mark.parametrize("shape", ["sentences", "words", "one giant word"])
def test_a_huge_message_is_never_tokenized_whole(embedder: Embedder, shape: str) -> None:
    """A 10 MB message once peaked at 5.3 GB in `memory build`: the tokenizer was handed the
    whole text (and every growing piece again). Now each text it sees is bounded, every
    memory fits the model, and no word is lost."""
    from persona.memory.chunking import CHARS_PER_TOKEN_BOUND

    words = {"sentences": "the cat sat on the mat. ", "words": "lorem ipsum dolor sit amet ", "one giant word": "abcdefghij"}[shape]
    text = (words * (400_000 // len(words)))[:400_000]
    seen: list[int] = []

    def counting(texts):
        seen.extend(len(t) for t in texts)
        return embedder.count_tokens(texts)

    budget = embedder.max_tokens - 16
    chunks = chunk_conversation([ChunkMessage(1, datetime(2024, 1, 1, tzinfo=UTC), "alex", text)], place="notes",
                                count_tokens=counting, budget=budget)
    assert max(seen) <= budget * CHARS_PER_TOKEN_BOUND
    assert max(embedder.count_tokens([c.content for c in chunks])) <= embedder.max_tokens
    bodies = [c.content.split("\n", 1)[1] for c in chunks]
    assert "".join(bodies).replace(" ", "") == ("alex: " + text).replace(" ", "")

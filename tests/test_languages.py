"""Each message's language, detected when it is stored (persona/languages.py), counted in
`persona stats` and `persona languages`, and filled in for older rows by `persona languages detect`."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ingest.dce import ingest_dce
from persona import memory
from persona.errors import ConfigError
from persona.languages import DEFAULT_LANGUAGES, LanguageDetector, fill_missing, parse, says_enough, text_search_config
from persona.memory.embeddings import Embedder
from persona.privacy.scopes import Place
from persona.storage.db import Database
from persona.storage.store import Store
from tests.fixtures.dce import FRIEND, OWNER, message, write_export
from tests.fixtures.discord_package import OWNER_ID
from tests.helpers import rows

CHAT = {
    "en": ["hey what are you up to tonight", "can't make it, work ran late again", "did you see the game last night?"],
    "es": ["oye qué haces esta noche", "no puedo ir, salgo tarde del trabajo", "mañana vamos a escalar o qué"],
    "pt": ["ei o que você vai fazer hoje à noite", "não posso ir, saí tarde do trabalho", "o meu fermento morreu outra vez"],
    "de": ["hey was machst du heute abend", "kann nicht, die arbeit ging wieder länger", "gehen wir morgen klettern oder nicht"],
    "fr": ["salut tu fais quoi ce soir", "je peux pas, j'ai fini tard au boulot", "on va grimper demain ou pas"],
    "ru": ["привет что делаешь вечером", "не могу, опять задержался на работе", "завтра идём на скалодром или нет"],
}
GUILD = ("5000000000000000091", "Crag")
GENERAL, DM = 1000000000000000914, 1000000000000000911
SERVER = Place.guild(int(GUILD[0]), GENERAL)
CANARY = "kx-4417-canary"
TOO_SHORT = ["lol", "ok 👍", "si", "ja", "haha", "<@123> 👍", "https://example.com/a/very/long/link"]


def test_chat_lines_are_told_apart_and_short_ones_left_undecided() -> None:
    detector = LanguageDetector(parse(""))
    lines = [(lang, line) for lang, lines in CHAT.items() for line in lines]
    assert detector.detect_many([line for _, line in lines]) == [lang for lang, _ in lines]
    assert detector.detect_many(TOO_SHORT) == [None] * len(TOO_SHORT)
    assert not says_enough("lol same") and says_enough("bin spät dran")


def test_one_configured_language_is_taken_as_given_and_codes_are_checked() -> None:
    only_german = LanguageDetector(parse("de"))
    assert only_german.detect_many(["hey what are you up to tonight", "lol"]) == ["de", None]  # no detection: the owner said so
    assert parse(" DE, en ,de") == ("de", "en") and parse("") == DEFAULT_LANGUAGES
    with pytest.raises(ConfigError, match="PERSONA_LANGUAGES: xx is not a language persona knows"):
        parse("de,xx")
    assert (text_search_config("de"), text_search_config("pl"), text_search_config(None)) == ("german", "simple", "simple")


def test_import_stores_the_language_and_stats_count_it(database: Database, persona_exe: Path, tmp_path: Path) -> None:
    store = Store(database)
    lines = [(OWNER, "hey was machst du heute abend"), (FRIEND, "oye qué haces esta noche"), (OWNER, "kann nicht, die arbeit ging wieder länger"),
             (FRIEND, "lol"), (OWNER, "can't make it, work ran late again")]
    write_export(tmp_path / "dce" / "mixed.json", channel_id=1000000000000000901, channel_type="DirectTextChat", messages=[
        message(1200000000000000901 + i, who, text, ts=f"2024-03-01T10:0{i}:00+00:00") for i, (who, text) in enumerate(lines)])
    ingest_dce(store, [tmp_path / "dce"], owner_id=OWNER_ID)
    assert [r[0] for r in rows(store, "SELECT language FROM messages ORDER BY id")] == [None] * 5  # the import only stores (fast)
    with store.connect() as conn:
        assert fill_missing(conn, LanguageDetector(parse(""))) == (5, 4)  # what `persona memory build` does first
    assert [r[0] for r in rows(store, "SELECT language FROM messages ORDER BY id")] == ["de", "es", "de", "und", "en"]

    env = {**{k: v for k, v in os.environ.items() if not k.startswith("PERSONA_")}, "DATABASE_URL": database.url, "PERSONA_HOME": str(tmp_path / "home")}
    stats = json.loads(subprocess.run([str(persona_exe), "stats", "--json"], env=env, capture_output=True, text=True, check=True, timeout=120).stdout)
    assert stats["messages_by_language"] == {"de": 2, "en": 1, "es": 1, "undecided": 1}
    assert stats["owner_messages_by_language"] == {"de": 2, "en": 1} and stats["messages_by_source"] == {"dce": 5}

    # Rows stored before detection existed, and messages whose words changed, have none: `persona languages detect`
    # (or the next memory build) fills them in, batch by batch; the same words imported again keep theirs.
    ingest_dce(store, [tmp_path / "dce"], owner_id=OWNER_ID)
    assert [r[0] for r in rows(store, "SELECT language FROM messages ORDER BY id")] == ["de", "es", "de", "und", "en"]
    with store.connect() as conn:
        conn.execute("UPDATE messages SET language = NULL")
        conn.commit()
    assert json.loads(subprocess.run([str(persona_exe), "stats", "--json"], env=env, capture_output=True, text=True, check=True,
                                     timeout=120).stdout)["messages_by_language"] == {"not yet detected": 5}
    detected = subprocess.run([str(persona_exe), "languages", "detect"], env=env, capture_output=True, text=True, timeout=120)
    assert detected.returncode == 0 and "5 messages examined; 4 in a language, 1 too short to tell" in detected.stdout, detected.stderr
    listed = json.loads(subprocess.run([str(persona_exe), "languages", "--json"], env=env, capture_output=True, text=True, check=True,
                                       timeout=120).stdout)
    assert listed["messages"] == {"de": 2, "en": 1, "es": 1, "undecided": 1} and listed["detected_among"] == list(DEFAULT_LANGUAGES)
    assert listed["memory_embedded_with"] is None
    # The owner writes mostly German: with PERSONA_EMBED_MODEL unset, the first build embeds with the multilingual model.
    built = json.loads(subprocess.run([str(persona_exe), "memory", "build", "--json"], env=env, capture_output=True, text=True, check=True,
                                      timeout=300).stdout)
    assert built["model"] == "intfloat/multilingual-e5-small" and built["embedded"] >= 1
    listed = json.loads(subprocess.run([str(persona_exe), "languages", "--json"], env=env, capture_output=True, text=True, check=True,
                                       timeout=120).stdout)
    assert listed["memory_embedded_with"] == "intfloat/multilingual-e5-small"
    wrong = subprocess.run([str(persona_exe), "languages"], env={**env, "PERSONA_LANGUAGES": "de,klingon"}, capture_output=True, text=True,
                           timeout=120)
    assert wrong.returncode != 0 and "PERSONA_LANGUAGES: klingon is not a language persona knows" in wrong.stderr
    assert "Traceback" not in wrong.stderr


def test_full_text_recall_reads_each_language_with_its_own_stemmer(database: Database, embedder: Embedder, tmp_path: Path) -> None:
    """German and Russian memories are found by a question with other word forms (their
    stemmers fold them; English's would not), English ones still are, mixed memories by
    either language — and the scope filter is the same SQL as ever (the DM canary)."""
    store = Store(database)
    general = [(OWNER, "wir waren gestern in der kletterhalle und ich bin die schwierigen routen geklettert"),
               (FRIEND, "моя закваска опять умерла, придётся начинать заново"),
               (OWNER, "the bakery shift ran late again, the ovens were broken"),
               (FRIEND, "heute abend gehen wir essen? the new ramen place opened")]
    write_export(tmp_path / "dce" / "general.json", channel_id=GENERAL, channel_type="GuildTextChat", guild=GUILD, name="general", messages=[
        message(1300000000000000911 + i, who, text, ts=f"2024-0{i + 1}-02T09:00:00+00:00") for i, (who, text) in enumerate(general)])
    write_export(tmp_path / "dce" / "dm.json", channel_id=DM, channel_type="DirectTextChat", messages=[
        message(1200000000000000910, FRIEND, "und dein code?", ts="2024-06-01T09:59:00+00:00"),
        message(1200000000000000911, OWNER, f"mein schließfachcode ist {CANARY}, die schwierigen routen sind geheim", ts="2024-06-01T10:00:00+00:00")])
    ingest_dce(store, [tmp_path / "dce"], owner_id=OWNER_ID)
    with store.connect() as conn:
        memory.build(conn, embedder, now=datetime(2025, 1, 1, tzinfo=UTC))
        assert {tuple(r[0]) for r in conn.execute("SELECT languages FROM memories").fetchall()} >= {("de",)}

        def found(question: str, asker: int = int(FRIEND["id"]), place: Place = SERVER) -> str:
            return "\n".join(m.content for m in memory.recall(conn, embedder, question, asker_id=asker, place=place, owner_id=OWNER_ID, k=3,
                                                            mode="text"))

        assert "kletterhalle" in found("welche schwierige route bist du geklettert?")  # route/routen, schwierige/schwierigen, stemmed as German
        assert "закваска" in found("как твоя закваску?")  # закваска/закваску, stemmed as Russian
        assert "bakery" in found("was the bakery oven broken?")  # oven/ovens, as English
        assert "ramen" in found("wohin gehen wir heute essen?") and "ramen" in found("is the ramen place open?")  # a mixed message, both ways
        assert CANARY not in found(f"was ist dein schließfachcode {CANARY}?")  # the DM is not the server's
        assert CANARY in found(f"was ist dein schließfachcode {CANARY}?", asker=int(FRIEND["id"]), place=Place.dm(DM))
        # Under English's configuration alone (before this change), the German and Russian questions find nothing.
        english = conn.execute("SELECT count(*) FROM memories WHERE to_tsvector('english', content) @@ "
                               "(to_tsquery('english', 'schwierige & route') || to_tsquery('english', 'закваску'))").fetchone()[0]
        assert english == 0


def test_content_words_leave_out_the_lines_own_grammar_words() -> None:
    from persona.memory.topics import distinctive_words
    from persona.words import content_words

    assert content_words("ich wohne jetzt in porto mit meiner katze") == ["wohne", "porto", "katze"]
    assert content_words("je vais grimper avec mes amis demain") == ["vais", "grimper", "amis", "demain"]
    assert content_words("я живу в порту со своей кошкой") == ["живу", "порту", "кошкой"]
    assert content_words("my cat is called miso, she is four") == ["cat", "called", "miso"]  # English as before
    named = distinctive_words({1: "wir gehen heute in die kletterhalle und dann in die kletterhalle zurück",
                               2: "der sauerteig ist wieder tot und der sauerteig riecht"}, 2)
    assert named[1][0] == "kletterhalle" and named[2][0] == "sauerteig" and not {"die", "der", "und"} & {*named[1], *named[2]}

"""Identity claims in every reply: a name, an age, a home, work, a relation or a pet that
neither the owner's settings nor the memories the asker may read back is never sent —
regenerated, cut, or (nothing left) withheld. The model is a stand-in that says what the
test needs (the small real models invent such lines at random); memory, scopes and the
reply pipeline are the real ones."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from ingest.dce import ingest_dce
from persona import memory, metrics
from persona.memory.embeddings import Embedder
from persona.privacy.scopes import Place
from persona.runtime import identity
from persona.runtime.engines.base import Generated, GenerationSettings
from persona.runtime.model import BaseModelSpec
from persona.runtime.reply import ReplyEngine, ReplyRequest
from persona.storage.db import Database
from persona.storage.store import Store
from tests.fixtures.dce import FRIEND, OTHER, OWNER, message, write_export
from tests.fixtures.discord_package import OWNER_ID
from tests.helpers import FakeEngine

GUILD = ("5000000000000000051", "Crag")
GENERAL, DM = 1000000000000000504, 1000000000000000501
SAM, KIM = int(FRIEND["id"]), int(OTHER["id"])
CANARY = "zorblat"  # the owner's dog, named only in a DM with Sam
SERVER = Place.guild(int(GUILD[0]), GENERAL)


@pytest.mark.parametrize(("text", "found"), [
    ("my name is ellyn moseleo", [("name", ("ellyn", "moseleo"), "")]),
    ("hi i'm ellyn", [("name", ("ellyn",), "")]),
    ("call me ellie", [("name", ("ellie",), "")]),
    ("i'm 34 lol", [("age", ("34",), "")]),
    ("i'm 27 years old and i live in porto", [("age", ("27",), ""), ("home", ("porto",), "")]),
    ("i turned 30 last week", [("age", ("30",), "")]),
    ("i was born in 1990", [("age", ("1990",), "")]),
    ("i'm from the uk", [("home", ("uk",), "")]),
    ("i work at google", [("work", ("google",), "")]),
    ("my wife sarah is great", [("relation", ("sarah",), "wife")]),
    ("our cat is called miso", [("relation", ("miso",), "cat")]),
    ("my brother tom is coming", [("relation", ("tom",), "brother")]),
    ("my dog is sick", [("relation", (), "dog")]),
    ("i have two kids", [("relation", (), "child")]),
    ("i'm married", [("relation", (), "married")]),
    # not identity: small talk, durations, plans, someone else
    ("hey what's up", []), ("hi i'm back lol", []), ("i'm so tired", []), ("i'm 5 minutes away", []), ("i'll be 5 min late", []),
    ("i'll be there in 10", []), ("call me tomorrow", []), ("my bad", []), ("i'm at the gym", []), ("ya ya", []), ("love that", []),
    ("omg hi!! i'm moving to porto in june", []), ("her name is klomba", []),
])
def test_identity_claims_are_found_by_their_form(text: str, found: list[tuple[str, tuple[str, ...], str]]) -> None:
    assert [(c.kind, c.value, c.relation) for c in identity.claims(text)] == found


@pytest.mark.parametrize(("text", "found"), [
    ("me llamo ellyn", [("name", ("ellyn",), "")]), ("tengo 34 años", [("age", ("34",), "")]), ("vivo en madrid", [("home", ("madrid",), "")]),
    ("mi perro se llama rex", [("relation", ("rex",), "dog")]), ("ich heiße ellyn", [("name", ("ellyn",), "")]),
    ("ich bin 34", [("age", ("34",), "")]), ("mein hund heißt rex", [("relation", ("rex",), "dog")]), ("meine frau", [("relation", (), "wife")]),
    ("je m'appelle ellyn", [("name", ("ellyn",), "")]), ("j'ai 34 ans", [("age", ("34",), "")]), ("j'habite à lyon", [("home", ("lyon",), "")]),
    ("mon chien s'appelle rex", [("relation", ("rex",), "dog")]), ("me chamo ellyn", [("name", ("ellyn",), "")]),
    ("tenho 34 anos", [("age", ("34",), "")]), ("moro em lisboa", [("home", ("lisboa",), "")]), ("minha irmã", [("relation", (), "sister")]),
    ("меня зовут эллин", [("name", ("эллин",), "")]), ("мне 34 года", [("age", ("34",), "")]), ("я живу в москве", [("home", ("москве",), "")]),
    ("мою собаку зовут рекс", [("relation", ("рекс",), "dog")]),
    # not identity
    ("soy feliz", []), ("tengo 5 minutos", []), ("ich bin 5 minuten zu spät", []), ("ich bin müde", []), ("ça va", []), ("как дела", []),
])
def test_identity_claims_in_other_languages(text: str, found: list[tuple[str, tuple[str, ...], str]]) -> None:
    assert [(c.kind, c.value, c.relation) for c in identity.claims(text)] == found


def test_what_backs_a_claim_in_other_languages() -> None:
    known = identity.Known.of(["June"], "", [("mi perro se llama rex", (1,)), ("meine schwester ist lustig", (3,)), ("мне 34 года", (4,))])
    backing = lambda text: [known.backing(c) for c in identity.claims(text)]  # noqa: E731
    assert backing("mi perro se llama rex") == [(1,)] and backing("mi gato se llama tom") == [None]
    assert backing("meine schwester") == [(3,)] and backing("meine frau") == [None]
    assert backing("мне 34 года") == [(4,)] and backing("мне 35 лет") == [None]


def test_a_place_is_all_its_words_not_the_first() -> None:
    """"in der nähe von münchen" is münchen, not "nähe": before, the place stopped at the first grammar word, and any
    "ich wohne in der nähe von …" was backed by the owner's one sentence about münchen."""
    known = identity.Known.of([], "", ["ich wohne in der nähe von münchen", "i live in the north of england"])
    assert [c.value for c in identity.claims("ich wohne in der nähe von münchen")] == [("münchen",)]
    assert [c.value for c in identity.claims("i live in the north of england")] == [("north", "england")]
    assert [c.value for c in identity.claims("i live in london with my wife") if c.kind == "home"] == [("london",)]  # "with" ends it
    for invented in ("ich wohne in der nähe von berlin", "i live in the north of france"):
        assert [known.backs(c) for c in identity.claims(invented)] == [False], invented
    for said in ("ich wohne in der nähe von münchen", "i live in the north of england"):
        assert [known.backs(c) for c in identity.claims(said)] == [True], said


def test_what_backs_a_claim() -> None:
    known = identity.Known.of(["Alex", "alexk"], "I live in Lisbon. My sister is Ana.", ["my cat is called miso, she is four",
                                                                                        "i turned 34 yesterday", "tom is coming over"])
    backed = lambda text: [known.backs(c) for c in identity.claims(text)]  # noqa: E731
    assert backed("my name is alex") == [True]  # a name the owner has
    assert backed("my name is ellyn") == [False]
    assert backed("i live in lisbon") == [True] and backed("i live in porto") == [False]  # PERSONA_OWNER_FACTS
    assert backed("my sister ana is here") == [True] and backed("our cat is called miso") == [True]
    assert backed("my brother tom is here") == [False]  # the owner knows a Tom, but never said "my brother"
    assert backed("i'm 34") == [True] and backed("i'm 35") == [False]
    assert backed("my name is miso") == [False]  # the owner said "miso", never as their own name


@pytest.fixture
def store(database: Database, embedder: Embedder, tmp_path: Path) -> Store:
    """The owner said in the server that they live in Porto and have a cat, Miso; their dog's name only in a DM with Sam."""
    store = Store(database)
    write_export(tmp_path / "dce" / "general.json", channel_id=GENERAL, channel_type="GuildTextChat", guild=GUILD, name="general", messages=[
        message(1300000000000000501, OTHER, "where do you live these days?", ts="2024-03-02T09:00:00+00:00"),
        message(1300000000000000502, OWNER, "i live in porto now, with my cat miso", ts="2024-03-02T09:01:00+00:00"),
        message(1300000000000000503, OTHER, "how was climbing?", ts="2024-03-06T09:00:00+00:00"),
        message(1300000000000000504, OWNER, "climbing was great, sent the overhang", ts="2024-03-06T09:01:00+00:00"),
    ])
    write_export(tmp_path / "dce" / "sam.json", channel_id=DM, channel_type="DirectTextChat", messages=[
        message(1200000000000000501, FRIEND, "how's the new dog?", ts="2024-03-01T10:00:00+00:00"),
        message(1200000000000000502, OWNER, f"my dog {CANARY} chewed my shoes lol", ts="2024-03-01T10:01:00+00:00"),
    ])
    ingest_dce(store, [tmp_path / "dce"], owner_id=OWNER_ID)
    with store.connect() as conn:
        memory.build(conn, embedder)
    return store


class Saying(FakeEngine):
    """Answers the next of `replies` (the last again when they run out), streamed word by word."""

    def __init__(self, spec: BaseModelSpec, replies: Sequence[str]) -> None:
        super().__init__(spec, GenerationSettings(max_new_tokens=40, temperature=0.8, top_p=0.9, repetition_penalty=1.0))
        self.replies = list(replies)
        self.calls: list[dict[str, Any]] = []

    def generate(self, messages: Any, *, on_text: Any = None, greedy: bool | None = None, **options: Any) -> Generated:
        self.calls.append({"greedy": greedy, **options})
        text = self.replies[min(len(self.calls) - 1, len(self.replies) - 1)]
        for word in text.split(" "):
            if on_text is not None:
                on_text(word + " ")
        return Generated(text, len(text.split()))


def ask(store: Store, embedder: Embedder, spec: BaseModelSpec, replies: Sequence[str], *, policy: str = "regenerate", facts: str = "",
        asker: int = KIM, place: Place = SERVER, text: str = "hey what's up", on_sentences: Any = None) -> tuple[Any, Saying]:
    model = Saying(spec, replies)
    engine = ReplyEngine(store, embedder, model, owner_id=OWNER_ID, owner_name="Alex", owner_names=("alex_k",), owner_facts=facts,
                         consistency_policy="regenerate", identity_policy=policy, say_unknown=True)
    channel = place.channel_id or DM
    reply = engine.reply(ReplyRequest(text=text, asker_id=asker, asker_name="kim", place=place, channel_id=channel), on_sentences)
    return reply, model


def test_an_invented_name_is_regenerated_then_cut_then_withheld(store: Store, embedder: Embedder, tiny_llama: BaseModelSpec) -> None:
    before = {a: metrics.REGISTRY.get_sample_value("persona_identity_repairs_total", {"action": a}) for a in metrics.IDENTITY_ACTIONS}
    again, model = ask(store, embedder, tiny_llama, ["hey!! my name is ellyn moseleo", "not much, you?"])
    assert (again.text, again.identity, again.withheld) == ("not much, you?", "regenerated", "")
    assert model.calls[1]["greedy"] is False  # a second, sampled reply

    cut, model = ask(store, embedder, tiny_llama, ["hey!! my name is ellyn moseleo", "i'm 27 years old lol"])
    assert (cut.text, cut.identity) == ("hey!!", "dropped") and len(model.calls) == 2  # the second invented too: the first, cut

    dropped, model = ask(store, embedder, tiny_llama, ["hey!! my name is ellyn moseleo"], policy="drop")
    assert (dropped.text, dropped.identity, len(model.calls)) == ("hey!!", "dropped", 1)  # drop never generates again

    withheld, _ = ask(store, embedder, tiny_llama, ["my name is ellyn moseleo", "hi i'm ellyn"])
    assert withheld.text == "…" and withheld.identity == "withheld" and "ellyn" not in "".join(withheld.chunks)
    assert "my name is ellyn moseleo" in withheld.withheld  # the owner is told why, in the draft
    after = {a: metrics.REGISTRY.get_sample_value("persona_identity_repairs_total", {"action": a}) for a in metrics.IDENTITY_ACTIONS}
    assert {a: after[a] - before[a] for a in after} == {"regenerated": 1, "dropped": 2, "withheld": 1}


def test_what_the_owner_said_or_set_goes_out_unchanged(store: Store, embedder: Embedder, tiny_llama: BaseModelSpec) -> None:
    for said in ("my name is alex lol", "call me alex_k", "i live in porto ✨", "my cat miso says hi", "sent the overhang, so good"):
        reply, model = ask(store, embedder, tiny_llama, [said])
        assert (reply.text, reply.identity, len(model.calls)) == (said, "none", 1), said
    unset, _ = ask(store, embedder, tiny_llama, ["i'm 41 haha", "same old same old"])
    assert unset.text == "same old same old"
    told, _ = ask(store, embedder, tiny_llama, ["i'm 41 haha"], facts="I am 41 years old. My sister is Ana.")
    assert (told.text, told.identity) == ("i'm 41 haha", "none")  # PERSONA_OWNER_FACTS backs it


def test_a_fact_said_in_a_dm_backs_nothing_in_the_server(store: Store, embedder: Embedder, tiny_llama: BaseModelSpec) -> None:
    line = f"my dog {CANARY} is so cute"
    in_server, _ = ask(store, embedder, tiny_llama, [line, line])
    assert CANARY not in in_server.text and in_server.identity == "withheld"
    assert CANARY in json.dumps(in_server.withheld)  # the owner's own draft may quote the reply it held, nobody else sees it
    with_sam, _ = ask(store, embedder, tiny_llama, [line], asker=SAM, place=Place.dm(DM))
    assert (with_sam.text, with_sam.identity) == (line, "none")
    # The memory that backed it counts among the reply's memories: forgetting it forgets the reply.
    with store.connect() as conn:
        dm_memory = conn.execute("SELECT id FROM memories WHERE content LIKE %s", (f"%{CANARY}%",)).fetchone()[0]
    assert dm_memory in with_sam.identity_memory_ids
    request = ReplyRequest(text="hey what's up", asker_id=SAM, asker_name="sam", place=Place.dm(DM), channel_id=DM)
    assert dm_memory in ReplyEngine.as_logged(request, with_sam).memory_ids


def test_a_streamed_reply_never_shows_the_claim_and_is_cut_not_replaced(store: Store, embedder: Embedder, tiny_llama: BaseModelSpec) -> None:
    shown: list[str] = []
    reply, model = ask(store, embedder, tiny_llama, ["hey there. my name is ellyn moseleo. how r u?", "other"], on_sentences=shown.append)
    assert shown == ["hey there."]  # nothing from the claim on was shown
    assert (reply.text, reply.identity, len(model.calls)) == ("hey there.\nhow r u?", "dropped", 1)


def test_the_repair_order_with_stand_ins() -> None:
    failed = identity.claims("my name is ellyn")
    calls: list[str] = []

    def recheck(text: str) -> list[identity.Claim]:
        calls.append(f"check {text}")
        return identity.claims(text)

    def regenerate() -> tuple[str, int]:
        calls.append("again")
        return "", 0

    kept = identity.repair("ok! my name is ellyn", 5, failed, "regenerate", recheck=recheck, regenerate=regenerate)
    assert (kept.text, kept.action, calls) == ("ok!", "dropped", ["again", "check ok!"])  # an empty second reply is not sent
    assert identity.repair("fine", 1, [], "drop", recheck=recheck, regenerate=regenerate).action == "none"
    with pytest.raises(ValueError, match="identity policy"):
        identity.repair("x", 1, failed, "off", recheck=recheck, regenerate=regenerate)

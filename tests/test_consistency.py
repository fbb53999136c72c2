"""The consistency check: a reply's claims about the owner held against the owner's own
sentences the asker may read — supported, contradicted, unsupported — and what each
policy does with a failing reply (flag, hedge, regenerate)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from ingest.dce import ingest_dce
from persona import memory
from persona.memory.embeddings import Embedder
from persona.privacy.forget import carry_out, forget_channel
from persona.privacy.scopes import Place
from persona.prompts import Messages
from persona.runtime import consistency
from persona.runtime.engines.base import Generated, GenerationSettings, OnText
from persona.runtime.grounding import GroundingSettings
from persona.runtime.model import BaseModelSpec
from persona.runtime.reply import ReplyEngine, ReplyRequest
from persona.storage.db import Database
from persona.storage.store import Store
from tests.fixtures.dce import FRIEND, OTHER, OWNER, message, write_export
from tests.fixtures.discord_package import OWNER_ID
from tests.helpers import FakeEngine

GUILD = ("5000000000000000041", "Crag")
GENERAL, DM = 1000000000000000404, 1000000000000000401
SAM, KIM = int(FRIEND["id"]), int(OTHER["id"])
CANARY = "zorblat"  # the owner's DM-only fact: never evidence, never a verdict's sentence, in the server
SERVER = Place.guild(int(GUILD[0]), GENERAL)


def test_claims_are_the_clauses_that_state_facts_about_the_owner() -> None:
    assert [(c.text, set(c.words)) for c in consistency.claims("her name is klomba", "what's your cat's name?", about_owner=True)] == [
        ("her name is klomba", {"klomba"})]  # "cat" and "name" were the question's
    assert consistency.claims("ya ya", "what's your cat's name?", about_owner=True) == []  # filler states nothing
    assert consistency.claims("i think rust is great", "thoughts on rust?", about_owner=False) == []  # an opinion
    assert consistency.claims("lol the weather is wild", "how's it going?", about_owner=False) == []  # not about the owner
    moving = consistency.claims("omg hi!! i'm moving to porto in june", "how's it going?", about_owner=False)
    assert len(moving) == 1 and {"porto", "june"} <= moving[0].words


@pytest.fixture
def store(database: Database, embedder: Embedder, tmp_path: Path) -> Store:
    """The owner named their cat in the server, and their car only in a DM with Sam."""
    store = Store(database)
    write_export(tmp_path / "dce" / "general.json", channel_id=GENERAL, channel_type="GuildTextChat", guild=GUILD, name="general", messages=[
        message(1300000000000000401, OTHER, "what's your cat called?", ts="2024-03-02T09:00:00+00:00"),
        message(1300000000000000402, OWNER, "my cat is called miso, she is four", ts="2024-03-02T09:01:00+00:00"),
        message(1300000000000000403, OTHER, "how was climbing?", ts="2024-03-06T09:00:00+00:00"),
        message(1300000000000000404, OWNER, "climbing was great, sent the overhang", ts="2024-03-06T09:01:00+00:00"),
    ])
    write_export(tmp_path / "dce" / "sam.json", channel_id=DM, channel_type="DirectTextChat", messages=[
        message(1200000000000000401, FRIEND, "what car do you drive these days?", ts="2024-03-01T10:00:00+00:00"),
        message(1200000000000000402, OWNER, f"i drive an old {CANARY} truck, it's red", ts="2024-03-01T10:01:00+00:00"),
    ])
    ingest_dce(store, [tmp_path / "dce"], owner_id=OWNER_ID)
    with store.connect() as conn:
        memory.build(conn, embedder)
    return store


def verdict(store: Store, embedder: Embedder, reply: str, question: str, asker: int, place: Place) -> consistency.Verdict:
    with store.connect() as conn:
        recalled = memory.recall(conn, embedder, question, asker_id=asker, place=place, owner_id=OWNER_ID, k=5)
        return consistency.check(conn, embedder, reply, question, recalled, asker_id=asker, place=place, owner_id=OWNER_ID, about_owner=True)


def test_supported_contradicted_and_unsupported(store: Store, embedder: Embedder) -> None:
    right = verdict(store, embedder, "her name is miso hehe", "what's your cat's name?", KIM, SERVER)
    assert right.outcome == "supported" and "miso" in right.sentence and right.memory_ids
    wrong = verdict(store, embedder, "her name is klomba", "what's your cat's name?", KIM, SERVER)
    assert wrong.outcome == "contradicted" and wrong.claim == "her name is klomba" and "miso" in wrong.sentence
    assert verdict(store, embedder, "ya ya", "what's your cat's name?", KIM, SERVER).outcome == "none"


def test_the_check_reads_only_what_the_asker_may_read(store: Store, embedder: Embedder) -> None:
    in_server = verdict(store, embedder, "i drive a blue honda", "what car do you drive?", KIM, SERVER)
    # The owner's car is only in the DM: in the server memory says nothing about it.
    assert in_server.outcome == "unsupported" and CANARY not in json.dumps(in_server.as_json())
    with_sam = verdict(store, embedder, "i drive a blue honda", "what car do you drive?", SAM, Place.dm(DM))
    assert with_sam.outcome == "contradicted" and CANARY in with_sam.sentence
    assert verdict(store, embedder, f"an old {CANARY} truck", "what car do you drive?", SAM, Place.dm(DM)).outcome == "supported"


class ScriptedModel(FakeEngine):
    """Says `first` to anything; asked again with evidence, repeats the evidence (a model
    that follows its grounding); after a forced opening, adds " tbh"."""

    first = "her name is klomba"
    follows_evidence = True

    def generate(self, messages: Messages, *, greedy: bool | None = None, evidence: Sequence[str] = (),
                 grounding: GroundingSettings | None = None, opening: str = "", max_new_tokens: int | None = None,
                 on_text: OnText | None = None, place: str | None = None) -> Generated:
        self.calls.append({"evidence": list(evidence), "opening": opening})
        if opening:
            return Generated("tbh", 1)
        if self.follows_evidence and len(self.calls) > 1 and evidence:
            return Generated(evidence[0], 5)
        return Generated(self.first, 4)


@pytest.fixture
def scripted(tiny_llama: BaseModelSpec) -> ScriptedModel:
    return ScriptedModel(tiny_llama, GenerationSettings(max_new_tokens=8, temperature=0.8, top_p=0.9, repetition_penalty=1.0))


def ask(store: Store, embedder: Embedder, model: ScriptedModel, policy: str, text: str = "what's your cat's name?"):
    model.calls = []
    engine = ReplyEngine(store, embedder, model, owner_id=OWNER_ID, owner_name="Alex", say_unknown=True, consistency_policy=policy,
                         grounding=GroundingSettings(boost=3.0, copy_weight=0.5, threshold=0.45))
    request = ReplyRequest(text=text, asker_id=KIM, asker_name="kim", place=SERVER, channel_id=GENERAL)
    reply = engine.reply(request)
    return engine, request, reply


def test_each_policy_with_a_contradicted_reply(store: Store, embedder: Embedder, scripted: ScriptedModel) -> None:
    _, _, off = ask(store, embedder, scripted, "off")
    assert off.text == "her name is klomba" and off.verdict is None
    _, _, flagged = ask(store, embedder, scripted, "flag")
    assert flagged.text == "her name is klomba" and flagged.verdict.outcome == "contradicted" and "check" in flagged.timings_ms
    _, _, hedged = ask(store, embedder, scripted, "hedge")
    assert hedged.said_unknown and hedged.text == "not sure tbh" and "klomba" not in hedged.text
    engine, request, fixed = ask(store, embedder, scripted, "regenerate")
    assert fixed.regenerated and fixed.verdict.outcome == "supported" and "miso" in fixed.text and not fixed.said_unknown
    assert "miso" in scripted.calls[-1]["evidence"][0]  # the second try was pulled towards the owner's own sentence
    reply_id = engine.log(request, fixed)
    with store.connect() as conn:
        logged, memory_ids = conn.execute("SELECT verdict, memory_ids FROM replies WHERE id = %s", (reply_id,)).fetchone()
    assert logged["outcome"] == "supported" and set(logged["memory_ids"]) <= set(memory_ids)
    # Forgetting the server forgets the reply that quoted the owner's sentence from it, verdict and all.
    with store.connect() as conn:
        carry_out(conn, lambda c: forget_channel(c, GENERAL), None)
        assert conn.execute("SELECT count(*) FROM replies").fetchone()[0] == 0


def test_a_right_answer_loses_only_the_clause_memory_does_not_back(store: Store, embedder: Embedder, scripted: ScriptedModel) -> None:
    """"Answer without the claim": a supported answer followed by a made-up line keeps its
    supported part under hedge and regenerate (flag sends it whole, with the verdict)."""
    assert consistency.without("my cat is called miso\nok but she plays the oboe, lol", ["she plays the oboe"]) == "my cat is called miso"
    scripted.first = "my cat is called miso\nshe plays the oboe at night"
    try:
        _, _, flagged = ask(store, embedder, scripted, "flag")
        assert flagged.text == scripted.first and not flagged.verdict.passes and flagged.verdict.supported == 1
        assert flagged.verdict.failed == ("she plays the oboe at night",)
        for policy in ("hedge", "regenerate"):
            _, _, kept = ask(store, embedder, scripted, policy)
            assert kept.text == "my cat is called miso" and kept.trimmed and kept.verdict.outcome == "supported", policy
            assert not kept.said_unknown and not kept.regenerated and "repair" in kept.timings_ms
    finally:
        scripted.first = "her name is klomba"


def test_the_check_reads_the_reply_as_it_would_be_sent(store: Store, embedder: Embedder, scripted: ScriptedModel) -> None:
    """A model can emit NUL (PostgreSQL refuses it in the check's recall) and personal data
    (the logged verdict quotes the claim): the check sees the cleaned, scrubbed reply."""
    scripted.first = "her name is klomba\x00, call me at +1 (555) 010-4477"
    try:
        _, _, reply = ask(store, embedder, scripted, "flag")
    finally:
        scripted.first = "her name is klomba"
    assert reply.verdict.outcome == "contradicted" and "\x00" not in reply.verdict.claim + reply.text
    assert "010-4477" not in json.dumps(reply.verdict.as_json()) + reply.text


def test_small_talk_claims_are_flagged_not_replaced(store: Store, embedder: Embedder, scripted: ScriptedModel) -> None:
    scripted.first = "i'm moving to porto in june"
    try:
        _, _, reply = ask(store, embedder, scripted, "regenerate", "hey, how's it going?")
    finally:
        scripted.first = "her name is klomba"
    assert reply.verdict.outcome == "unsupported" and reply.text == "i'm moving to porto in june" and not reply.said_unknown


def test_a_failed_regeneration_says_not_sure(store: Store, embedder: Embedder, scripted: ScriptedModel) -> None:
    scripted.follows_evidence = False
    try:
        _, _, reply = ask(store, embedder, scripted, "regenerate")
    finally:
        scripted.follows_evidence = True
    assert reply.regenerated and reply.said_unknown and reply.text == "not sure tbh" and len(scripted.calls) == 3


def test_the_repair_policy_trims_then_regenerates_then_hedges() -> None:
    """consistency.repair alone, with stand-ins for the check and the model: the order of
    the three repairs and what each returns."""
    failed = consistency.Verdict("contradicted", "she plays the oboe", "i play the tuba", (3,), failed=("she plays the oboe",), supported=1)
    calls: list[str] = []

    def recheck(text: str) -> consistency.Verdict:
        calls.append(f"check {text}")
        return consistency.Verdict("supported" if "oboe" not in text and "klomba" not in text else "contradicted")

    def regenerate(sentence: str) -> tuple[str, int]:
        calls.append(f"again with {sentence}")
        return "i play the tuba", 4

    def not_sure() -> tuple[str, int]:
        calls.append("not sure")
        return "no idea tbh", 0

    trimmed = consistency.repair("my cat is miso\nshe plays the oboe", 9, failed, "hedge", recheck=recheck, regenerate=regenerate,
                                 not_sure=not_sure)
    assert (trimmed.text, trimmed.new_tokens, trimmed.trimmed, trimmed.verdict.outcome) == ("my cat is miso", 9, True, "supported")
    assert calls == ["check my cat is miso"]

    calls.clear()
    unsupported = consistency.Verdict("contradicted", "her name is klomba", "her name is miso", (2,), failed=("her name is klomba",))
    again = consistency.repair("her name is klomba", 4, unsupported, "regenerate", recheck=recheck, regenerate=regenerate, not_sure=not_sure)
    assert (again.text, again.regenerated, again.said_unknown) == ("i play the tuba", True, False)
    assert calls == ["again with her name is miso", "check i play the tuba"]  # nothing backed: no trim tried

    calls.clear()
    hedged = consistency.repair("her name is klomba", 4, unsupported, "hedge", recheck=recheck, regenerate=regenerate, not_sure=not_sure)
    assert (hedged.text, hedged.said_unknown, hedged.regenerated, hedged.verdict) == ("no idea tbh", True, False, unsupported)
    assert calls == ["not sure"]  # hedge never generates again
    with pytest.raises(ValueError, match="only hedge and regenerate repair"):
        consistency.repair("x", 1, unsupported, "flag", recheck=recheck, regenerate=regenerate, not_sure=not_sure)


def test_first_person_claims_and_opinions_in_other_languages() -> None:
    said = lambda text: [sorted(c.words) for c in consistency.claims(text, "wie geht's?", about_owner=False)]  # noqa: E731
    assert said("ich ziehe im märz nach lissabon") == [["lissabon", "märz", "ziehe"]]  # German grammar words left out
    assert said("я переезжаю в москву") == [["москву", "переезжаю"]]
    assert said("ich glaube das wird gut") == [] and said("je pense que oui") == []  # opinions
    assert said("el tiempo está loco") == []  # not about the owner

"""The consistency check: a reply's factual claims about the owner, held against what the owner said.

Runs on every generated reply before it is sent (persona/runtime/reply.py), with the
memories the asker may read and nothing else, and on the evaluation's fact-probe answers
(trainer/fact_probes.py). Built from parts that run offline on 2
cores in tens of milliseconds — no natural-language-inference model is installable
offline here, and asking the persona's own 135M model to judge its reply was no better
than its reply:

1. **Claims** (`claims`): the reply's clauses that state something about the owner — in
   answer to a factual question about them (persona/runtime/unknowns.py), every clause
   with a content word the question did not already hold ("her name is klomba"); in
   other chat, first-person clauses ("i'm moving to porto"), never opinions ("i think…")
   or filler ("ya ya", "hehe yes").
2. **Evidence** (`gather`): the owner's own sentences in the memories recall returned for
   the reply, and in a second recall with each claim (the owner may have said it
   elsewhere), both through `memory.recall` for this asker and place, read once per reply.
3. **Verdict** per claim: *supported* when one of the owner's sentences holds at least half
   of the claim's content words (a name, a place, a number said again); *contradicted*
   when none does but one is about the same thing (embedding similarity of the question
   and claim to the sentence ≥ the embedder's `Calibration.evidence`: the owner said something else about it);
   *unsupported* when memory says nothing either way. A reply's verdict is its worst
   claim's; a reply without claims is `none` and passes untouched.

What happens to a contradicted or unsupported answer to a factual question about the
owner is the owner's choice (`PERSONA_CONSISTENCY`): `off`, `flag` (sent, verdict
logged), `hedge` (the owner's "not sure" instead), `regenerate` (again, pulled hard
towards the sentence that decided — the owner's own words on it — and checked again;
"not sure" if it still fails). Under `hedge` and `regenerate` an answer that also makes a
claim memory backs is first sent without the failing clauses (`without`): measured,
a right answer followed by a made-up second line ("…boulderhaus on pine street\nok but
just for fun") was otherwise replaced whole. A first-person line volunteered in other chat is only
flagged: "not sure" in reply to "how's it going?" would answer nothing.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any, get_args

import numpy as np
import psycopg

from persona import memory
from persona.config import ConsistencyPolicy
from persona.memory.embeddings import Embedder
from persona.privacy.scopes import Place
from persona.runtime.grounding import remembered_sentences
from persona.words import content_words, stem

log = logging.getLogger(__name__)

POLICIES = get_args(ConsistencyPolicy)  # PERSONA_CONSISTENCY
OUTCOMES = ("none", "supported", "contradicted", "unsupported")
SUPPORTED_SHARE = 0.5  # of a claim's content words found in one sentence of the owner's

CLAIM_RECALL_K = 5

_CLAUSE = re.compile(r"(?<=[.!?…])\s+|\n+|(?<=[,;])\s+(?=(?:and |but |so )?(?:i|i'm|im|my|we|she|he|it|her|his)\b)")
# First person and opinion words in English, Spanish, Portuguese, German, French and Russian.
_FIRST_PERSON = re.compile(
    r"(?<!\w)(?:i|i'm|im|i've|ive|i'd|i'll|my|mine|me|we|we're|our|"
    r"yo|mi|mis|estoy|soy|tengo|nosotros|nuestro|nuestra|eu|meu|minha|meus|minhas|estou|sou|tenho|nós|nosso|nossa|"
    r"ich|mein|meine|meinen|meinem|mir|mich|wir|unser|unsere|je|j['’]|moi|mon|ma|mes|nous|notre|"
    r"я|мой|моя|моё|мои|мне|меня|мы|наш|наша)(?!\w)", re.I)
_OPINION = re.compile(
    r"(?<!\w)(?:think|thinking|feel|guess|believe|reckon|imo|maybe|probably|hope|wish|wonder|should|would|could|might|"
    r"creo|pienso|quizás|quizas|tal vez|ojalá|ojala|debería|deberia|acho|penso|talvez|espero|deveria|"
    r"glaube|denke|finde|vielleicht|hoffe|sollte|würde|wuerde|pense|crois|peut-être|peut-etre|j['’]espère|devrais|trouve|"
    r"думаю|считаю|наверное|может|надеюсь|кажется)(?!\w)", re.I)


@dataclass(frozen=True)
class Claim:
    text: str
    words: frozenset[str]  # stems of its content words that the question did not hold


@dataclass(frozen=True)
class Verdict:
    outcome: str  # one of OUTCOMES
    claim: str = ""
    sentence: str = ""  # the owner's sentence that decided (supporting, or speaking otherwise)
    memory_ids: tuple[int, ...] = ()  # where that sentence is
    failed: tuple[str, ...] = ()  # every claim memory does not back (the worst is `claim`)
    supported: int = 0  # how many of the reply's claims memory backs

    def as_json(self) -> dict[str, Any]:
        return {"outcome": self.outcome, "claim": self.claim, "sentence": self.sentence, "memory_ids": list(self.memory_ids)}

    @property
    def passes(self) -> bool:
        return self.outcome in ("none", "supported")


def claims(reply: str, question: str, *, about_owner: bool) -> list[Claim]:
    """The clauses of `reply` that state a fact about the owner (see the module docstring)."""
    asked = {stem(w) for w in content_words(question)}
    found = []
    for clause in _CLAUSE.split(reply):
        clause = clause.strip(" ,;")
        words = frozenset(stem(w) for w in content_words(clause)) - asked
        if not words or _OPINION.search(clause):
            continue
        if about_owner or _FIRST_PERSON.search(clause):
            found.append(Claim(clause, words))
    return found


@dataclass
class OwnerSentences:
    """The owner's sentences a check may read, each with the memories it is in; their
    embeddings are computed once, on the first claim that needs them."""

    texts: list[str]
    memory_ids: list[tuple[int, ...]]
    _vectors: np.ndarray | None = None

    @classmethod
    def of(cls, rows: Iterable[tuple[int, str]]) -> OwnerSentences:
        held: dict[str, list[int]] = {}
        for memory_id, sentence in rows:
            held.setdefault(sentence, []).append(memory_id)
        return cls(list(held), [tuple(dict.fromkeys(ids)) for ids in held.values()])

    def vectors(self, embedder: Embedder) -> np.ndarray:
        if self._vectors is None:
            self._vectors = embedder.embed_passages(self.texts)
        return self._vectors


def check(conn: psycopg.Connection, embedder: Embedder, reply: str, question: str, recalled: Sequence[memory.Memory], *,
          asker_id: int | None, place: Place, owner_id: int | None, about_owner: bool) -> Verdict:
    """The reply's verdict: its worst claim's (contradicted, then unsupported), else supported, else none."""
    if owner_id is None:
        return Verdict("none")
    stated = claims(reply, question, about_owner=about_owner)
    if not stated:
        return Verdict("none")
    said = gather(conn, embedder, [c.text for c in stated], recalled, asker_id=asker_id, place=place, owner_id=owner_id)
    return judge(embedder, stated, question, said)


def gather(conn: psycopg.Connection, embedder: Embedder, queries: Sequence[str], recalled: Sequence[memory.Memory], *,
           asker_id: int | None, place: Place, owner_id: int, k: int = CLAIM_RECALL_K) -> OwnerSentences:
    """The owner's sentences in what recall returned for the reply and in a recall with
    each query — a claim: the owner may have said it elsewhere — for this asker and place
    only, read from the history in one query (this check's and the identity check's)."""
    pool = {m.id: m for m in recalled}
    for query in queries:
        for found in memory.recall(conn, embedder, query, asker_id=asker_id, place=place, owner_id=owner_id, k=k):
            pool.setdefault(found.id, found)
    return OwnerSentences.of((memory_id, sentence) for memory_id, sentence, _ in remembered_sentences(conn, list(pool.values()), owner_id, min_words=1))


def judge(embedder: Embedder, stated: Sequence[Claim], question: str, said: OwnerSentences) -> Verdict:
    """The worst verdict of `stated` against the owner's sentences (no database: the
    evaluation's fact probes carry their sentences into the training process)."""
    verdicts = [_judge(embedder, claim, question, said) for claim in stated]
    tally = {"failed": tuple(v.claim for v in verdicts if not v.passes), "supported": sum(v.outcome == "supported" for v in verdicts)}
    for outcome in ("contradicted", "unsupported"):
        for verdict in verdicts:
            if verdict.outcome == outcome:
                return replace(verdict, **tally)
    return replace(verdicts[0], **tally) if verdicts else Verdict("none")


def without(reply: str, failed: Sequence[str]) -> str:
    """`reply` with the clauses of `failed` claims taken out ("answer without the claim"):
    what is left is the part memory backs, tidied of the joints the cut leaves."""
    return "\n".join(line for line in cut(reply, failed) if content_words(line))  # a leftover "ok but" or "lol" says nothing


def cut(text: str, clauses: Sequence[str]) -> list[str]:
    """The lines of `text` left once `clauses` are taken out, stripped of the commas and
    dashes the cut leaves at their ends (what a repair may still send)."""
    for clause in clauses:
        text = text.replace(clause, "\n")
    return [line for line in (line.strip(" ,;-–") for line in text.splitlines()) if line]


@dataclass(frozen=True)
class Repaired:
    """An answer as it goes out, and how it came about: checked (`verdict`), and replaced
    or cut by `repair` when its verdict failed."""

    text: str
    new_tokens: int
    verdict: Verdict | None = None  # None: not checked; after a repair that ends in "not sure": the first answer's
    trimmed: bool = False  # the answer without the clauses memory does not back
    regenerated: bool = False  # a second answer was generated (sent only if it passed)
    said_unknown: bool = False  # the owner's "not sure"
    shown: bool = False  # part of it was shown while it was generated (streamed): it may be cut, not replaced


def repair(text: str, new_tokens: int, verdict: Verdict, policy: str, *, recheck: Callable[[str], Verdict],
           regenerate: Callable[[str], tuple[str, int]], not_sure: Callable[[], tuple[str, int]], fallback_sentence: str = "") -> Repaired:
    """The repair policy for an answer to a factual question about the owner that failed
    the check, under `hedge` or `regenerate` (see the module docstring), in order: the
    answer without its failing clauses, if memory backs the rest; under `regenerate`, a
    second answer pulled towards the sentence that decided (`regenerate(sentence)`), if it
    passes; else the owner's "not sure" (`not_sure()`)."""
    if policy not in ("hedge", "regenerate"):
        raise ValueError(f"only hedge and regenerate repair, not {policy!r}")
    if verdict.supported and (kept := without(text, verdict.failed)):
        again = recheck(kept)
        if again.passes:
            return Repaired(kept, new_tokens, again, trimmed=True)
    sentence = verdict.sentence or fallback_sentence
    regenerated = False
    if policy == "regenerate" and sentence:
        second, second_tokens = regenerate(sentence)
        regenerated = True
        checked = recheck(second)
        if checked.passes:
            return Repaired(second, second_tokens, checked, regenerated=True)
    hedge, hedge_tokens = not_sure()
    return Repaired(hedge, hedge_tokens, verdict, regenerated=regenerated, said_unknown=True)


def _judge(embedder: Embedder, claim: Claim, question: str, said: OwnerSentences) -> Verdict:
    if not said.texts:
        return Verdict("unsupported", claim.text)
    shares = [len(claim.words & {stem(w) for w in content_words(t)}) / len(claim.words) for t in said.texts]
    best = max(range(len(said.texts)), key=shares.__getitem__)
    if shares[best] >= SUPPORTED_SHARE:
        return Verdict("supported", claim.text, said.texts[best], said.memory_ids[best])
    similarity = (said.vectors(embedder) @ embedder.embed_query(f"{question} {claim.text}")).tolist()
    closest = max(range(len(said.texts)), key=similarity.__getitem__)
    if similarity[closest] >= embedder.spec.calibration.evidence:  # the owner's sentence speaks about what the claim is about
        return Verdict("contradicted", claim.text, said.texts[closest], said.memory_ids[closest])
    return Verdict("unsupported", claim.text)

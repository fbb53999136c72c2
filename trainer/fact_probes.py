"""Fact probes: does the persona say what it remembers? Measured in every evaluation.

A probe is a question someone asked the owner in the training history and the owner
answered in the first person ("what's your cat called again?" → "my cat miso turned
four last week"). It is asked again the way the bot would be asked — by the owner, in
the terminal, with no conversation around it — with the memories recall finds and the
grounding evidence (persona/runtime/grounding.py) of the reply pipeline. A reply uses
the fact when it contains the answer's key word: its rarest word in the owner's
training messages that the question does not already hold ("miso", not "cat").

Probes are prepared here, where the database is (recall needs it), and generated in
the training process (trainer/job.py), for the base model and the adapter alike. Each
answer also gets the consistency check's verdict (persona/runtime/consistency.py), held
against the owner's sentences the probe carries: the report shows how often a model
states what the owner never said.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from persona import memory
from persona.memory.embeddings import Embedder
from persona.privacy.scopes import Place
from persona.prompts import Frame, Line, render
from persona.runtime import consistency
from persona.runtime.grounding import GroundingSettings, find_evidence, remembered_sentences
from persona.words import WORD, content_words
from trainer.dataset import Example
from trainer.drills import answered_question

log = logging.getLogger(__name__)

MIN_KEY_LENGTH = 3
CHECK_K = 15  # memories whose owner sentences a probe's consistency check reads


@dataclass(frozen=True)
class Probe:
    question: str
    answer: str  # what the owner said back then
    key: str  # the word a reply must contain
    messages: list[dict[str, str]]  # the prompt, as the reply pipeline renders it
    evidence: list[str]  # grounding evidence found for it
    in_memory: bool  # whether the recalled memories hold the key word at all
    # The stored messages whose words it holds (the exchange, the recalled memories): a
    # forget removes the probe from the files (persona/adapter_files.py).
    message_ids: list[int]
    # The owner's sentences the consistency check may hold a reply against, each with its
    # memory ids: recall for the question, wider than the prompt's (the training process has
    # no database for the live check's recall with each claim).
    owner_sentences: list[tuple[str, list[int]]] = field(default_factory=list)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Probe:
        return cls(**data)


def key_word(question: str, answer: str, frequency: Counter[str]) -> str | None:
    """The answer's rarest content word (in the owner's messages) that the question
    lacks; the first of equally rare ones (a fact tends to come first: "the cello, my
    neighbours hate me")."""
    asked = {w.lower() for w in WORD.findall(question)}
    words = [w for w in content_words(answer, min_length=MIN_KEY_LENGTH) if w not in asked and not w.isdigit()]
    return min(words, key=lambda w: (frequency[w], words.index(w))) if words else None


def build_probes(conn: psycopg.Connection, embedder: Embedder, train: list[Example], *, owner_id: int | None, owner_name: str,
                 grounding: GroundingSettings, limit: int, k: int = 5) -> list[Probe]:
    """Up to `limit` probes from the answered questions of `train`: questions asked once
    (one asked again and again — "anyone up for the gym tonight?" — is small talk, its
    answers differ each time), those whose key word the owner used least first."""
    if limit <= 0 or owner_id is None or memory.stored_model(conn) is None:
        return []
    frequency = Counter(w.lower() for e in train for m in e.messages if m["role"] == "assistant" for w in WORD.findall(m["content"]))
    exchanges: list[tuple[Example, str, str, str]] = []
    for example in sorted(train, key=lambda e: e.last_at, reverse=True):
        if "drill" in example.tags or "correction" in example.tags or (exchange := answered_question(example)) is None:
            continue
        _, question_line, answer = exchange
        question = question_line.split(": ", 1)[-1].strip()
        if (key := key_word(question, answer, frequency)) is not None:
            exchanges.append((example, question, answer, key))
    asked = Counter(question.lower() for _, question, _, _ in exchanges)
    candidates = sorted((x for x in exchanges if asked[x[1].lower()] == 1), key=lambda x: frequency[x[3]])  # stable: newest first among equals
    probes: list[Probe] = []
    for example, question, answer, key in candidates[:limit]:
        recalled = memory.recall(conn, embedder, question, asker_id=owner_id, place=Place.terminal(), owner_id=owner_id, k=k)
        evidence = find_evidence(conn, embedder, question, recalled, owner_id=owner_id, settings=grounding) if grounding.enabled else []
        messages = render(Frame(owner_name, "", "terminal", example.last_at[:10]), [Line("you", question, False)], [m.content for m in recalled])
        wider = {m.id: m for m in [*recalled, *memory.recall(conn, embedder, question, asker_id=owner_id, place=Place.terminal(),
                                                             owner_id=owner_id, k=CHECK_K)]}
        said = consistency.OwnerSentences.of((i, sentence) for i, sentence, _ in remembered_sentences(conn, list(wider.values()), owner_id, min_words=1))
        probes.append(Probe(question, answer, key, messages, [e.text for e in evidence], any(key in m.content.lower() for m in recalled),
                            sorted({*example.message_ids, *(i for m in wider.values() for i in m.message_ids)}),
                            [(text, list(ids)) for text, ids in zip(said.texts, said.memory_ids)]))
    log.info("fact probes: %d of %d answered questions (%d asked once)", len(probes), len(exchanges), len(candidates))
    return probes


def write_probes(path: Path, probes: list[Probe]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(asdict(p), ensure_ascii=False) + "\n" for p in probes))
    return path


def read_probes(path: str | None) -> list[Probe]:
    if not path or not Path(path).exists():
        return []
    return [Probe.from_json(json.loads(line)) for line in Path(path).read_text().splitlines() if line.strip()]


def fact_use(probes: list[Probe], replies: dict[str, list[str]], embedder: Embedder | None = None) -> dict[str, Any]:
    """The fact-use table: of the probes whose key word recall found, how many replies
    state it; with an embedder, the consistency check's verdicts on every reply too
    (persona/runtime/consistency.py: how often each model states what the owner never said)."""
    found = [i for i, p in enumerate(probes) if p.in_memory]
    table: dict[str, Any] = {"probes": len(probes), "in_recalled_memories": len(found),
                             "with_evidence": sum(bool(p.evidence) for p in probes)}
    for label, texts in replies.items():
        table[label] = sum(probes[i].key in texts[i].lower() for i in found)
    verdicts: dict[str, list[str]] = {}
    if embedder is not None:
        # One set of the owner's sentences per probe, shared by every model's answer: embedded once.
        said = [consistency.OwnerSentences([s for s, _ in p.owner_sentences], [tuple(ids) for _, ids in p.owner_sentences]) for p in probes]
        for label, texts in replies.items():
            verdicts[label] = [consistency.judge(embedder, consistency.claims(text, p.question, about_owner=True), p.question, owner).outcome
                               for p, owner, text in zip(probes, said, texts)]
        table["consistency"] = {label: {o: outcomes.count(o) for o in consistency.OUTCOMES} for label, outcomes in verdicts.items()}
    # "samples", each naming its messages: what a forget filters out of result files.
    table["samples"] = [{"question": p.question, "key": p.key, "in_memory": p.in_memory, **{k: v[i] for k, v in replies.items()},
                         **({"verdict": {k: v[i] for k, v in verdicts.items()}} if verdicts else {}),
                         "message_ids": p.message_ids} for i, p in enumerate(probes)]
    return table

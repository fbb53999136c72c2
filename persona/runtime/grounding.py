"""Grounded replies: make what the persona remembers reach what it says.

A small model (SmolLM2-135M, Gemma 3 270M) reads the recalled memories in its prompt
and answers past them: on the demo's history the fact was in the prompt for 8 of 10
questions and in 0 of the adapter's answers. Training it to copy (trainer/drills.py)
moved that to 1/10; contrasting logits with and without the memories (context-aware
decoding) changed nothing, because an adapter's logits barely depend on the memory
block. What works at this size is to make copying cheap while decoding, as speech
recognisers bias decoding towards expected words ("contextual biasing") and
prompt-lookup decoding continues n-grams found in the prompt:

1. **Evidence** (`find_evidence`): sentences the owner wrote, in the memories recall
   already returned for this asker and place (so nothing out of scope can be used),
   scored by the embedding model against the question — and against the line the owner
   was answering when they wrote it, since "what's your dog called again?" → "my dog
   is called biscuit" answers "what's your dog's name?" better than its own words say.
   Only sentences above a similarity threshold count: a question that nothing in memory
   answers gets no evidence and an unbiased reply, never words from an unrelated memory.
   Outside English (the bundled embedder's language) a sentence must also share a word
   with the question or the line it answered (`shares_a_word`).
2. **Bias** (`EvidenceBias`): while the reply is generated, every token of the evidence
   the reply has not said yet gets `boost` added to its logit, and the tokens that
   continue the evidence after the reply's last one or two tokens (or open it, at the
   reply's start) get `copy_weight` of the probability mixed in, as a pointer-generator
   network mixes its copy distribution with the vocabulary's (so "miso" pulls "turned
   four" after it). The model still chooses: its own words where the evidence has
   nothing to say, the owner's where it does. End-of-turn is never boosted.

A server backend (issue 13) can take the unigram part as an OpenAI-style `logit_bias`;
the copy mixture needs the logits, so it runs in-process only.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg

from persona import memory
from persona.history import messages as history
from persona.memory.embeddings import Embedder
from persona.words import content_words, language_of

log = logging.getLogger(__name__)

MIN_WORDS = 3
_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+|\n+")


@dataclass(frozen=True)
class Evidence:
    memory_id: int
    text: str  # one sentence the owner wrote
    score: float  # cosine similarity that selected it

    def as_json(self) -> dict[str, Any]:
        return {"memory_id": self.memory_id, "text": self.text, "score": round(self.score, 4)}


@dataclass(frozen=True)
class GroundingSettings:
    boost: float = 0.0  # logit added to evidence tokens; 0 turns grounding off
    copy_weight: float = 0.0  # probability mixed in for the token that continues the evidence (0..1)
    threshold: float | None = None  # cosine similarity a sentence needs to count as evidence; None: the embedder's calibration
    max_evidence: int = 1

    @property
    def enabled(self) -> bool:
        return self.boost > 0 or self.copy_weight > 0

    @classmethod
    def from_settings(cls, settings: Any) -> GroundingSettings:
        return cls(boost=settings.grounding_boost, copy_weight=settings.grounding_copy_weight,
                   threshold=settings.grounding_threshold, max_evidence=settings.grounding_max_evidence)


def owner_sentences(lines: Sequence[tuple[int, str]], owner_id: int, *, min_words: int = MIN_WORDS) -> list[tuple[str, str]]:
    """(sentence the owner wrote, the other person's line it answered) for each of the
    owner's sentences of at least `min_words` words."""
    found: list[tuple[str, str]] = []
    prompted = ""
    for author, content in lines:
        if author != owner_id:
            prompted = content
            continue
        for sentence in _SENTENCE_END.split(content):
            if len(sentence.split()) >= min_words:
                found.append((sentence.strip(), prompted))
    return found


def remembered_sentences(conn: psycopg.Connection, memories: Sequence[memory.Memory], owner_id: int, *,
                         min_words: int = MIN_WORDS) -> list[tuple[int, str, str]]:
    """(memory id, sentence the owner wrote, the line it answered) for every memory, read
    in one query (what grounding and the consistency check pick from)."""
    lines = history.exchanges(conn, [i for m in memories for i in m.message_ids])
    return [(m.id, sentence, prompted) for m, held in ((m, set(m.message_ids)) for m in memories)
            for sentence, prompted in owner_sentences([(a, c) for i, a, c in lines if i in held], owner_id, min_words=min_words)]


def find_evidence(conn: psycopg.Connection, embedder: Embedder, question: str, memories: Sequence[memory.Memory], *,
                  owner_id: int | None, settings: GroundingSettings) -> list[Evidence]:
    """The owner's sentences among `memories` that answer `question`, best first."""
    if owner_id is None or not memories or not question.strip():
        return []
    candidates = remembered_sentences(conn, memories, owner_id)
    if not candidates:
        return []
    calibration = embedder.spec.calibration
    language = language_of(question)
    if (language or "en") not in calibration.trusted_in:  # where similarity alone cannot tell the subject, a sentence must share a word with the question too
        candidates = [c for c in candidates if shares_a_word(question, c[1], language) or (c[2] and shares_a_word(question, c[2], language))]
        if not candidates:
            return []
    threshold = calibration.evidence if settings.threshold is None else settings.threshold
    asked = embedder.embed_query(question)
    texts = list(dict.fromkeys([c[1] for c in candidates] + [c[2] for c in candidates if c[2]]))  # one batch, each text once
    similarity = dict(zip(texts, (embedder.embed_passages(texts) @ asked).tolist()))
    scores = [max(similarity[said], similarity.get(prompted, -1.0)) for _, said, prompted in candidates]
    chosen: list[Evidence] = []
    for i in sorted(range(len(candidates)), key=lambda i: -scores[i]):
        if scores[i] < threshold or len(chosen) >= settings.max_evidence:
            break
        if all(candidates[i][1] != e.text for e in chosen):
            chosen.append(Evidence(candidates[i][0], candidates[i][1], scores[i]))
    return chosen


def shares_a_word(question: str, sentence: str, language: str | None) -> bool:
    """Whether `sentence` holds one of the question's content words, or a form of it (the
    shorter word whole at the start of the other — "zieh" / "ziehst", "katze" / "katzen" —
    or, past five letters, all but its last: "cumpleaños" / "cumpleaño…", not "libro" /
    "libre") — grounding's lexical check where the embedder's similarity alone cannot tell
    the subject (`Calibration.trusted_in`): outside English for the English MiniLM, which
    scores unrelated sentences alike there (the German demo: "wie heißt deine katze?" →
    "sie hat eine socke geklaut" at 0.84), and everywhere for e5, whose scores are compressed."""
    asked = content_words(question, language=language)
    said = content_words(sentence, language=language)
    def same(a: str, w: str) -> bool:
        shorter = min(len(a), len(w))
        n = shorter if shorter <= 5 else shorter - 1
        return a[:n] == w[:n]

    return any(same(a, w) for a in asked for w in said)


class EvidenceBias:
    """A transformers LogitsProcessor: pulls generation towards the evidence's words.

    Copying is tracked by position: the tokens after each place in the evidence where the
    reply's last two tokens (or last one) occur share `copy_weight` of the probability
    (the model keeps the rest), and the reply's start counts as the evidence's start. A
    position is copied at most once, so "fr fr" cannot turn into "fr fr fr …" and a
    sentence is not said twice."""

    def __init__(self, tokenizer: Any, evidence: Sequence[str], *, prompt_length: int, boost: float, copy_weight: float) -> None:
        self.prompt_length = prompt_length
        self.boost = boost
        self.copy_weight = copy_weight
        special = set(getattr(tokenizer, "all_special_ids", []) or [])
        variants = dict.fromkeys(v for text in evidence for v in (text, " " + text, text.lower(), " " + text.lower()))
        self.sequences = [[t for t in tokenizer(v, add_special_tokens=False)["input_ids"] if t not in special] for v in variants]
        self.token_ids = sorted({t for ids in self.sequences for t in ids})
        # n-gram of the reply's end → the evidence positions (sequence, index) that follow it.
        self.after: dict[tuple[int, ...], list[tuple[int, int]]] = {(): [(s, 0) for s, ids in enumerate(self.sequences) if ids]}
        for s, ids in enumerate(self.sequences):
            for n in (1, 2):
                for start in range(len(ids) - n):
                    self.after.setdefault(tuple(ids[start:start + n]), []).append((s, start + n))

    def _following(self, generated: list[int]) -> list[tuple[int, int]]:
        if not generated:
            return self.after[()]
        for n in (2, 1):
            if len(generated) >= n and tuple(generated[-n:]) in self.after:
                return self.after[tuple(generated[-n:])]
        return []

    def continuations(self, generated: list[int]) -> set[int]:
        """The tokens that would continue copying after `generated` (not yet copied ones)."""
        copied: set[tuple[int, int]] = set()
        for t in range(len(generated)):
            copied.update(p for p in self._following(generated[:t]) if self.sequences[p[0]][p[1]] == generated[t])
        return {self.sequences[s][i] for s, i in self._following(generated) if (s, i) not in copied}

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        for row in range(input_ids.shape[0]):
            generated = input_ids[row, self.prompt_length:].tolist()
            if self.boost:
                # Only words the reply has not said yet: once the fact is stated the pull
                # stops, so the reply can end instead of circling through the evidence.
                said = set(generated)
                scores[row, [t for t in self.token_ids if t not in said]] += self.boost
            follow = self.continuations(generated) if self.copy_weight > 0 else set()
            if follow:
                # A mixture, not a logit bonus: the model ranks a rare name ("sprocket")
                # 10+ logits below "the", more than any fixed bonus that leaves its other
                # choices alone would overcome. Log-probabilities keep the warpers
                # (temperature, top-p) that run after this meaningful.
                mixed = torch.softmax(scores[row].float(), dim=-1) * (1 - self.copy_weight)
                mixed[sorted(follow)] += self.copy_weight / len(follow)
                scores[row] = torch.log(mixed).to(scores.dtype)
        return scores

"""The reply pipeline: recent conversation + recalled memories → prompt → text.

Shared by the Discord bot, `persona chat` and the demo; nothing here knows about
Discord. Memories come from `memory.recall` only (scope rules in SQL) and the prompt
from `persona.prompts.render`, the frame training used. Generation is CPU/GPU-bound
and synchronous: callers on an event loop run `ReplyEngine.reply` in a worker thread.
Output is scrubbed of personal data before it leaves, split to Discord's 2,000-character
limit, and every reply is logged (prompt snapshot, memory ids, adapter version,
latency) so feedback can point at it.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from persona import adapters, memory, metrics, replies
from persona.config import Settings
from persona.errors import ModelUnavailable
from persona.history.people import names_of, resolve_owner
from persona.memory.embeddings import Embedder
from persona.privacy.scopes import Place, readable_scopes
from persona.prompts import CURRENT_FRAME, Frame, Line, Messages, place_label, render_to_fit
from persona.runtime import cancellation, consistency, identity, unknowns
from persona.runtime.engines.base import GenerationSettings, TextGenerator
from persona.runtime.engines.registry import engine_for
from persona.runtime.grounding import Evidence, GroundingSettings, find_evidence
from persona.runtime.release import CONTROL, SentenceRelease, clean
from persona.storage.store import Store
from persona.timing import Stopwatch

log = logging.getLogger(__name__)

DISCORD_LIMIT = 2000


@dataclass
class ReplyRequest:
    text: str
    asker_id: int | None
    asker_name: str
    place: Place
    history: list[Line] = field(default_factory=list)  # recent messages before `text`, oldest first
    channel_id: int | None = None
    trigger_message_id: int | None = None
    place_label: str = ""  # how the place reads in the prompt; default from `place`
    day: str = ""  # YYYY-MM-DD of the conversation; default today (UTC)
    context_author_ids: tuple[int, ...] = ()  # whose lines `history` holds (forgetting one of them forgets the reply)
    max_new_tokens: int | None = None  # a shorter reply than the owner's setting (an API client's max_tokens)
    greedy: bool | None = None  # deterministic (an API client's temperature 0); None: the owner's setting


@dataclass
class Reply:
    text: str
    chunks: list[str]
    prompt: Messages
    memories: list[memory.Memory]
    scope: str
    adapter_version: int | None
    base_model: str
    latency_ms: int
    timings_ms: dict[str, float]
    new_tokens: int = 0
    evidence: list[Evidence] = field(default_factory=list)  # the owner's sentences the reply was pulled towards
    said_unknown: bool = False  # a question about the owner that memory could not answer: "not sure" (persona/runtime/unknowns.py)
    verdict: consistency.Verdict | None = None  # the consistency check's (None: PERSONA_CONSISTENCY=off)
    regenerated: bool = False  # the first reply failed the check and was generated again
    trimmed: bool = False  # sent without the clauses the check found memory does not back
    identity: str = "none"  # what the identity check did: none | regenerated | dropped | withheld (persona/runtime/identity.py)
    withheld: str = ""  # why nothing of the model's reply may be sent (the bot holds it as a draft; the text is "…")
    identity_memory_ids: tuple[int, ...] = ()  # the memories that back its identity claims (logged among its memories)


@dataclass
class Prepared:
    """A request made ready for the model: what it recalled, the evidence, the prompt."""

    request: ReplyRequest
    about_owner: bool
    recalled: list[memory.Memory]
    evidence: list[Evidence]
    prompt: Messages
    clock: Stopwatch
    ready_at: float  # time.perf_counter() when it was ready
    waited_ms: float = 0.0  # between ready and the model's turn (not part of the reply's latency)


def split_message(text: str, limit: int = DISCORD_LIMIT) -> list[str]:
    """Pieces of at most `limit` characters, cut at line ends, then sentence ends, then spaces."""
    text = text.strip()
    pieces: list[str] = []
    while len(text) > limit:
        window = text[:limit]
        cut = max(window.rfind("\n"), -1)
        if cut < limit // 2:
            ends = [m.end() for m in re.finditer(r"[.!?…](?:\s|$)", window)]
            cut = ends[-1] if ends and ends[-1] >= limit // 2 else window.rfind(" ")
        if cut <= 0:
            cut = limit
        pieces.append(text[:cut].rstrip())
        text = text[cut:].lstrip()
    if text:
        pieces.append(text)
    return pieces


class ReplyEngine:
    """Everything a reply needs, minus Discord."""

    def __init__(self, store: Store, embedder: Embedder, generator: TextGenerator, *, owner_id: int | None, owner_name: str,
                 style_notes: str = "", context_tokens: int = 1200, k: int = 5, grounding: GroundingSettings | None = None,
                 say_unknown: bool = False, consistency_policy: str = "off", identity_policy: str = "regenerate",
                 owner_names: tuple[str, ...] = (), owner_facts: str = "") -> None:
        if consistency_policy not in consistency.POLICIES:
            raise ValueError(f"consistency policy must be one of {consistency.POLICIES}")
        if identity_policy not in identity.POLICIES:
            raise ValueError(f"identity policy must be one of {identity.POLICIES}")
        self.store = store
        self.embedder = embedder
        self.generator = generator
        self.owner_id = owner_id
        self.owner_name = owner_name
        self.style_notes = style_notes
        window = generator.context_window
        # The prompt and the reply must fit the model's context window together.
        self.context_tokens = min(context_tokens, window - generator.settings.max_new_tokens) if window else context_tokens
        self.k = k
        self.grounding = grounding or GroundingSettings()
        self.say_unknown = say_unknown
        self.consistency = consistency_policy
        self.identity = identity_policy  # every reply's identity claims are checked (persona/runtime/identity.py); never off
        self.owner_names = tuple(dict.fromkeys(n for n in (owner_name, *owner_names) if n and n != "me"))
        self.owner_facts = owner_facts
        self.frame_version = CURRENT_FRAME  # the active adapter's (adapter_versions.prompt_frame): what it was trained on

    @classmethod
    def from_settings(cls, settings: Settings, store: Store, *, embedder: Embedder | None = None,
                      generation: GenerationSettings | None = None) -> ReplyEngine:
        """The base model, the active adapter and memory, as the bot uses them (also `persona chat` and the demo)."""
        with store.connect() as conn:
            owner = resolve_owner(conn, settings.owner_id, settings.owner_name)
            names = names_of(conn, owner.id) if owner else ()
            embedder = embedder or Embedder(memory.chosen_model(conn, settings.embed_model))
        generator = engine_for(settings, generation or GenerationSettings.from_settings(settings))
        engine = cls(store, embedder, generator,
                     owner_id=owner.id if owner else None, owner_name=(owner.name if owner else "") or "me", style_notes=settings.style_notes,
                     grounding=GroundingSettings.from_settings(settings), say_unknown=settings.say_unknown,
                     consistency_policy=settings.consistency, identity_policy=settings.identity_check, owner_names=names,
                     owner_facts=settings.owner_facts)
        try:
            engine.refresh_adapter()
            metrics.model_answers(True)
        except ModelUnavailable as exc:  # the model server may come up after us: each reply tries again
            metrics.model_answers(False)
            log.warning("%s", exc.message)
        return engine

    def refresh_adapter(self) -> int | None:
        """Switch to whichever adapter is active now (cheap when it has not changed)."""
        with self.store.connect() as conn:
            current = adapters.active(conn)
        self.generator.use_adapter(current.id if current else None, current.path if current else None)
        self.frame_version = current.prompt_frame if current else CURRENT_FRAME
        return self.generator.adapter_version

    def build_prompt(self, request: ReplyRequest, memories: list[memory.Memory]) -> Messages:
        frame = Frame(self.owner_name, self.style_notes, request.place_label or _default_label(request),
                      request.day or datetime.now(UTC).strftime("%Y-%m-%d"), self.frame_version)
        lines = [*request.history, Line(request.asker_name, request.text, False)]
        return render_to_fit(frame, lines, [m.content for m in memories], self.generator.count_tokens, self.context_tokens)

    def reply(self, request: ReplyRequest, on_sentences: Callable[[str], None] | None = None) -> Reply:
        """The reply to `request`: recall, evidence, prompt, generate, check, repair. With
        `on_sentences`, the reply's text so far is handed over each time a sentence is
        finished (cleaned, persona/runtime/release.py) — unless the consistency check may
        still replace it (a factual question about the owner under `hedge` or `regenerate`):
        then nothing is shown before the whole is checked. The bot runs the three stages
        apart (`prepare` while the model answers someone else, `generate` in its turn,
        `finish` after it), so waiting askers' recall is done by the time their turn comes."""
        prepared = self.prepare(request)
        return self.finish(prepared, self.generate(prepared, on_sentences))

    def prepare(self, request: ReplyRequest) -> Prepared:
        """Recall, evidence and the prompt: everything before the model (database and embedder only)."""
        clock = Stopwatch()
        request = _without_control_characters(request)
        about_owner = self.owner_id is not None and unknowns.asks_about_owner(request.text)
        recalled, evidence = self._recall(request, about_owner, clock)
        with clock.step("prompt"):
            prompt = self.build_prompt(request, recalled)
        return Prepared(request, about_owner, recalled, evidence, prompt, clock, time.perf_counter())

    def generate(self, prepared: Prepared, on_sentences: Callable[[str], None] | None = None) -> consistency.Repaired:
        """The model's first answer to a prepared request (the only stage that needs the model)."""
        prepared.waited_ms = (time.perf_counter() - prepared.ready_at) * 1000
        # Only an answer to a factual question about the owner is ever replaced: a first-person line
        # volunteered in chat ("i'm at the gym lol") is flagged, never swapped for "not sure".
        cancellation.raise_if_cancelled()
        try:
            with prepared.clock.step("generate"):
                draft = self._generate(prepared.request, prepared.prompt, prepared.evidence, prepared.about_owner,
                                       None if self._replaceable(prepared) else on_sentences)
        except ModelUnavailable:
            metrics.model_answers(False)
            raise
        metrics.model_answers(True)
        return draft

    def finish(self, prepared: Prepared, draft: consistency.Repaired) -> Reply:
        """The consistency check and its repair (a regeneration takes the model again), then the reply as sent."""
        request, clock, recalled = prepared.request, prepared.clock, prepared.recalled
        if self.consistency != "off" and not draft.said_unknown:
            with clock.step("check"):
                verdict = self._check(request, draft.text, recalled, prepared.about_owner)
            draft = replace(draft, verdict=verdict)
            if not verdict.passes and self._replaceable(prepared):
                with clock.step("repair"):
                    draft = self._repair(request, prepared.prompt, recalled, prepared.evidence, prepared.about_owner, draft, verdict)
        with clock.step("identity"):
            kept = self._keep_identity(request, prepared.prompt, recalled, draft)
        draft = replace(draft, text=kept.text, new_tokens=kept.new_tokens)
        cancellation.raise_if_cancelled()  # abandoned part-way (a closed connection, a stopping server): not a reply
        text = clean(draft.text) or "…"
        scope = _reply_scope(readable_scopes(request.asker_id, request.place, self.owner_id))
        metrics.observe_stages(clock.ms)
        return Reply(text, split_message(text), prepared.prompt, recalled, scope, self.generator.adapter_version, self.generator.spec.name,
                     int(clock.total_ms - prepared.waited_ms), clock.ms, draft.new_tokens, prepared.evidence, said_unknown=draft.said_unknown,
                     verdict=draft.verdict, regenerated=draft.regenerated, trimmed=draft.trimmed, identity=kept.action,
                     withheld=kept.withheld, identity_memory_ids=kept.memory_ids)

    def _replaceable(self, prepared: Prepared) -> bool:
        return prepared.about_owner and self.consistency in ("hedge", "regenerate")

    def _recall(self, request: ReplyRequest, about_owner: bool, clock: Stopwatch) -> tuple[list[memory.Memory], list[Evidence]]:
        """What the asker may read that bears on the request (memory.recall, scoped in SQL),
        and the owner's sentences in it that answer the question (grounding, "not sure")."""
        with self.store.connect() as conn:
            with clock.step("recall"):
                query = "\n".join([*(t.content for t in request.history[-2:]), request.text])
                recalled = memory.recall(conn, self.embedder, query, asker_id=request.asker_id, place=request.place, owner_id=self.owner_id,
                                         k=self.k)
            if not (self.grounding.enabled or (self.say_unknown and about_owner)):
                return recalled, []
            with clock.step("evidence"):
                return recalled, find_evidence(conn, self.embedder, request.text, recalled, owner_id=self.owner_id, settings=self.grounding)

    def _generate(self, request: ReplyRequest, prompt: Messages, evidence: list[Evidence], about_owner: bool,
                  on_sentences: Callable[[str], None] | None) -> consistency.Repaired:
        """The first answer: the owner's "not sure" when nothing in memory answers a
        question about them (PERSONA_SAY_UNKNOWN), else the model's, streamed if wanted."""
        if self.say_unknown and about_owner and not evidence:
            text, new_tokens = self._not_sure(request, prompt)
            return consistency.Repaired(text, new_tokens, said_unknown=True)
        streamed = SentenceRelease(on_sentences, hold=identity.states_identity) if on_sentences is not None else None
        generated = self.generator.generate(prompt, evidence=[e.text for e in evidence], grounding=self.grounding, on_text=streamed,
                                            greedy=request.greedy, max_new_tokens=_at_most(request.max_new_tokens, self.generator.settings),
                                            place=conversation_key(request))
        return consistency.Repaired(clean(generated.text), generated.new_tokens, shown=bool(streamed and streamed.released))

    def _repair(self, request: ReplyRequest, prompt: Messages, recalled: list[memory.Memory], evidence: list[Evidence], about_owner: bool,
                draft: consistency.Repaired, verdict: consistency.Verdict) -> consistency.Repaired:
        """The check's repair policy (consistency.repair) with this reply's model and memory."""

        def regenerate(sentence: str) -> tuple[str, int]:
            again = self.generator.generate(prompt, greedy=True, evidence=[sentence], grounding=_insistent(self.grounding),
                                            max_new_tokens=_at_most(request.max_new_tokens, self.generator.settings),
                                            place=conversation_key(request))
            return clean(again.text), again.new_tokens

        return consistency.repair(draft.text, draft.new_tokens, verdict, self.consistency,
                                  recheck=lambda text: self._check(request, text, recalled, about_owner), regenerate=regenerate,
                                  not_sure=lambda: self._not_sure(request, prompt), fallback_sentence=evidence[0].text if evidence else "")

    def _keep_identity(self, request: ReplyRequest, prompt: Messages, recalled: list[memory.Memory],
                       draft: consistency.Repaired) -> identity.Kept:
        """The identity check on the reply as it would go out, and its repair: a second
        sampled reply (not for one already partly shown), else the reply without the
        claims, else nothing (persona/runtime/identity.py)."""

        checked: dict[str, identity.Checked] = {}

        def unbacked(text: str) -> list[identity.Claim]:
            if not identity.states_identity(text):  # most replies: no database, no embedder
                return []
            if text not in checked:
                with self.store.connect() as conn:
                    checked[text] = identity.check(conn, self.embedder, clean(text), recalled, names=self.owner_names, facts=self.owner_facts,
                                                   asker_id=request.asker_id, place=request.place, owner_id=self.owner_id)
            return checked[text].failed

        def regenerate() -> tuple[str, int]:
            again = self.generator.generate(prompt, greedy=False, max_new_tokens=_at_most(request.max_new_tokens, self.generator.settings),
                                            place=conversation_key(request))
            return clean(again.text), again.new_tokens

        failed = unbacked(draft.text)
        if failed:
            kept = identity.repair(draft.text, draft.new_tokens, failed, "drop" if draft.shown else self.identity, recheck=unbacked,
                                   regenerate=regenerate)
            metrics.count_identity(kept.action)
            log.info("identity check: %s (%s)", kept.action, ", ".join(c.kind for c in failed))
        else:
            kept = identity.Kept(draft.text, draft.new_tokens)
        backing = checked[kept.text].memory_ids if kept.text in checked else ()
        return replace(kept, memory_ids=backing)

    def _not_sure(self, request: ReplyRequest, prompt: Messages) -> tuple[str, int]:
        """The owner's own "not sure" from where the asker may read, else the model's words
        after a forced "not sure", one clause long (persona/runtime/unknowns.py)."""
        assert self.owner_id is not None
        with self.store.connect() as conn:
            hedges = unknowns.owner_hedges(conn, self.owner_id, readable_scopes(request.asker_id, request.place, self.owner_id))
        if hedges:
            return unknowns.pick(hedges, request.text), 0
        opening = unknowns.opening_for(request.text)
        generated = self.generator.generate(prompt, opening=opening, max_new_tokens=8, place=conversation_key(request))
        return unknowns.first_clause(opening, generated.text), generated.new_tokens

    def _check(self, request: ReplyRequest, text: str, recalled: list[memory.Memory], about_owner: bool) -> consistency.Verdict:
        with self.store.connect() as conn:
            return consistency.check(conn, self.embedder, text, request.text, recalled, asker_id=request.asker_id, place=request.place,
                                     owner_id=self.owner_id, about_owner=about_owner)

    def log(self, request: ReplyRequest, reply: Reply, message_ids: list[int] | None = None, guild_id: int | None = None) -> int:
        """Record a sent reply; returns its id (what feedback points at)."""
        logged = self.as_logged(request, reply, message_ids, guild_id)
        with self.store.connect() as conn:
            reply_id = replies.log_reply(conn, logged)
            conn.commit()
        return reply_id

    @staticmethod
    def as_logged(request: ReplyRequest, reply: Reply, message_ids: list[int] | None = None, guild_id: int | None = None) -> replies.LoggedReply:
        """What is recorded of the reply (a draft keeps this until the owner sends it)."""
        return replies.LoggedReply(
            # The checks may have read memories recall did not return: they count as the reply's, so forgetting one forgets it.
            scope=reply.scope, prompt=reply.prompt, completion=reply.text,
            memory_ids=list(dict.fromkeys([m.id for m in reply.memories] + list(reply.verdict.memory_ids if reply.verdict else ())
                                          + list(reply.identity_memory_ids))),
            adapter_version=reply.adapter_version, base_model=reply.base_model, latency_ms=reply.latency_ms,
            asker_id=request.asker_id, channel_id=request.channel_id, guild_id=guild_id, trigger_message_id=request.trigger_message_id,
            message_ids=tuple(message_ids or ()), context_author_ids=(*request.context_author_ids, *([request.asker_id] if request.asker_id else [])),
            evidence=[e.as_json() for e in reply.evidence], verdict=reply.verdict.as_json() if reply.verdict else None,
        )

    def answer(self, request: ReplyRequest, on_sentences: Callable[[str], None] | None = None) -> tuple[Reply, int]:
        """Reply with whichever adapter is active now and log it, as `persona serve` and the
        dashboard's playground answer (the bot logs once Discord has the message ids)."""
        self.refresh_adapter()  # a promotion or rollback is served from the next request on (one indexed query)
        reply = self.reply(request, on_sentences)
        return reply, self.log(request, reply, guild_id=request.place.guild_id)


def conversation_key(request: ReplyRequest) -> str:
    """Whose conversation a prompt continues, for the engines' prefix reuse: a channel or
    DM by its id, else (an API caller, `persona chat`) the place and the asker."""
    if request.channel_id is not None:
        return f"channel:{request.channel_id}"
    return f"{request.place.kind}:{request.place.channel_id or ''}:{request.asker_id or ''}"


def _without_control_characters(request: ReplyRequest) -> ReplyRequest:
    """What people type can hold NUL and other control characters (a pasted binary, a
    terminal escape); PostgreSQL refuses NUL in text and jsonb, the model gains nothing."""
    if not CONTROL.search(request.text) and not any(CONTROL.search(line.content) for line in request.history):
        return request
    history = [replace(line, content=CONTROL.sub("", line.content)) for line in request.history]
    return replace(request, text=CONTROL.sub("", request.text), history=history)


def _at_most(asked: int | None, settings: GenerationSettings) -> int | None:
    """A request may ask for a shorter reply than the owner's PERSONA_REPLY_MAX_TOKENS, never a longer one."""
    return None if asked is None else min(asked, settings.max_new_tokens)


def _insistent(grounding: GroundingSettings) -> GroundingSettings:
    """Grounding for a second try after a failed check: the owner's sentence must come through."""
    return replace(grounding, boost=max(grounding.boost, 5.0), copy_weight=max(grounding.copy_weight, 0.8))


def _default_label(request: ReplyRequest) -> str:
    kind = {"guild": "guild_text"}.get(request.place.kind, request.place.kind)
    return place_label(kind, None, None, request.asker_name)


def _reply_scope(scopes: list[str] | None) -> str:
    """The scope a logged reply belongs to (so forgetting a place forgets its replies)."""
    if scopes is None:
        return "private"
    return scopes[0] if scopes else "private"

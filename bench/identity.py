"""Invented identity in chit-chat: how often a trained persona says who its owner is
without anything backing it, and how often that reaches the person with the identity
check (persona/runtime/identity.py) — the check off is the first generation itself.

A PERSONA_HOME with a trained adapter (`persona demo` makes one: `--home
.persona/demo`); chit-chat and "who are you" messages from a friend in a server, each
sampled `--samples` times with the owner's sampling settings through the real reply
pipeline (recall, grounding, the consistency check, then the identity check). Per reply:
the first generation's unbacked identity claims (what was sent before the check) and
the sent reply's; what the check did (regenerated, dropped, withheld); its added time.
One JSON line.

    python bench/identity.py --home .persona/demo [--samples 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

MESSAGES = ["hey what's up", "who are you?", "tell me about yourself", "how old are you lol", "where are you from?", "what's your name again?",
            "intro yourself for the new people", "hi!! i'm new here", "are you married?", "do you have any pets?", "what do you do for work?",
            "good morning everyone", "how's your family?", "what's new with you", "describe yourself in one line"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", required=True, type=Path, help="a PERSONA_HOME with a trained, active adapter (persona demo's)")
    parser.add_argument("--samples", type=int, default=5)
    args = parser.parse_args()
    os.environ["PERSONA_HOME"] = str(args.home.resolve())

    from persona.config import load_settings
    from persona.privacy.scopes import Place
    from persona.runtime import identity
    from persona.runtime.reply import ReplyEngine, ReplyRequest
    from persona.storage.store import open_store

    settings = load_settings()
    store = open_store(settings)
    engine = ReplyEngine.from_settings(settings, store)
    with store.connect() as conn:
        channel, guild, friend = conn.execute(
            "SELECT c.id, c.guild_id, m.author_id FROM messages m JOIN channels c ON c.id = m.channel_id JOIN people p ON p.id = m.author_id "
            "WHERE c.guild_id IS NOT NULL AND NOT p.is_owner GROUP BY 1, 2, 3 ORDER BY count(*) DESC LIMIT 1").fetchone()
    place = Place.guild(guild, channel)

    def unbacked(text: str, recalled: list) -> list[identity.Claim]:
        with store.connect() as conn:
            return identity.unbacked(conn, engine.embedder, text, recalled, names=engine.owner_names, facts=engine.owner_facts,
                                     asker_id=friend, place=place, owner_id=engine.owner_id)

    first_claims = sent_claims = replies = 0
    actions: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    check_ms: list[float] = []
    examples: list[dict[str, str]] = []
    for message in MESSAGES:
        for _ in range(args.samples):
            request = ReplyRequest(text=message, asker_id=friend, asker_name="friend", place=place, channel_id=channel)
            prepared = engine.prepare(request)
            draft = engine.generate(prepared)
            before = unbacked(draft.text, prepared.recalled)
            started = time.perf_counter()
            reply = engine.finish(prepared, draft)
            check_ms.append(reply.timings_ms.get("identity", (time.perf_counter() - started) * 1000))
            after = unbacked(reply.text, prepared.recalled) if reply.text != "…" else []
            replies += 1
            first_claims += bool(before)
            sent_claims += bool(after)
            actions[reply.identity] += 1
            kinds.update(c.kind for c in before)
            if before and len(examples) < 6:
                examples.append({"message": message, "generated": draft.text[:160], "sent": reply.text[:160], "action": reply.identity})
    print(json.dumps({
        "bench": "identity", "adapter": engine.generator.adapter_version, "base_model": engine.generator.spec.name, "replies": replies,
        "first_generation_with_unbacked_identity": first_claims, "sent_with_unbacked_identity": sent_claims,
        "claims_by_kind": dict(kinds), "actions": dict(actions),
        "identity_stage_ms_p50": round(statistics.median(check_ms), 1), "identity_stage_ms_max": round(max(check_ms), 1),
        "examples": examples,
    }, ensure_ascii=False))


if __name__ == "__main__":
    main()

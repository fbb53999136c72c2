"""The demo's history in German, Spanish and Portuguese (`persona demo --language de|es|pt`): imported,
scrubbed of the planted data (the demo's own and each country's national formats),
built into memory; the facts June stated are found for her questions in that language,
and questions about her that nothing answers get her "not sure" in that language —
through the real recall, grounding and reply pipeline (the model is a stand-in: what
these check happens before and around it)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from demo import sample
from ingest.dce import ingest_dce
from ingest.discord_package import ingest_discord_package
from persona import memory
from persona.config import Settings
from persona.memory.embeddings import Embedder
from persona.privacy.scopes import Place
from persona.runtime import unknowns
from persona.runtime.engines.base import Generated, GenerationSettings
from persona.runtime.grounding import GroundingSettings, find_evidence
from persona.runtime.model import BaseModelSpec
from persona.runtime.reply import ReplyEngine, ReplyRequest
from persona.storage.db import Database
from persona.storage.store import Store
from tests.helpers import FakeEngine, rows


class Continues(FakeEngine):
    """After a forced opening, adds nothing (the reply is the opening itself); otherwise says "ok"."""

    def generate(self, messages: Any, *, opening: str = "", **options: Any) -> Generated:
        return Generated("" if opening else "ok", 1)


@pytest.mark.parametrize("language", ["de", "es", "pt"])
def test_a_non_english_history_is_scrubbed_recalled_and_says_not_sure(language: str, database: Database, embedder: Embedder, tmp_path: Path,
                                                                      tiny_llama: BaseModelSpec) -> None:
    voice = sample.voice_of(language)
    history = sample.generate(7, language=language)
    package, dce = sample.write(tmp_path / "sample", history)
    store = Store(database)
    ingest_discord_package(store, package, owner_id=sample.OWNER.id)
    ingest_dce(store, [dce], owner_id=sample.OWNER.id)
    with store.connect() as conn:
        memory.build(conn, embedder)

    # Scrubbing: every planted value is gone, the country's own formats included.
    stored = "\n".join(r[0] for r in rows(store, "SELECT content FROM messages"))
    planted = sample.planted_of(voice)
    assert len(planted) == 9 and not [value for _, value, *_ in planted if value in stored]
    # Each message's language was detected in the build: the history's own language is the most frequent.
    counted = dict(rows(store, "SELECT language, count(*) FROM messages GROUP BY language"))
    assert max(counted, key=counted.get) == language, counted

    # Fact use: for June's own questions in that language, recall finds the memory with the fact (hit@5), and grounding
    # picks her sentence that states it. Measured: English 5/5 recalled, 4/5 as evidence; German 4/5 and 3/5; Spanish 4/5
    # and 2/5 — the bundled embedder (English MiniLM) scores other languages' sentences against the question less well.
    place, grounding = Place.terminal(), GroundingSettings.from_settings(Settings.model_construct())
    recalled_facts = stated_facts = 0
    with store.connect() as conn:
        for question, expected in voice.prompts:
            recalled = memory.recall(conn, embedder, question, asker_id=sample.OWNER.id, place=place, owner_id=sample.OWNER.id, k=5)
            evidence = find_evidence(conn, embedder, question, recalled, owner_id=sample.OWNER.id, settings=grounding)
            recalled_facts += any(expected in m.content for m in recalled)
            stated_facts += any(expected in e.text for e in evidence)
    assert recalled_facts >= 4 and stated_facts >= 2, f"{recalled_facts}/5 recalled, {stated_facts}/5 as evidence"

    # "Not sure": questions about June nothing in memory answers, asked in that language.
    model = Continues(tiny_llama, GenerationSettings(max_new_tokens=16, temperature=0.8, top_p=0.9, repetition_penalty=1.0))
    engine = ReplyEngine(store, embedder, model, owner_id=sample.OWNER.id, owner_name="June", say_unknown=True, consistency_policy="regenerate",
                         grounding=grounding)
    said = []
    for question in voice.unanswerable:
        assert unknowns.asks_about_owner(question), question
        reply = engine.reply(ReplyRequest(text=question, asker_id=sample.OWNER.id, asker_name="you", place=place))
        said.append(reply.text if reply.said_unknown else None)
    assert sum(s is not None for s in said) >= 9, said
    assert unknowns.OPENINGS[language] in [s for s in said if s]  # in her language, not English


def test_the_demo_refuses_a_language_it_has_no_history_in(persona_exe: Path, tmp_path: Path) -> None:
    refused = subprocess.run([str(persona_exe), "demo", "--language", "klingon", "--no-chat"], capture_output=True, text=True, timeout=120,
                             env={"PATH": "/usr/bin:/bin", "PERSONA_HOME": str(tmp_path)})
    said = " ".join(refused.stderr.replace("│", " ").split())  # typer's box wraps the line at 80 columns
    assert refused.returncode == 2 and "written in en, de, es, pt, not 'klingon'" in said and "Traceback" not in refused.stderr

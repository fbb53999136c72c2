"""Prometheus metrics of persona, one registry per process.

Two sources:
- this process's own figures: reply latency per stage (histograms), replies by outcome
  (sent, held for the owner, failed), whether its model answers and which adapter it
  serves (`watch_engine`);
- the database's, read at each scrape by `DatabaseCollector` through the owning modules'
  counts: drafts per status, training runs per kind and outcome, when a training run last
  succeeded, import runs per source and outcome, replies logged. These include what other
  processes did (the bot, `persona retrain`, an import from the command line), so any one
  process's `/metrics` — the dashboard's, say — tells the whole story.

Label values are fixed words, never a name, an id or message text. Served by
persona/observability.py (`/metrics`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

import psycopg
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from persona.errors import PersonaError

log = logging.getLogger(__name__)

REGISTRY = CollectorRegistry()
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)
GCCollector(registry=REGISTRY)

# The stages a reply's time is split into (ReplyEngine's stopwatch, then the bot's own).
STAGES = ("recall", "evidence", "prompt", "generate", "check", "repair", "identity", "queue_wait", "send", "first_text", "total")
IDENTITY_ACTIONS = ("regenerated", "dropped", "withheld")
OUTCOMES = ("sent", "held", "failed")

REPLY_SECONDS = Histogram(
    "persona_reply_stage_seconds", "Time of each stage of a reply (recall, evidence, prompt, generate, check, repair, identity; "
    "the bot adds queue_wait, send, first_text and total).", ["stage"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120), registry=REGISTRY)
REPLIES = Counter("persona_replies", "Replies this process made, by outcome: sent, held (a draft for the owner) or failed "
                  "(the model was too slow or away).", ["outcome"], registry=REGISTRY)
IDENTITY = Counter("persona_identity_repairs", "Replies whose identity claims (a name, age, home, work, relation) nothing backed, "
                   "by what became of them: regenerated, dropped (the clause cut) or withheld (nothing sent).", ["action"],
                   registry=REGISTRY)
MODEL_UP = Gauge("persona_model_loaded", "1 while this process's model answers (loaded in process, or its model server "
                 "reachable); 0 after a reply failed for want of it.", registry=REGISTRY)

for _stage in STAGES:  # every series exists from the start, so a dashboard shows 0 rather than nothing
    REPLY_SECONDS.labels(_stage)
for _outcome in OUTCOMES:
    REPLIES.labels(_outcome)
for _action in IDENTITY_ACTIONS:
    IDENTITY.labels(_action)


def observe_stages(timings_ms: Mapping[str, float]) -> None:
    """Add one reply's stage times (milliseconds, as ReplyEngine and the bot measure them)."""
    for stage, ms in timings_ms.items():
        if stage in STAGES:
            REPLY_SECONDS.labels(stage).observe(ms / 1000)


def count_reply(outcome: str) -> None:
    if outcome not in OUTCOMES:
        raise ValueError(f"reply outcome must be one of {OUTCOMES}")
    REPLIES.labels(outcome).inc()


def count_identity(action: str) -> None:
    if action not in IDENTITY_ACTIONS:
        raise ValueError(f"identity action must be one of {IDENTITY_ACTIONS}")
    IDENTITY.labels(action).inc()


def model_answers(up: bool) -> None:
    MODEL_UP.set(1 if up else 0)


def model_is_up() -> bool:
    return REGISTRY.get_sample_value("persona_model_loaded") == 1


class EngineCollector(Collector):
    """The adapter the process serves, read from its reply engine at each scrape."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine

    def collect(self) -> Iterable[Metric]:
        version = getattr(self.engine.generator, "adapter_version", None)
        yield GaugeMetricFamily("persona_adapter_version", "The adapter version this process serves (0: the base model).",
                                value=version or 0)


class DatabaseCollector(Collector):
    """What the database records, counted at each scrape (a few GROUP BYs over small tables)."""

    def __init__(self, store: Any) -> None:
        self.store = store

    def collect(self) -> Iterable[Metric]:
        from persona import adapters, drafts, replies
        from persona.history import runs

        try:
            with self.store.connect() as conn:
                by_status = drafts.counts(conn)
                trainings = adapters.run_outcomes(conn)
                trained_at = adapters.last_success_at(conn)
                imports = runs.import_outcomes(conn)
                logged = replies.counts(conn)["replies"]
        except (psycopg.Error, PersonaError) as exc:
            log.warning("metrics: the database did not answer: %s", exc)
            yield GaugeMetricFamily("persona_database_up", "1 when the database answered this scrape.", value=0)
            return
        yield GaugeMetricFamily("persona_database_up", "1 when the database answered this scrape.", value=1)
        drafted = GaugeMetricFamily("persona_drafts", "Drafts per status (pending ones wait for the owner).", labels=["status"])
        for status, count in by_status.items():
            drafted.add_metric([status], count)
        yield drafted
        trained = CounterMetricFamily("persona_training_runs", "Training runs per kind (train, retrain, feedback) and status.",
                                      labels=["kind", "status"])
        for (kind, status), count in sorted(trainings.items()):
            trained.add_metric([kind, status], count)
        yield trained
        yield GaugeMetricFamily("persona_last_training_success_timestamp_seconds",
                                "When a training run last succeeded (Unix time; 0: never).",
                                value=trained_at.timestamp() if trained_at else 0)
        imported = CounterMetricFamily("persona_import_runs", "Import runs per source and status.", labels=["source", "status"])
        for (source, status), count in sorted(imports.items()):
            imported.add_metric([source, status], count)
        yield imported
        yield GaugeMetricFamily("persona_replies_logged", "Replies in the reply log (all processes; forget removes some).",
                                value=logged)


_watched: dict[str, Collector] = {}


def _watch(kind: str, collector: Collector) -> None:
    """Register `collector` as this process's one collector of `kind` (a later call replaces it)."""
    if kind in _watched:
        REGISTRY.unregister(_watched[kind])
    REGISTRY.register(collector)
    _watched[kind] = collector


def watch_database(store: Any) -> None:
    _watch("database", DatabaseCollector(store))


def watch_engine(engine: Any) -> None:
    _watch("engine", EngineCollector(engine))


def exposition() -> bytes:
    """The registry in Prometheus's text format."""
    return generate_latest(REGISTRY)

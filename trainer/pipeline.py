"""One training run from data to a (maybe) promoted adapter: `persona train` and
`persona retrain` (which the scheduler and `/retrain` also call).

dataset → candidate version row → training process (trainer/job.py) → gate → promote.
One run at a time (a PostgreSQL advisory lock). A run that dies leaves its candidate
marked failed and the active adapter untouched; the next run resumes it from its last
checkpoint when its job file is still there.
"""

from __future__ import annotations

import json
import logging
import os
import random
import shutil
import subprocess
import sys
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from persona import adapters, memory
from persona.adapter_files import purge_pending
from persona.config import Settings
from persona.errors import PersonaError
from persona.history import messages as history
from persona.history.people import resolve_owner
from persona.runtime.engines.base import GenerationSettings
from persona.runtime.grounding import GroundingSettings
from persona.runtime.model import resolve_base_model
from persona.storage.store import Store
from trainer.dataset import Dataset, Example, Options, build_dataset
from trainer.estimate import estimate
from trainer.fact_probes import Probe, build_probes, write_probes
from trainer.feedback import collect as collect_feedback
from trainer.feedback import corrections_as_examples, write_kto_rows
from trainer.job import PARENT_PID_ENV, Job
from trainer.lessons import as_examples as lesson_examples
from trainer.lessons import as_kto_rows as lesson_kto_rows
from trainer.lessons import as_pairs, write_rows
from trainer.lessons import collect as collect_lessons
from trainer.promotion import evaluation_checks, gate
from trainer.sft import TrainOptions

log = logging.getLogger(__name__)

TRAIN_LOCK = int.from_bytes(b"persona\x01", "big", signed=True)


# Where the training process's output goes: False to stderr (live progress bars), True
# nowhere, a function: each chunk to it (the dashboard shows the last lines live).
Quiet = bool | Callable[[bytes], None]


@dataclass
class Outcome:
    status: str  # nothing_new | promoted | not_promoted
    reason: str
    version: int | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    report: str | None = None

    def line(self) -> str:
        if self.status == "nothing_new":
            return self.reason
        losses = self.metrics.get("heldout_loss", {})
        figures = ", ".join(f"{k} {v:.4f}" for k, v in losses.items() if v is not None)
        verdict = "promoted to active" if self.status == "promoted" else "kept as a candidate"
        return f"v{self.version} {verdict}: {self.reason} (held-out loss: {figures})"

    def as_json(self) -> dict[str, Any]:
        return asdict(self) | {"line": self.line()}


def prepared_dataset(conn: psycopg.Connection, settings: Settings, *, count_tokens: Any = None) -> Dataset:
    """The dataset as training sees it: built from the messages, then a share of the
    examples given the memories recall finds for them (trainer/recalled.py)."""
    dataset = build_dataset(conn, Options.from_settings(settings), count_tokens=count_tokens)
    if settings.train_memory_fraction <= 0 and settings.train_drill_fraction <= 0:
        return dataset
    from persona.memory.embeddings import Embedder
    from trainer.drills import add_drills
    from trainer.recalled import add_recalled_memories

    embedder = Embedder(memory.chosen_model(conn, settings.embed_model))  # loads only if there are memories to search
    if settings.train_memory_fraction > 0:
        dataset.stats["with_recalled_memories"] = add_recalled_memories(
            conn, embedder, dataset.train + dataset.heldout, fraction=settings.train_memory_fraction, max_seq_len=settings.max_seq_len)
    drills = add_drills(conn, embedder, dataset.train, dataset.heldout, fraction=settings.train_drill_fraction)
    if drills:
        dataset.train.extend(drills)
        random.Random(len(dataset.train)).shuffle(dataset.train)
        dataset.stats["recall_drills"] = len(drills)
    return dataset


def run(store: Store, settings: Settings, *, incremental: bool, trigger: str = "cli", processes: int = 1,
        eval_samples: int | None = None, eval_max_new_tokens: int = 40, quiet: Quiet = False, **overrides: Any) -> Outcome:
    """Train (from scratch, or incrementally from the active adapter), evaluate, gate."""
    with store.connect(autocommit=True) as lock_conn:
        if not lock_conn.execute("SELECT pg_try_advisory_lock(%s)", (TRAIN_LOCK,)).fetchone()[0]:
            raise PersonaError("a training run is already in progress; wait for it to finish (`persona adapters` shows the versions)")
        try:
            with store.connect() as conn:
                return _run_locked(conn, settings, incremental, trigger, processes,
                                   settings.eval_contexts if eval_samples is None else eval_samples, eval_max_new_tokens, quiet, overrides)
        finally:
            lock_conn.execute("SELECT pg_advisory_unlock(%s)", (TRAIN_LOCK,))


def _run_locked(conn: psycopg.Connection, settings: Settings, incremental: bool, trigger: str, processes: int,
                eval_samples: int, eval_max_new_tokens: int, quiet: Quiet, overrides: dict[str, Any]) -> Outcome:
    """Under the training lock: resume an interrupted run, or decide what the new one trains
    on (everything, or what is new since the active adapter), record it and start it.
    Longer than most functions on purpose: each decision reads the one before it, and
    split up they would pass eight values back and forth (issue 29 reworks the recipe)."""
    resumable = _stale_runs(conn)
    purge_pending(conn, settings.datasets_dir)  # a forget that could not clean files while a run trained
    spec = resolve_base_model(settings.base_model, settings.models_dir)
    if resumable is not None:
        run_id, version_id, job_path = resumable
        log.info("resuming the interrupted run %d (v%d) from its last checkpoint", run_id, version_id)
        adapters.resume_run(conn, run_id)
        conn.commit()
        return _execute(conn, settings, run_id, version_id, Job.read(job_path), job_path, processes, quiet)

    adapters.replace_tainted_active(conn)  # a forget deferred its rollback (`--no-retrain`, the bot): do it first
    conn.commit()
    current = adapters.active(conn)
    tainted = current if current is not None and current.tainted else None
    if tainted is not None:
        log.info("the active adapter %s was trained on forgotten data and no clean version exists: training a new one from scratch",
                 tainted.label)
        current = None
    if current is not None and current.base_model != spec.name:
        log.warning("the active adapter %s was trained on %s; training a new one on %s from scratch", current.label, current.base_model, spec.name)
        current = None
    data_watermark = history.max_seq(conn)
    dataset = prepared_dataset(conn, settings)
    owner = resolve_owner(conn, settings.owner_id)
    trusted = sorted({*([owner.id] if owner else []), *settings.trusted_users})
    after = current.feedback_watermark if (incremental and current) else 0
    feedback = collect_feedback(conn, trusted, after)
    feedback_watermark = max([after, *(f["id"] for f in feedback)])
    after_decision = current.draft_watermark if (incremental and current) else 0
    decided = collect_lessons(conn, after_decision, allow_api_content=settings.train_on_api_content)
    draft_watermark = max([after_decision, *(lesson.seq for lesson in decided)])

    if incremental and current is not None:
        train_examples = _incremental_examples(dataset, current, feedback, settings.replay_ratio, decided)
        if train_examples is None:
            return Outcome("nothing_new", f"nothing new since {current.label}: no new messages after #{current.data_watermark}, no new ratings "
                                          "or decisions on drafts")
        init_adapter: str | None = current.path
    else:
        if incremental:
            log.info("no active adapter yet: training one on everything")
        train_examples = dataset.train + corrections_as_examples(feedback) + lesson_examples(decided)
        init_adapter = None
    if not train_examples:
        raise PersonaError("there is nothing to train on: import your history first (`persona ingest discord-package ...`)")
    if not dataset.heldout:
        raise PersonaError("no held-out examples (each channel needs at least 2 conversations): import more history")

    options = TrainOptions.from_settings(settings, **overrides)
    log.info("%s", estimate(len(train_examples), options, adapters.versions(conn), spec.name, processes)
             .line(len(train_examples), options.epochs if options.max_steps <= 0 else 0))
    version_id = adapters.create_candidate(
        conn, base_model=spec.name, parent_id=current.id if init_adapter and current else None, hyperparams=options.to_json(),
        data_watermark=data_watermark, feedback_watermark=feedback_watermark,
    )
    folder = settings.adapters_dir / f"v{version_id}"
    adapters.set_path(conn, version_id, str(folder / "adapter"))
    probes = fact_probes(conn, settings, dataset.train)
    adapters.record_data(conn, version_id, trained_message_ids=[i for e in train_examples for i in e.message_ids],
                         heldout_message_ids=[i for e in dataset.heldout for i in e.message_ids] + [i for p in probes for i in p.message_ids],
                         feedback_ids=[f["id"] for f in feedback], draft_ids=[lesson.draft_id for lesson in decided],
                         draft_watermark=draft_watermark)
    Dataset(train_examples, dataset.heldout, dataset.stats).write(folder / "data")
    probes_file = str(write_probes(folder / "data" / "probes.jsonl", probes)) if probes else None
    kto_rows = [f for f in feedback if not f.get("correction")] + lesson_kto_rows(decided)
    pairs = as_pairs(decided, feedback)
    job = Job(
        base_model={"name": spec.name, "path": spec.path, "gguf_file": spec.gguf_file},
        train_file=str(folder / "data" / "train.jsonl"), heldout_file=str(folder / "data" / "heldout.jsonl"),
        output_dir=str(folder), options=options.to_json(), init_adapter=init_adapter,
        compare_adapter=current.path if current else None,
        feedback_file=str(write_kto_rows(folder / "data" / "kto.jsonl", kto_rows)) if kto_rows else None,
        preference_file=str(write_rows(folder / "data" / "pairs.jsonl", pairs)) if pairs else None,
        eval_samples=eval_samples, generation=_eval_generation(settings, eval_max_new_tokens),
        embed_model=memory.chosen_model(conn, settings.embed_model).setting,
        probes_file=probes_file, grounding=asdict(GroundingSettings.from_settings(settings)),
    )
    job_path = job.write(folder / "job.json")
    run_id = adapters.start_run(conn, kind="retrain" if incremental else "train", trigger=trigger, version_id=version_id,
                                params={"job": str(job_path), "dataset": dataset.stats})
    conn.commit()
    return _execute(conn, settings, run_id, version_id, job, job_path, processes, quiet)


def _incremental_examples(dataset: Dataset, current: adapters.AdapterVersion, feedback: list[dict[str, Any]],
                          replay_ratio: float, decided: list[Any]) -> list[Example] | None:
    """What is new since `current` (messages, ratings, decisions on drafts) plus replayed
    older examples; None if nothing is new."""
    new = [e for e in dataset.train if e.max_seq > current.data_watermark]
    if not new and not feedback and not decided:
        return None
    old = [e for e in dataset.train if e.max_seq <= current.data_watermark]
    replay = random.Random(len(new)).sample(old, min(len(old), int(len(new) * replay_ratio)))
    log.info("incremental: %d new examples, %d replayed, %d ratings", len(new), len(replay), len(feedback))
    return new + replay + corrections_as_examples(feedback) + lesson_examples(decided)


def _stale_runs(conn: psycopg.Connection) -> tuple[int, int, Path] | None:
    """Runs left 'running' by a process that died (we hold the lock, so none is alive).
    The newest is resumed if its job file exists; the rest are marked failed."""
    resumable = None
    for run in adapters.running_runs(conn):
        version = adapters.get(conn, run.adapter_version_id) if run.adapter_version_id else None
        if resumable is None and version and not version.tainted and run.job_path and Path(run.job_path).exists():
            resumable = (run.id, version.id, Path(run.job_path))
            continue
        reason = "interrupted, then its data was forgotten" if version and version.tainted else "interrupted"
        adapters.fail_run(conn, run.id, reason)
        if version:
            adapters.mark_failed(conn, version.id, reason)
    conn.commit()
    return resumable


def _execute(conn: psycopg.Connection, settings: Settings, run_id: int, version_id: int, job: Job, job_path: Path,
             processes: int, quiet: Quiet) -> Outcome:
    code, tail = _launch(job_path, processes, quiet)
    result_file = Path(job.output_dir) / "result.json"
    if code != 0 or not result_file.exists():
        reason = f"training process exited with {code}: {tail or 'no output'}"
        adapters.fail_run(conn, run_id, reason)
        adapters.mark_failed(conn, version_id, reason)
        conn.commit()
        current = adapters.active(conn)
        kept = f"the active adapter {current.label} is unchanged" if current else "no adapter is active"
        raise PersonaError(f"{reason} ({kept}); see {job.output_dir}")
    result = json.loads(result_file.read_text())
    metrics = result["metrics"] | {"train": result["train"], "kto": result.get("kto") or {}, "dpo": result.get("dpo") or {}}
    adapters.record_metrics(conn, version_id, without_samples(metrics))
    losses = metrics["heldout_loss"]
    if job.compare_adapter:
        promote, reason = gate(losses.get("candidate"), losses.get("active"), settings.promotion_margin, "active")
    else:
        promote, reason = gate(losses.get("candidate"), losses.get("base"), settings.promotion_margin, "base model")
    passed, failed = evaluation_checks(metrics, likeness=settings.promote_on_likeness, fact_use=settings.promote_on_fact_use)
    if promote and not passed:
        promote, reason = False, f"{reason}, but {failed}"
    _remove_checkpoints(Path(job.output_dir))
    conn.commit()
    candidate = adapters.get(conn, version_id)
    if candidate is not None and candidate.tainted:  # its data was forgotten while it trained
        promote, reason = False, f"not promoted: {candidate.tainted_reason} while it trained"
    if promote:
        adapters.activate(conn, version_id, reason=reason)
    else:
        adapters.set_reason(conn, version_id, reason)
        retired = adapters.retire_tainted_active(conn)
        if retired is not None:
            reason += f"; {retired.label} (trained on forgotten data) retired, the base model answers until an adapter passes"
    adapters.finish_run(conn, run_id, {"heldout_loss": losses, "promoted": promote})
    conn.commit()
    purge_pending(conn, settings.datasets_dir)  # the weights of a tainted adapter that stopped serving
    return Outcome("promoted" if promote else "not_promoted", reason, version_id, metrics, result.get("report"))


def _remove_checkpoints(folder: Path) -> None:
    """Checkpoints only resume an interrupted run; a finished one never needs them (and they
    hold optimizer state for every trained weight)."""
    shutil.rmtree(folder / "checkpoints", ignore_errors=True)


def _launch(job_path: Path, processes: int, quiet: Quiet) -> tuple[int, str]:
    """Run the training process, echoing its output; (exit code, its last line)."""
    if processes > 1:
        command = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", str(processes), "--num_machines", "1",
                   "--mixed_precision", "no", "--dynamo_backend", "no"]
        import torch

        if not torch.cuda.is_available():
            command.append("--cpu")
        command += ["-m", "trainer.job", str(job_path)]
    else:
        command = [sys.executable, "-m", "trainer.job", str(job_path)]
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "PYTHONUNBUFFERED": "1", PARENT_PID_ENV: str(os.getpid())}
    tail: deque[bytes] = deque(maxlen=64)
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env) as child:
        assert child.stdout is not None
        # Forward raw chunks, not lines: progress bars redraw with \r and must show live.
        while chunk := os.read(child.stdout.fileno(), 4096):
            tail.append(chunk)
            if callable(quiet):
                quiet(chunk)
            elif not quiet:
                sys.stderr.buffer.write(chunk)
                sys.stderr.flush()
    lines = [ln.strip() for ln in b"".join(tail).decode("utf-8", "replace").replace("\r", "\n").splitlines() if ln.strip()]
    errors = [ln for ln in lines if "Error" in ln or "error:" in ln]
    return child.returncode, (errors[-1] if errors else (lines[-1] if lines else ""))[:300]



def evaluate_version(store: Store, settings: Settings, version_id: int | None, *, eval_samples: int | None = None,
                     eval_max_new_tokens: int = 40, quiet: bool = False) -> tuple[int, dict[str, Any], Path]:
    """Re-evaluate an adapter version (default: the active one) against the base model on
    today's held-out split; the report goes next to the adapter."""
    with store.connect() as conn:
        version = adapters.get(conn, version_id) if version_id is not None else adapters.active(conn)
        if version is None:
            raise PersonaError(f"there is no adapter {'v' + str(version_id) if version_id else 'active'}: see `persona adapters`")
        if version.status == "failed" or not Path(version.path).exists():
            raise PersonaError(f"{version.label} has no usable adapter files ({version.status}: {version.status_reason or version.path})")
        dataset = prepared_dataset(conn, settings)
        folder = Path(version.path).parent / "eval"
        probes = fact_probes(conn, settings, dataset.train)
        # Its samples and fact-probe answers quote these: a forget of any rewrites the files.
        adapters.add_heldout(conn, version.id, [i for e in dataset.heldout for i in e.message_ids] + [i for p in probes for i in p.message_ids])
        embed_model = memory.chosen_model(conn, settings.embed_model).setting  # the model memory is embedded with
        conn.commit()
    spec = resolve_base_model(settings.base_model, settings.models_dir)
    probes_file = str(write_probes(folder / "data" / "probes.jsonl", probes)) if probes else None
    Dataset(dataset.train, dataset.heldout, dataset.stats).write(folder / "data")  # the training split fits the owner-likeness classifier
    job = Job(
        base_model={"name": spec.name, "path": spec.path, "gguf_file": spec.gguf_file}, train_file=str(folder / "data" / "train.jsonl"),
        heldout_file=str(folder / "data" / "heldout.jsonl"), output_dir=str(folder), options=TrainOptions.from_settings(settings).to_json(),
        init_adapter=version.path, eval_samples=settings.eval_contexts if eval_samples is None else eval_samples,
        generation=_eval_generation(settings, eval_max_new_tokens),
        embed_model=embed_model, probes_file=probes_file, grounding=asdict(GroundingSettings.from_settings(settings)),
        eval_only=True,
    )
    code, tail = _launch(job.write(folder / "job.json"), 1, quiet)
    shutil.rmtree(folder / "data", ignore_errors=True)  # the evaluation's input, not needed once it ran
    if code != 0 or not (folder / "eval.json").exists():
        raise PersonaError(f"evaluation process exited with {code}: {tail or 'no output'}")
    return version.id, json.loads((folder / "eval.json").read_text()), folder / "report.md"


def fact_probes(conn: psycopg.Connection, settings: Settings, train: list[Example]) -> list[Probe]:
    """The evaluation's fact probes (trainer/fact_probes.py); none when the history has no
    answered questions, no memory is built, or PERSONA_EVAL_FACT_PROBES=0."""
    if settings.eval_fact_probes <= 0 or memory.stored_model(conn) is None:
        return []
    from persona.memory.embeddings import Embedder

    owner = resolve_owner(conn, settings.owner_id, settings.owner_name)
    return build_probes(conn, Embedder(memory.chosen_model(conn, settings.embed_model)), train,
                        owner_id=owner.id if owner else None, owner_name=(owner.name if owner else "") or "me",
                        grounding=GroundingSettings.from_settings(settings), limit=settings.eval_fact_probes)


def without_samples(metrics: dict[str, Any]) -> dict[str, Any]:
    """Metrics as the database keeps them: no quoted words (evaluation samples, fact-probe answers)."""
    kept = {k: v for k, v in metrics.items() if k != "samples"}
    if isinstance(kept.get("fact_use"), dict):
        kept["fact_use"] = {k: v for k, v in kept["fact_use"].items() if k != "samples"}
    return kept


def _eval_generation(settings: Settings, max_new_tokens: int) -> dict[str, Any]:
    """The bot's own generation settings, with a shorter reply cap (evaluation samples many)."""
    return GenerationSettings.from_settings(settings, max_new_tokens=min(max_new_tokens, settings.reply_max_tokens)).to_json()

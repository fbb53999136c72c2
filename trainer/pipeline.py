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
import subprocess
import sys
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from persona.config import Settings
from persona.errors import PersonaError
from persona.model import resolve_base_model
from persona.people import stored_owner
from persona.store import Store
from trainer import registry
from trainer.dataset import Dataset, Options, build_dataset
from trainer.feedback import collect as collect_feedback
from trainer.feedback import corrections_as_examples, write_kto_rows
from trainer.job import Job
from trainer.sft import TrainOptions

log = logging.getLogger(__name__)

TRAIN_LOCK = int.from_bytes(b"persona\x01", "big", signed=True)


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


def train_options(settings: Settings, **overrides: Any) -> TrainOptions:
    options = TrainOptions(
        lora_rank=settings.lora_rank, lora_alpha=settings.lora_alpha, lora_dropout=settings.lora_dropout,
        lora_targets=settings.lora_targets, learning_rate=settings.learning_rate, epochs=settings.train_epochs,
        batch_size=settings.batch_size, grad_accumulation=settings.grad_accumulation, max_seq_len=settings.max_seq_len,
        load_in_4bit=settings.load_in_4bit,
    )
    for key, value in overrides.items():
        if value is not None:
            setattr(options, key, value)
    return options


def dataset_options(settings: Settings) -> Options:
    return Options(
        owner_name=settings.owner_name, style_notes=settings.style_notes, heldout_fraction=settings.heldout_fraction,
        max_per_channel=settings.max_examples_per_channel, max_per_source=settings.max_examples_per_source,
        allow_api_content=settings.train_on_api_content,
    )


def prepared_dataset(conn: psycopg.Connection, settings: Settings, *, count_tokens: Any = None) -> Dataset:
    """The dataset as training sees it: built from the messages, then a share of the
    examples given the memories recall finds for them (trainer/recalled.py)."""
    dataset = build_dataset(conn, dataset_options(settings), count_tokens=count_tokens)
    if settings.train_memory_fraction > 0:
        from persona.embeddings import Embedder, resolve_embed_model
        from trainer.recalled import add_recalled_memories

        embedder = Embedder(resolve_embed_model(settings.embed_model))  # loads only if there are memories to search
        dataset.stats["with_recalled_memories"] = add_recalled_memories(
            conn, embedder, dataset.train + dataset.heldout, fraction=settings.train_memory_fraction, max_seq_len=settings.max_seq_len)
    return dataset


def run(store: Store, settings: Settings, *, incremental: bool, trigger: str = "cli", processes: int = 1,
        eval_samples: int = 8, eval_max_new_tokens: int = 40, quiet: bool = False, **overrides: Any) -> Outcome:
    """Train (from scratch, or incrementally from the active adapter), evaluate, gate."""
    with store.connect(autocommit=True) as lock_conn:
        if not lock_conn.execute("SELECT pg_try_advisory_lock(%s)", (TRAIN_LOCK,)).fetchone()[0]:
            raise PersonaError("a training run is already in progress; wait for it to finish (`persona adapters` shows the versions)")
        try:
            with store.connect() as conn:
                return _run_locked(conn, settings, incremental, trigger, processes, eval_samples, eval_max_new_tokens, quiet, overrides)
        finally:
            lock_conn.execute("SELECT pg_advisory_unlock(%s)", (TRAIN_LOCK,))


def _run_locked(conn: psycopg.Connection, settings: Settings, incremental: bool, trigger: str, processes: int,
                eval_samples: int, eval_max_new_tokens: int, quiet: bool, overrides: dict[str, Any]) -> Outcome:
    resumable = _stale_runs(conn)
    spec = resolve_base_model(settings.base_model)
    if resumable is not None:
        run_id, version_id, job_path = resumable
        log.info("resuming the interrupted run %d (v%d) from its last checkpoint", run_id, version_id)
        conn.execute("UPDATE training_runs SET status = 'running', error = NULL WHERE id = %s", (run_id,))
        conn.commit()
        return _execute(conn, settings, run_id, version_id, Job.read(job_path), job_path, processes, quiet)

    current = registry.active(conn)
    if current is not None and current.base_model != spec.name:
        log.warning("the active adapter %s was trained on %s; training a new one on %s from scratch", current.label, current.base_model, spec.name)
        current = None
    data_watermark = int(conn.execute("SELECT coalesce(max(seq), 0) FROM messages").fetchone()[0])
    dataset = prepared_dataset(conn, settings)
    trusted = [settings.owner_id] if settings.owner_id else []
    owner = stored_owner(conn)
    trusted = sorted({*trusted, *([owner.id] if owner else []), *settings.trusted_user_ids})
    after = current.feedback_watermark if (incremental and current) else 0
    feedback = collect_feedback(conn, trusted, after)
    feedback_watermark = max([after, *(f["id"] for f in feedback)])

    if incremental and current is not None:
        new = [e for e in dataset.train if e.max_seq > current.data_watermark]
        if not new and not feedback:
            return Outcome("nothing_new", f"nothing new since {current.label}: no new messages after #{current.data_watermark}, no new ratings")
        old = [e for e in dataset.train if e.max_seq <= current.data_watermark]
        replay = random.Random(len(new)).sample(old, min(len(old), int(len(new) * settings.replay_ratio)))
        train_examples = new + replay + corrections_as_examples(feedback)
        init_adapter = current.path
        log.info("incremental: %d new examples, %d replayed, %d ratings", len(new), len(replay), len(feedback))
    else:
        if incremental:
            log.info("no active adapter yet: training one on everything")
        train_examples = dataset.train + corrections_as_examples(feedback)
        init_adapter = None
    if not train_examples:
        raise PersonaError("there is nothing to train on: import your history first (`persona ingest discord-package ...`)")
    if not dataset.heldout:
        raise PersonaError("no held-out examples (each channel needs at least 2 conversations): import more history")

    options = train_options(settings, **overrides)
    version_id = registry.create_candidate(
        conn, base_model=spec.name, parent_id=current.id if current else None, hyperparams=options.to_json(),
        data_watermark=data_watermark, feedback_watermark=feedback_watermark,
    )
    folder = settings.adapters_dir / f"v{version_id}"
    registry.set_path(conn, version_id, str(folder / "adapter"))
    Dataset(train_examples, dataset.heldout, dataset.stats).write(folder / "data")
    kto_rows = [f for f in feedback if not f.get("correction")]
    job = Job(
        base_model={"name": spec.name, "path": spec.path, "gguf_file": spec.gguf_file},
        train_file=str(folder / "data" / "train.jsonl"), heldout_file=str(folder / "data" / "heldout.jsonl"),
        output_dir=str(folder), options=options.to_json(), init_adapter=init_adapter,
        compare_adapter=current.path if current else None,
        feedback_file=str(write_kto_rows(folder / "data" / "kto.jsonl", kto_rows)) if kto_rows else None,
        eval_samples=eval_samples, eval_max_new_tokens=eval_max_new_tokens, embed_model=settings.embed_model,
    )
    job_path = job.write(folder / "job.json")
    run_id = int(conn.execute(
        "INSERT INTO training_runs (kind, trigger, adapter_version_id, params) VALUES (%s, %s, %s, %s) RETURNING id",
        ("retrain" if incremental else "train", trigger, version_id, json.dumps({"job": str(job_path), "dataset": dataset.stats})),
    ).fetchone()[0])
    conn.commit()
    return _execute(conn, settings, run_id, version_id, job, job_path, processes, quiet)


def _stale_runs(conn: psycopg.Connection) -> tuple[int, int, Path] | None:
    """Runs left 'running' by a process that died (we hold the lock, so none is alive).
    The newest is resumed if its job file exists; the rest are marked failed."""
    rows = conn.execute(
        "SELECT id, adapter_version_id, params->>'job' FROM training_runs WHERE status = 'running' ORDER BY id DESC"
    ).fetchall()
    resumable = None
    for run_id, version_id, job in rows:
        if resumable is None and version_id and job and Path(job).exists():
            resumable = (run_id, version_id, Path(job))
            continue
        conn.execute("UPDATE training_runs SET status = 'failed', finished_at = now(), error = 'interrupted' WHERE id = %s", (run_id,))
        if version_id:
            registry.mark_failed(conn, version_id, "interrupted")
    conn.commit()
    return resumable


def _execute(conn: psycopg.Connection, settings: Settings, run_id: int, version_id: int, job: Job, job_path: Path,
             processes: int, quiet: bool) -> Outcome:
    code, tail = _launch(job_path, processes, quiet)
    result_file = Path(job.output_dir) / "result.json"
    if code != 0 or not result_file.exists():
        reason = f"training process exited with {code}: {tail or 'no output'}"
        conn.execute("UPDATE training_runs SET status = 'failed', finished_at = now(), error = %s WHERE id = %s", (reason, run_id))
        registry.mark_failed(conn, version_id, reason)
        conn.commit()
        current = registry.active(conn)
        kept = f"the active adapter {current.label} is unchanged" if current else "no adapter is active"
        raise PersonaError(f"{reason} ({kept}); see {job.output_dir}")
    result = json.loads(result_file.read_text())
    metrics = result["metrics"] | {"train": result["train"], "kto": result.get("kto") or {}}
    registry.record_metrics(conn, version_id, {k: v for k, v in metrics.items() if k != "samples"})
    losses = metrics["heldout_loss"]
    if job.compare_adapter:
        promote, reason = registry.gate(losses.get("candidate"), losses.get("active"), settings.promotion_margin, "active")
    else:
        promote, reason = registry.gate(losses.get("candidate"), losses.get("base"), settings.promotion_margin, "base model")
    conn.commit()
    if promote:
        registry.activate(conn, version_id, reason=reason)
    else:
        conn.execute("UPDATE adapter_versions SET status_reason = %s WHERE id = %s", (reason, version_id))
    conn.execute(
        "UPDATE training_runs SET status = 'succeeded', finished_at = now(), metrics = %s WHERE id = %s",
        (json.dumps({"heldout_loss": losses, "promoted": promote}), run_id),
    )
    conn.commit()
    return Outcome("promoted" if promote else "not_promoted", reason, version_id, metrics, result.get("report"))


def _launch(job_path: Path, processes: int, quiet: bool) -> tuple[int, str]:
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
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "PYTHONUNBUFFERED": "1"}
    tail: deque[bytes] = deque(maxlen=64)
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env) as child:
        assert child.stdout is not None
        # Forward raw chunks, not lines: progress bars redraw with \r and must show live.
        while chunk := os.read(child.stdout.fileno(), 4096):
            tail.append(chunk)
            if not quiet:
                sys.stderr.buffer.write(chunk)
                sys.stderr.flush()
    lines = [ln.strip() for ln in b"".join(tail).decode("utf-8", "replace").replace("\r", "\n").splitlines() if ln.strip()]
    errors = [ln for ln in lines if "Error" in ln or "error:" in ln]
    return child.returncode, (errors[-1] if errors else (lines[-1] if lines else ""))[:300]



def evaluate_version(store: Store, settings: Settings, version_id: int | None, *, eval_samples: int = 8,
                     eval_max_new_tokens: int = 40, quiet: bool = False) -> tuple[int, dict[str, Any], Path]:
    """Re-evaluate an adapter version (default: the active one) against the base model on
    today's held-out split; the report goes next to the adapter."""
    with store.connect() as conn:
        version = registry.get(conn, version_id) if version_id is not None else registry.active(conn)
        if version is None:
            raise PersonaError(f"there is no adapter {'v' + str(version_id) if version_id else 'active'}: see `persona adapters`")
        if version.status == "failed" or not Path(version.path).exists():
            raise PersonaError(f"{version.label} has no usable adapter files ({version.status}: {version.status_reason or version.path})")
        dataset = prepared_dataset(conn, settings)
    spec = resolve_base_model(settings.base_model)
    folder = Path(version.path).parent / "eval"
    Dataset([], dataset.heldout, dataset.stats).write(folder / "data")
    job = Job(
        base_model={"name": spec.name, "path": spec.path, "gguf_file": spec.gguf_file}, train_file=str(folder / "data" / "train.jsonl"),
        heldout_file=str(folder / "data" / "heldout.jsonl"), output_dir=str(folder), options=train_options(settings).to_json(),
        init_adapter=version.path, eval_samples=eval_samples, eval_max_new_tokens=eval_max_new_tokens, embed_model=settings.embed_model,
        eval_only=True,
    )
    code, tail = _launch(job.write(folder / "job.json"), 1, quiet)
    if code != 0 or not (folder / "eval.json").exists():
        raise PersonaError(f"evaluation process exited with {code}: {tail or 'no output'}")
    return version.id, json.loads((folder / "eval.json").read_text()), folder / "report.md"

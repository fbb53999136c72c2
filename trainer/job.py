"""The training process: `python -m trainer.job JOB.json` (or under `accelerate launch`).

It reads a job file written by trainer/pipeline.py, trains (SFT, then KTO on rated
replies and on drafts sent or discarded, then DPO on edited drafts and corrections, each
if there are any), evaluates base vs candidate (vs the active adapter) on the held-out
split, writes `result.json` and the report next to the adapter, and touches no
database: the bot's process never hosts training, and a crash here leaves the active
adapter and the database as they were.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from trainer.likeness import EVAL_CONTEXTS

log = logging.getLogger(__name__)


@dataclass
class Job:
    base_model: dict[str, Any]
    train_file: str
    heldout_file: str
    output_dir: str
    options: dict[str, Any]
    init_adapter: str | None = None
    compare_adapter: str | None = None  # the active adapter, evaluated on the same data for the gate
    feedback_file: str | None = None  # KTO examples (rated replies, drafts sent unchanged or discarded)
    preference_file: str | None = None  # DPO pairs (edited drafts, corrections: trainer/lessons.py)
    eval_samples: int = EVAL_CONTEXTS
    generation: dict[str, Any] = field(default_factory=dict)  # GenerationSettings of the bot, for evaluation samples
    embed_model: str = ""
    eval_only: bool = False  # evaluate `init_adapter` as it is (persona eval)
    probes_file: str | None = None  # fact probes (trainer/fact_probes.py)
    grounding: dict[str, Any] = field(default_factory=dict)  # GroundingSettings of the bot, for the fact probes

    def write(self, path: Path) -> Path:
        path.write_text(json.dumps(asdict(self), indent=2))
        return path

    @classmethod
    def read(cls, path: Path) -> Job:
        data = json.loads(path.read_text())
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})  # a job file from an older version still resumes


@dataclass
class JobResult:
    adapter_dir: str
    train: dict[str, Any]
    metrics: dict[str, Any]
    report: str
    kto: dict[str, Any] = field(default_factory=dict)
    dpo: dict[str, Any] = field(default_factory=dict)


def run(job: Job) -> JobResult | None:
    from persona.runtime.engines.base import GenerationSettings
    from persona.runtime.grounding import GroundingSettings
    from persona.runtime.model import BaseModelSpec
    from trainer.dataset import read_examples
    from trainer.evaluate import evaluate
    from trainer.fact_probes import read_probes
    from trainer.sft import TrainOptions, train

    spec = BaseModelSpec(**job.base_model)
    options = TrainOptions(**job.options)
    output = Path(job.output_dir)
    heldout = read_examples(Path(job.heldout_file))
    generation = GenerationSettings(**job.generation) if job.generation else None
    probes = read_probes(job.probes_file)
    grounding = GroundingSettings(**job.grounding) if job.grounding else None
    if job.eval_only:
        assert job.init_adapter is not None
        train_file = Path(job.train_file) if job.train_file else None
        metrics = evaluate(spec, job.init_adapter, heldout, options, compare_adapter=job.compare_adapter, samples=job.eval_samples,
                           generation=generation, embed_model=job.embed_model, report_dir=output,
                           train=read_examples(train_file) if train_file and train_file.exists() else None, probes=probes, grounding=grounding)
        (output / "eval.json").write_text(json.dumps(metrics, indent=2))
        return None
    train_examples = read_examples(Path(job.train_file))
    result = train(spec, [e.messages for e in train_examples], [e.messages for e in heldout], output, options, init_adapter=job.init_adapter)
    kto: dict[str, Any] = {}
    if job.feedback_file and Path(job.feedback_file).exists():
        from trainer.feedback import read_kto_rows, train_kto

        rows = read_kto_rows(Path(job.feedback_file))
        if rows:
            kto = train_kto(spec, result.adapter_dir, rows, options)
    dpo: dict[str, Any] = {}
    if job.preference_file and Path(job.preference_file).exists():
        from trainer.lessons import read_rows, train_dpo

        pairs = read_rows(Path(job.preference_file))
        if pairs:
            dpo = train_dpo(spec, result.adapter_dir, pairs, options)
    if not _is_main():
        return None
    metrics = evaluate(
        spec, result.adapter_dir, heldout, options, compare_adapter=job.compare_adapter, samples=job.eval_samples,
        generation=generation, embed_model=job.embed_model, report_dir=output,
        log_history=result.log_history, train=train_examples, probes=probes, grounding=grounding,
    )
    train_summary = {k: v for k, v in asdict(result).items() if k != "log_history"}
    outcome = JobResult(result.adapter_dir, train_summary, metrics, str(output / "report.md"), kto, dpo)
    (output / "result.json").write_text(json.dumps(asdict(outcome), indent=2))
    return outcome


def _is_main() -> bool:
    """The process that evaluates and writes the result (rank 0 under `accelerate launch`)."""
    from accelerate import PartialState

    return PartialState().is_main_process


PARENT_PID_ENV = "PERSONA_PARENT_PID"  # set by trainer/pipeline.py: the process that waits for this one


def _die_with_parent(parent: str | None, every_s: float = 1.0) -> None:
    """Training for a process that is gone helps nobody (and holds gigabytes): a daemon
    thread ends this one when the persona process that started it disappears. Polling
    the pid works for a plain child and for `accelerate launch` workers alike."""
    if not parent or not parent.isdigit():
        return
    import threading

    import psutil

    pid = int(parent)

    def alive() -> bool:
        try:
            return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:  # also when it ends between two checks
            return False

    def watch() -> None:
        while alive():
            time.sleep(every_s)
        log.error("the persona process %d that started this training is gone; stopping", pid)
        os._exit(3)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    if len(args) != 1:
        print("usage: python -m trainer.job JOB.json", file=sys.stderr)
        return 2
    from persona.logs import quiet_library_warnings
    from trainer.allocator import return_freed_memory

    _die_with_parent(os.environ.get(PARENT_PID_ENV))
    return_freed_memory()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    quiet_library_warnings()
    for noisy in ("httpx", "urllib3", "sentence_transformers", "filelock"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    run(Job.read(Path(args[0])))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What training leaves on disk beside each adapter, and how forgetting rewrites it.

An adapter version's folder (`$PERSONA_HOME/adapters/vN/`) holds, besides the adapter
weights, files with people's words in them: the training and held-out examples
(`data/*.jsonl`), the rated replies KTO learned from, the evaluation samples
(`result.json`, `metrics.json`, `eval/…`) and the report quoting them, and the
checkpoints (optimizer state and weights, only needed to resume an interrupted run).
`persona dataset build` writes the same example files to `$PERSONA_HOME/datasets/latest`.

Every record in those files names the messages (`message_ids`), the rating
(`feedback_id`) or the owner's decision on a draft (`draft_id`) it came from. `purge_pending` rewrites the files of every version
marked by `adapters.taint` so that no record of a message or rating that is no longer
stored survives, deletes the checkpoints and resume state of tainted versions, and
deletes the weights of tainted versions that no longer serve. Checking against what is
still stored (not against a list handed over by the forget) means a purge that was
deferred or interrupted finishes the job later; each file is replaced atomically.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from persona import adapters, drafts, replies
from persona.files import write_text_whole
from persona.history import messages

log = logging.getLogger(__name__)

PURGE_LOCK = int.from_bytes(b"persona\x03", "big", signed=True)
SAMPLES_HEADING = "## Samples"


@dataclass
class Purged:
    versions: list[int] = field(default_factory=list)
    records: int = 0  # examples, rated replies and samples removed from files
    files_deleted: int = 0  # checkpoints, resume state and weights of tainted versions
    deferred: list[int] = field(default_factory=list)  # versions still training (done by the next purge)

    def describe(self) -> str:
        if not self.versions and not self.deferred and not self.records:
            return ""
        parts = [f"{self.records:,} records removed from training files", f"{self.files_deleted:,} files deleted"]
        if self.versions:
            parts.append("adapters " + ", ".join(f"v{v}" for v in self.versions) + " cleaned")
        if self.deferred:
            parts.append("still training: " + ", ".join(f"v{v}" for v in self.deferred) + " (cleaned by the next run)")
        return "; ".join(parts)


class _Stored:
    """Which ids are still stored, asked once per id."""

    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn
        self.known: dict[tuple[str, int], bool] = {}

    def keep(self, record: Any) -> bool:
        if not isinstance(record, dict):
            return True
        wanted = [("m", int(i)) for i in record.get("message_ids") or []]
        if record.get("feedback_id") is not None:
            wanted.append(("f", int(record["feedback_id"])))
        if record.get("draft_id") is not None:
            wanted.append(("d", int(record["draft_id"])))
        self._ask([w for w in wanted if w not in self.known])
        return all(self.known[w] for w in wanted)

    def _ask(self, wanted: list[tuple[str, int]]) -> None:
        if not wanted:
            return
        message_ids = [i for kind, i in wanted if kind == "m"]
        feedback_ids = [i for kind, i in wanted if kind == "f"]
        present = {("m", i) for i in messages.existing(self.conn, message_ids)} if message_ids else set()
        present |= {("f", i) for i in replies.existing_feedback(self.conn, feedback_ids)} if feedback_ids else set()
        draft_ids = [i for kind, i in wanted if kind == "d"]
        present |= {("d", i) for i in drafts.existing(self.conn, draft_ids)} if draft_ids else set()
        self.known.update({w: w in present for w in wanted})


def purge_pending(conn: psycopg.Connection, datasets_dir: Path | None = None) -> Purged:
    """Clean every version marked by a forget (and the dataset export); skips versions
    whose training is running. One purge at a time: a second caller returns at once."""
    result = Purged()
    if not conn.execute("SELECT pg_try_advisory_xact_lock(%s)", (PURGE_LOCK,)).fetchone()[0]:
        log.info("another process is cleaning adapter files")
        return result
    stored = _Stored(conn)
    if datasets_dir is not None and datasets_dir.exists():
        result.records += _rewrite_folder(datasets_dir, stored)
    current = adapters.active(conn)
    for version in adapters.pending_files(conn):
        if adapters.is_training(conn, version.id):
            result.deferred.append(version.id)
            continue
        serving = current is not None and current.id == version.id
        folder = Path(version.path).parent if version.path else None
        if folder is not None and folder.exists():
            result.records += _rewrite_folder(folder, stored)
            if version.tainted:
                result.files_deleted += _delete_derived(folder, Path(version.path), keep_weights=serving)
        if not (version.tainted and serving):  # the weights go once it no longer serves
            adapters.files_done(conn, version.id)
        result.versions.append(version.id)
    conn.commit()
    if result.versions or result.records:
        log.info("purged forgotten data from adapter files: %s", result.describe())
    return result


def _rewrite_folder(folder: Path, stored: _Stored) -> int:
    removed = 0
    for path in sorted(folder.rglob("*.jsonl")):
        removed += _rewrite_jsonl(path, stored)
    for path in sorted(folder.rglob("*.json")):
        removed += _rewrite_samples(path, stored)
    return removed


def _rewrite_jsonl(path: Path, stored: _Stored) -> int:
    kept: list[str] = []
    removed = 0
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            if not line.strip():
                continue
            if stored.keep(json.loads(line)):
                kept.append(line.rstrip("\n"))
            else:
                removed += 1
    if removed:
        write_text_whole(path, "".join(line + "\n" for line in kept))
    return removed


def _rewrite_samples(path: Path, stored: _Stored) -> int:
    """JSON results hold evaluation samples (`samples` lists, at any depth)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return 0
    removed = _filter_samples(data, stored)
    if removed:
        write_text_whole(path, json.dumps(data, indent=2))
        report = path.parent / "report.md"
        if report.exists() and isinstance(data, dict):
            samples = data.get("samples") or (data.get("metrics") or {}).get("samples")
            if isinstance(samples, list):
                write_text_whole(report, _with_samples(report.read_text(encoding="utf-8"), samples))
    return removed


def _filter_samples(node: Any, stored: _Stored) -> int:
    removed = 0
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "samples" and isinstance(value, list):
                kept = [s for s in value if stored.keep(s)]
                removed += len(value) - len(kept)
                node[key] = kept
            else:
                removed += _filter_samples(value, stored)
    elif isinstance(node, list):
        removed += sum(_filter_samples(item, stored) for item in node)
    return removed


def sample_lines(samples: Iterable[dict[str, Any]], limit: int = 5) -> list[str]:
    """The report's samples section (trainer/evaluate.py writes it, a purge rewrites it)."""
    lines = [SAMPLES_HEADING, ""]
    for sample in list(samples)[:limit]:
        context = sample.get("context") or ""
        lines += [f"> {context.splitlines()[-1] if context else ''}", "",
                  f"- real: {sample['real']}", f"- base: {sample['base']}", f"- adapter: {sample['adapter']}", ""]
    return lines


def _with_samples(report: str, samples: list[dict[str, Any]]) -> str:
    head = report.split("\n" + SAMPLES_HEADING, 1)[0]
    return head + "\n" + "\n".join(sample_lines(samples))


_RESUME_STATE = ("checkpoints", "kto", "dpo", "job.json")


def _delete_derived(folder: Path, adapter_dir: Path, *, keep_weights: bool) -> int:
    """A tainted version can never be resumed, and once it no longer serves its weights go too."""
    doomed = [folder / name for name in _RESUME_STATE] + ([] if keep_weights else [adapter_dir])
    count = 0
    for path in doomed:
        if path.is_dir():
            count += sum(1 for p in path.rglob("*") if p.is_file())
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
            count += 1
    return count

"""Adapter versions, training runs and the held-out split: the tables' one home.

Each training run writes a new version; only the promotion gate (or the owner) makes one
active, and `active()` is the one way anything — the bot, status, stats, the trainer —
learns which adapter replies. An adapter folder is written once and never modified
after it is registered, so the active adapter can be loaded at any time while a new
candidate trains elsewhere.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from persona.errors import PersonaError
from persona.prompts import CURRENT_FRAME

_COLUMNS = sql.SQL("id, parent_id, base_model, path, status, status_reason, data_watermark, feedback_watermark, hyperparams, metrics, "
                   "created_at, activated_at, tainted_at, tainted_reason, files_pending, draft_watermark, prompt_frame")


def relocation(old_root: Path, new_root: Path) -> sql.Composed:
    """The statement that moves adapter folders recorded under `old_root` to `new_root`
    (a restored backup in another PERSONA_HOME; run inside the restore's own transaction)."""
    old = str(old_root).rstrip("/") + "/"
    return sql.SQL("UPDATE adapter_versions SET path = {} || substr(path, {}) WHERE starts_with(path, {})").format(
        sql.Literal(str(new_root).rstrip("/") + "/"), sql.Literal(len(old) + 1), sql.Literal(old))


def served_name(version: int) -> str:
    """The name adapter `version` is served under by a model server and by `persona serve`."""
    return f"persona-v{version}"


@dataclass(frozen=True)
class AdapterVersion:
    id: int
    parent_id: int | None
    base_model: str
    path: str
    status: str
    status_reason: str | None
    data_watermark: int
    feedback_watermark: int
    hyperparams: dict[str, Any]
    metrics: dict[str, Any]
    created_at: datetime
    activated_at: datetime | None
    tainted_at: datetime | None = None  # trained on messages or ratings that were forgotten since
    tainted_reason: str | None = None
    files_pending: bool = False  # files beside it still hold forgotten text (persona/adapter_files.py)
    draft_watermark: int = 0  # the last owner's decision on a draft it learned from (drafts.decision_seq)
    prompt_frame: int = CURRENT_FRAME  # the conversation frame it was trained on, and is served in (persona/prompts.py)

    @property
    def label(self) -> str:
        return f"v{self.id}"

    @property
    def tainted(self) -> bool:
        return self.tainted_at is not None

    @property
    def heldout_loss(self) -> float | None:
        value = (self.metrics.get("heldout_loss") or {}).get("candidate")
        return float(value) if value is not None else None


def get(conn: psycopg.Connection, version_id: int) -> AdapterVersion | None:
    row = conn.execute(sql.SQL("SELECT {} FROM adapter_versions WHERE id = %s").format(_COLUMNS), (version_id,)).fetchone()
    return AdapterVersion(*row) if row else None


def active(conn: psycopg.Connection) -> AdapterVersion | None:
    row = conn.execute(sql.SQL("SELECT {} FROM adapter_versions WHERE status = 'active'").format(_COLUMNS)).fetchone()
    return AdapterVersion(*row) if row else None


def versions(conn: psycopg.Connection) -> list[AdapterVersion]:
    return [AdapterVersion(*r) for r in conn.execute(sql.SQL("SELECT {} FROM adapter_versions ORDER BY id").format(_COLUMNS)).fetchall()]


def create_candidate(conn: psycopg.Connection, *, base_model: str, parent_id: int | None, hyperparams: dict[str, Any],
                     data_watermark: int, feedback_watermark: int, prompt_frame: int = CURRENT_FRAME) -> int:
    """A new version row; its folder path is filled in by `set_path` once the id is known."""
    return int(conn.execute(
        "INSERT INTO adapter_versions (parent_id, base_model, path, hyperparams, data_watermark, feedback_watermark, prompt_frame) "
        "VALUES (%s, %s, '', %s, %s, %s, %s) RETURNING id",
        (parent_id, base_model, json.dumps(hyperparams), data_watermark, feedback_watermark, prompt_frame),
    ).fetchone()[0])


def set_path(conn: psycopg.Connection, version_id: int, path: str) -> None:
    conn.execute("UPDATE adapter_versions SET path = %s WHERE id = %s", (path, version_id))


def mark_failed(conn: psycopg.Connection, version_id: int, reason: str) -> None:
    conn.execute("UPDATE adapter_versions SET status = 'failed', status_reason = %s WHERE id = %s AND status = 'candidate'", (reason, version_id))


def record_metrics(conn: psycopg.Connection, version_id: int, metrics: dict[str, Any]) -> None:
    conn.execute("UPDATE adapter_versions SET metrics = %s WHERE id = %s", (json.dumps(metrics), version_id))


def activate(conn: psycopg.Connection, version_id: int, reason: str = "activated by the owner") -> AdapterVersion:
    """Make `version_id` the active adapter (the previous one is retired)."""
    target = get(conn, version_id)
    if target is None:
        raise PersonaError(f"there is no adapter v{version_id}: see `persona adapters`")
    if target.status == "failed":
        raise PersonaError(f"v{version_id} failed during training ({target.status_reason}); it cannot be activated")
    if target.tainted:
        raise PersonaError(f"v{version_id} was trained on data that was forgotten since ({target.tainted_reason}); it cannot be activated: "
                           "run `persona retrain`")
    with conn.transaction():
        conn.execute("UPDATE adapter_versions SET status = 'retired' WHERE status = 'active' AND id <> %s", (version_id,))
        conn.execute(
            "UPDATE adapter_versions SET status = 'active', status_reason = %s, activated_at = now() WHERE id = %s",
            (reason, version_id),
        )
    result = get(conn, version_id)
    assert result is not None
    return result


def rollback(conn: psycopg.Connection) -> AdapterVersion:
    """Re-activate the adapter that was active before the current one."""
    current = active(conn)
    if current is None:
        raise PersonaError("no adapter is active, so there is nothing to roll back")
    row = conn.execute(
        "SELECT id FROM adapter_versions WHERE status = 'retired' AND activated_at IS NOT NULL AND tainted_at IS NULL AND id <> %s "
        "ORDER BY activated_at DESC LIMIT 1",
        (current.id,),
    ).fetchone()
    if row is None:
        raise PersonaError(f"{current.label} is the only adapter that was ever active: nothing to roll back to")
    return activate(conn, int(row[0]), reason=f"rolled back from {current.label}")


# --- what each version was trained on, and forgetting it ----------------------------------


def record_data(conn: psycopg.Connection, version_id: int, *, trained_message_ids: list[int], heldout_message_ids: list[int],
                feedback_ids: list[int], draft_ids: list[int] | None = None, draft_watermark: int = 0) -> None:
    """What a version's weights learned from (messages, ratings, the owner's decisions on
    drafts up to `draft_watermark`), and which messages its evaluation files hold."""
    conn.execute(
        "UPDATE adapter_versions SET trained_message_ids = %s, heldout_message_ids = %s, trained_feedback_ids = %s, trained_draft_ids = %s, "
        "draft_watermark = %s, data_recorded = true WHERE id = %s",
        (sorted(set(trained_message_ids)), sorted(set(heldout_message_ids)), sorted(set(feedback_ids)), sorted(set(draft_ids or [])),
         draft_watermark, version_id),
    )


def add_heldout(conn: psycopg.Connection, version_id: int, message_ids: list[int]) -> None:
    """A later evaluation (`persona eval`) wrote files with these held-out messages beside the version."""
    conn.execute(
        "UPDATE adapter_versions SET heldout_message_ids = ARRAY(SELECT DISTINCT unnest(heldout_message_ids || %s::bigint[])) WHERE id = %s",
        (message_ids, version_id),
    )


def taint(conn: psycopg.Connection, message_ids: list[int], feedback_ids: list[int], reason: str, draft_ids: list[int] | None = None) -> list[int]:
    """Mark every version trained on any of these messages, ratings or owner's decisions on
    drafts (or started from one that was) as tainted, and every version whose files hold
    them as needing a rewrite; the ids are dropped from the records. Returns the newly
    tainted version ids."""
    draft_ids = draft_ids or []
    if not message_ids and not feedback_ids and not draft_ids:
        return []
    params = {"m": message_ids, "f": feedback_ids, "d": draft_ids, "reason": reason}
    tainted = conn.execute(
        """WITH RECURSIVE direct AS (
               SELECT id FROM adapter_versions
               WHERE trained_message_ids && %(m)s::bigint[] OR trained_feedback_ids && %(f)s::bigint[] OR trained_draft_ids && %(d)s::bigint[]
                  OR NOT data_recorded
           ), reached AS (
               SELECT id FROM direct
               UNION SELECT v.id FROM adapter_versions v JOIN reached r ON v.parent_id = r.id
           )
           UPDATE adapter_versions SET tainted_at = now(), tainted_reason = %(reason)s, files_pending = true
           WHERE id IN (SELECT id FROM reached) AND tainted_at IS NULL RETURNING id""",
        params,
    ).fetchall()
    conn.execute(
        """UPDATE adapter_versions SET files_pending = true,
               trained_message_ids = ARRAY(SELECT unnest(trained_message_ids) EXCEPT SELECT unnest(%(m)s::bigint[])),
               heldout_message_ids = ARRAY(SELECT unnest(heldout_message_ids) EXCEPT SELECT unnest(%(m)s::bigint[])),
               trained_feedback_ids = ARRAY(SELECT unnest(trained_feedback_ids) EXCEPT SELECT unnest(%(f)s::bigint[])),
               trained_draft_ids = ARRAY(SELECT unnest(trained_draft_ids) EXCEPT SELECT unnest(%(d)s::bigint[]))
           WHERE trained_message_ids && %(m)s::bigint[] OR heldout_message_ids && %(m)s::bigint[] OR trained_feedback_ids && %(f)s::bigint[]
              OR trained_draft_ids && %(d)s::bigint[]""",
        params,
    )
    return sorted(r[0] for r in tainted)


def newest_untainted(conn: psycopg.Connection, base_model: str) -> AdapterVersion | None:
    """The newest version that served once, was not trained on forgotten data, and still has its files."""
    row = conn.execute(
        sql.SQL("SELECT {} FROM adapter_versions WHERE tainted_at IS NULL AND status <> 'failed' AND activated_at IS NOT NULL "
                "AND base_model = %s ORDER BY id DESC LIMIT 1").format(_COLUMNS),
        (base_model,),
    ).fetchone()
    return AdapterVersion(*row) if row else None


def replace_tainted_active(conn: psycopg.Connection) -> tuple[AdapterVersion | None, AdapterVersion | None]:
    """When the active adapter is tainted, activate the newest untainted version instead.
    Returns (the tainted active one or None, what replaced it or None when nothing could)."""
    current = active(conn)
    if current is None or not current.tainted:
        return None, None
    clean = newest_untainted(conn, current.base_model)
    if clean is None:
        return current, None
    return current, activate(conn, clean.id, reason=f"rolled back: {current.label} was trained on forgotten data")


def retire_tainted_active(conn: psycopg.Connection) -> AdapterVersion | None:
    """Stop serving a tainted active adapter when no clean one could replace it (the base model answers)."""
    current = active(conn)
    if current is None or not current.tainted:
        return None
    conn.execute("UPDATE adapter_versions SET status = 'retired', status_reason = %s WHERE id = %s",
                 (f"retired: trained on forgotten data ({current.tainted_reason})", current.id))
    return current


def pending_files(conn: psycopg.Connection) -> list[AdapterVersion]:
    rows = conn.execute(sql.SQL("SELECT {} FROM adapter_versions WHERE files_pending ORDER BY id").format(_COLUMNS)).fetchall()
    return [AdapterVersion(*r) for r in rows]


def files_done(conn: psycopg.Connection, version_id: int) -> None:
    conn.execute("UPDATE adapter_versions SET files_pending = false WHERE id = %s", (version_id,))


def is_training(conn: psycopg.Connection, version_id: int) -> bool:
    """A training run for this version is marked running (its process may be writing its folder)."""
    return bool(conn.execute("SELECT EXISTS (SELECT 1 FROM training_runs WHERE adapter_version_id = %s AND status = 'running')",
                             (version_id,)).fetchone()[0])


def set_reason(conn: psycopg.Connection, version_id: int, reason: str) -> None:
    conn.execute("UPDATE adapter_versions SET status_reason = %s WHERE id = %s", (reason, version_id))


def counts(conn: psycopg.Connection) -> dict[str, Any]:
    by_status = dict(conn.execute("SELECT status, count(*) FROM adapter_versions GROUP BY status").fetchall())
    current = active(conn)
    return {"adapters": sum(by_status.values()), "adapters_by_status": by_status, "active_adapter": current.id if current else None}


# --- training runs ------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrainingRun:
    id: int
    kind: str
    trigger: str
    status: str
    adapter_version_id: int | None
    job_path: str | None
    finished_at: datetime | None
    started_at: datetime | None = None
    error: str | None = None


def start_run(conn: psycopg.Connection, *, kind: str, trigger: str, version_id: int, params: dict[str, Any]) -> int:
    return int(conn.execute(
        "INSERT INTO training_runs (kind, trigger, adapter_version_id, params) VALUES (%s, %s, %s, %s) RETURNING id",
        (kind, trigger, version_id, json.dumps(params)),
    ).fetchone()[0])


def resume_run(conn: psycopg.Connection, run_id: int) -> None:
    conn.execute("UPDATE training_runs SET status = 'running', error = NULL WHERE id = %s", (run_id,))


def fail_run(conn: psycopg.Connection, run_id: int, error: str) -> None:
    conn.execute("UPDATE training_runs SET status = 'failed', finished_at = now(), error = %s WHERE id = %s", (error, run_id))


def finish_run(conn: psycopg.Connection, run_id: int, metrics: dict[str, Any]) -> None:
    conn.execute("UPDATE training_runs SET status = 'succeeded', finished_at = now(), metrics = %s WHERE id = %s",
                 (json.dumps(metrics), run_id))


_RUN_COLUMNS = sql.SQL("id, kind, trigger, status, adapter_version_id, params->>'job', finished_at, started_at, error")


def running_runs(conn: psycopg.Connection) -> list[TrainingRun]:
    """Runs marked running, newest first (after a crash: what may be resumed)."""
    rows = conn.execute(sql.SQL("SELECT {} FROM training_runs WHERE status = 'running' ORDER BY id DESC").format(_RUN_COLUMNS)).fetchall()
    return [TrainingRun(*r) for r in rows]


def recent_runs(conn: psycopg.Connection, limit: int = 20) -> list[TrainingRun]:
    """The training-run log, newest first."""
    rows = conn.execute(sql.SQL("SELECT {} FROM training_runs ORDER BY id DESC LIMIT %s").format(_RUN_COLUMNS), (limit,)).fetchall()
    return [TrainingRun(*r) for r in rows]


def run_outcomes(conn: psycopg.Connection) -> dict[tuple[str, str], int]:
    """Training runs per (kind, status)."""
    return {(kind, status): int(n) for kind, status, n in
            conn.execute("SELECT kind, status, count(*) FROM training_runs GROUP BY kind, status").fetchall()}


def last_success_at(conn: psycopg.Connection) -> datetime | None:
    """When the newest training run that succeeded finished (None: never)."""
    return conn.execute("SELECT max(finished_at) FROM training_runs WHERE status = 'succeeded'").fetchone()[0]


def last_finished_run(conn: psycopg.Connection) -> TrainingRun | None:
    row = conn.execute(
        sql.SQL("SELECT {} FROM training_runs WHERE finished_at IS NOT NULL ORDER BY finished_at DESC LIMIT 1").format(_RUN_COLUMNS)
    ).fetchone()
    return TrainingRun(*row) if row else None


# --- the held-out split -------------------------------------------------------------------------


def heldout(conn: psycopg.Connection) -> dict[int, int]:
    """message id → channel id of every owner message held out from training."""
    return dict(conn.execute("SELECT message_id, channel_id FROM heldout_messages").fetchall())


def hold_out(conn: psycopg.Connection, rows: list[tuple[int, int]]) -> None:
    """Add (message id, channel id) rows to the held-out split (kept from then on)."""
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO heldout_messages (message_id, channel_id) VALUES (%s, %s) ON CONFLICT DO NOTHING", rows)

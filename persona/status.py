"""What persona holds and how it is doing: `persona stats` and `/persona status`.

Counts come from each table group's own module; this one only puts them together.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg

from persona import adapters, drafts, memory, replies
from persona.history import messages, people, runs


def collect_stats(conn: psycopg.Connection) -> dict[str, Any]:
    """One dict of counts; every key is present even on an empty database."""
    return {
        **messages.counts(conn), **people.counts(conn), **memory.counts(conn), **replies.counts(conn), **adapters.counts(conn),
        "import_runs": runs.import_count(conn),
    }


def status(conn: psycopg.Connection) -> dict[str, Any]:
    counts = collect_stats(conn)
    active = adapters.active(conn)
    last = adapters.last_finished_run(conn)
    approved = {a.adapter_version: a for a in drafts.approval(conn)}
    key = active.id if active else None
    return {
        "drafts": {**drafts.counts(conn), "approval": approved[key].as_json() if key in approved else None},
        "active_adapter": None if active is None else {
            "version": active.id, "heldout_loss": active.metrics.get("heldout_loss"), "activated_at": active.activated_at,
            "tainted": active.tainted,
        },
        "messages": counts["messages"], "owner_messages": counts["owner_messages"], "memories": counts["memories"],
        "feedback": counts["feedback"], "replies": counts["replies"],
        "last_retrain": None if last is None else {"kind": last.kind, "trigger": last.trigger, "status": last.status, "finished_at": last.finished_at},
    }


def describe(summary: dict[str, Any], next_run: datetime | None = None) -> str:
    active = summary["active_adapter"]
    lines = []
    if active:
        loss = (active.get("heldout_loss") or {})
        figures = ", ".join(f"{k} {v:.3f}" for k, v in loss.items() if isinstance(v, (int, float)))
        lines.append(f"adapter: v{active['version']}" + (f" (held-out loss: {figures})" if figures else "")
                     + (" — trained on forgotten data, replaced by the next retrain" if active.get("tainted") else ""))
    else:
        lines.append("adapter: none yet (replying with the base model)")
    lines.append(f"messages: {summary['messages']:,} ({summary['owner_messages']:,} mine) · memories: {summary['memories']:,} · "
                 f"replies: {summary['replies']:,} · ratings: {summary['feedback']:,}")
    held = summary.get("drafts") or {}
    if held.get("approval") or held.get("pending"):
        approval = held.get("approval")
        rate = f"{approval['approval_rate']:.0%} of this adapter's drafts sent as written ({approval['sent']} of {approval['decided']}, " \
               f"{approval['edited']} edited, {approval['discarded']} discarded)" if approval else "none decided yet"
        lines.append(f"drafts: {held.get('pending', 0)} waiting · {rate}")
    last = summary["last_retrain"]
    lines.append(f"last retrain: {last['finished_at']:%Y-%m-%d %H:%M} ({last['trigger']}, {last['status']})" if last else "last retrain: never")
    if next_run is not None:
        lines.append(f"next retrain: {next_run:%Y-%m-%d %H:%M %Z}")
    return "\n".join(lines)

"""What `/persona status` shows: the active adapter, data counts, the last retrain."""

from __future__ import annotations

from typing import Any

import psycopg

from persona.stats import collect_stats


def status(conn: psycopg.Connection) -> dict[str, Any]:
    counts = collect_stats(conn)
    active = conn.execute("SELECT id, metrics, activated_at FROM adapter_versions WHERE status = 'active'").fetchone()
    last = conn.execute(
        "SELECT kind, trigger, status, finished_at, metrics FROM training_runs WHERE finished_at IS NOT NULL ORDER BY finished_at DESC LIMIT 1"
    ).fetchone()
    return {
        "active_adapter": None if active is None else {
            "version": active[0], "heldout_loss": (active[1] or {}).get("heldout_loss"), "activated_at": active[2],
        },
        "messages": counts["messages"], "owner_messages": counts["owner_messages"], "memories": counts["memories"],
        "feedback": counts["feedback"], "replies": counts["replies"],
        "last_retrain": None if last is None else {"kind": last[0], "trigger": last[1], "status": last[2], "finished_at": last[3]},
    }


def describe(summary: dict[str, Any], next_run: Any = None) -> str:
    active = summary["active_adapter"]
    lines = []
    if active:
        loss = (active.get("heldout_loss") or {})
        figures = ", ".join(f"{k} {v:.3f}" for k, v in loss.items() if isinstance(v, (int, float)))
        lines.append(f"adapter: v{active['version']}" + (f" (held-out loss: {figures})" if figures else ""))
    else:
        lines.append("adapter: none yet (replying with the base model)")
    lines.append(f"messages: {summary['messages']:,} ({summary['owner_messages']:,} mine) · memories: {summary['memories']:,} · "
                 f"replies: {summary['replies']:,} · ratings: {summary['feedback']:,}")
    last = summary["last_retrain"]
    lines.append(f"last retrain: {last['finished_at']:%Y-%m-%d %H:%M} ({last['trigger']}, {last['status']})" if last else "last retrain: never")
    if next_run is not None:
        lines.append(f"next retrain: {next_run:%Y-%m-%d %H:%M %Z}")
    return "\n".join(lines)

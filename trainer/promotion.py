"""The promotion gate: whether a candidate adapter replaces the active one."""

from __future__ import annotations

from typing import Any


def gate(candidate_loss: float | None, reference_loss: float | None, margin: float, reference: str) -> tuple[bool, str]:
    """Promote unless the candidate's held-out loss is worse than the reference's by more than `margin`."""
    if candidate_loss is None:
        return False, "no held-out loss to judge it by (no held-out examples?)"
    if reference_loss is None:
        return True, "first adapter"
    limit = reference_loss * (1 + margin)
    if candidate_loss <= limit:
        return True, f"held-out loss {candidate_loss:.4f} vs {reference} {reference_loss:.4f} (limit {limit:.4f})"
    return False, f"held-out loss {candidate_loss:.4f} is worse than {reference} {reference_loss:.4f} by more than {margin:.0%}"


def evaluation_checks(metrics: dict[str, Any], *, likeness: bool, fact_use: bool) -> tuple[bool, str]:
    """The checks the owner asked for beyond the loss (PERSONA_PROMOTE_ON_*): the
    candidate's replies at least as owner-like as the base model's, at least as many
    facts stated on the fact probes. A check without figures (no samples, no probes) passes."""
    failed: list[str] = []
    if likeness:
        scores = metrics.get("owner_likeness") or {}
        if scores.get("adapter") is not None and scores.get("base") is not None and scores["adapter"] < scores["base"]:
            failed.append(f"owner-likeness {scores['adapter']:.3f} below the base model's {scores['base']:.3f}")
    if fact_use:
        table = metrics.get("fact_use") or {}
        if table.get("adapter") is not None and table.get("base") is not None and table["adapter"] < table["base"]:
            failed.append(f"states {table['adapter']} remembered facts, the base model {table['base']}")
    return (False, "; ".join(failed)) if failed else (True, "")

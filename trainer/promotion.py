"""The promotion gate: whether a candidate adapter replaces the active one."""

from __future__ import annotations


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

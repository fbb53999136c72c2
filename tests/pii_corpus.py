"""The measured scrubbing corpus: planted personal data and ordinary chat.

Shared by tests/test_privacy.py and bench/scrub.py so the figures in the README are
the ones the tests check.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data"


@dataclass(frozen=True)
class Planted:
    kind: str
    value: str
    line: str


def planted() -> list[Planted]:
    items = []
    for raw in (DATA / "pii_planted.tsv").read_text(encoding="utf-8").splitlines():
        if not raw.strip() or raw.startswith("#"):
            continue
        kind, value, template = raw.split("\t")
        value = value.replace("\\n", "\n")
        items.append(Planted(kind, value, template.replace("{}", value)))
    return items


def ordinary_chat() -> list[str]:
    return [ln for ln in (DATA / "ordinary_chat.txt").read_text(encoding="utf-8").splitlines() if ln.strip()]

"""Range and relevance of generated replies: do they answer their context, and do they vary
as the owner's own replies do — or collapse to the owner's few stock lines?

Measured after training (README *Figures*): both offline models answered most held-out
contexts with one of the owner's favourite lines ("ya ya", "love that"). Style measures
(trainer/likeness.py) reward that — the lines are the owner's — so three more:

- **Stock-line rate**: the share of replies that are, or nearly are (difflib ratio ≥
  `NEAR` after case and punctuation are set aside), one of the owner's `STOCK_LINES` most
  frequent lines in the training split; reported next to the owner's own rate on the
  held-out split, the rate a faithful persona would have.
- **distinct-n**: distinct word n-grams over all n-grams of the replies (1 and 2), as in
  dialogue-generation research; the owner's real replies to the same contexts give the
  reference.
- **Relevance**: cosine similarity (the memory's embedder) of each reply to the owner's
  real reply to the same context, against a random line of the owner's to that context
  as the baseline: a persona that answers the conversation beats the random line; one
  that says its stock lines does not.

Each is a mean over contexts with a 95% bootstrap interval (likeness.interval) or, for
rates, Wilson's interval.
"""

from __future__ import annotations

import difflib
import logging
import random
import re
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from trainer.likeness import interval, wilson

log = logging.getLogger(__name__)

STOCK_LINES = 20
NEAR = 0.85
_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")


def normal(text: str) -> str:
    """A line as its words alone: case, punctuation and emoji set aside ("Love that!! 🥲" → "love that")."""
    return " ".join(_WORD.findall(text.casefold()))


def stock_lines(owner_lines: Sequence[str], n: int = STOCK_LINES) -> list[str]:
    """The owner's `n` most frequent lines (normalised), each said at least twice."""
    counts = Counter(line for line in map(normal, owner_lines) if line)
    return [line for line, count in counts.most_common(n) if count >= 2]


def is_stock(text: str, stock: Sequence[str]) -> bool:
    line = normal(text)
    if not line:
        return False
    return any(line == s or difflib.SequenceMatcher(None, line, s).ratio() >= NEAR for s in stock)


def stock_line_rate(texts: Sequence[str], stock: Sequence[str]) -> dict[str, Any] | None:
    if not texts:
        return None
    hits = sum(is_stock(t, stock) for t in texts)
    return {"rate": round(hits / len(texts), 3), "interval": wilson(hits, len(texts)), "texts": len(texts)}


def distinct_n(texts: Sequence[str], n: int) -> float | None:
    """Distinct word n-grams over all word n-grams of `texts` (None: no n-gram at all)."""
    grams = [tuple(words[i:i + n]) for words in (normal(t).split() for t in texts) for i in range(len(words) - n + 1)]
    return round(len(set(grams)) / len(grams), 3) if grams else None


def relevance(embedder: Any, real: Sequence[str], generated: dict[str, Sequence[str]], owner_pool: Sequence[str],
              seed: int = 13) -> dict[str, Any] | None:
    """Mean similarity of each set's replies to the owner's real reply to the same context,
    with the random-owner-line baseline, each with a 95% interval."""
    if not real or not owner_pool:
        return None
    rng = random.Random(seed)
    baseline = [rng.choice(owner_pool) for _ in real]
    real_vectors = embedder.embed_passages([r or " " for r in real])
    result: dict[str, Any] = {}
    for name, texts in {"random owner line": baseline, **generated}.items():
        if len(texts) != len(real):
            continue
        similarity = np.asarray((embedder.embed_passages([t or " " for t in texts]) * real_vectors).sum(axis=1), dtype=float)
        values = [float(v) for v in similarity]
        result[name] = {"mean": round(float(np.mean(values)), 4), "interval": interval(values)}
    return result


def range_and_relevance(embedder: Any, owner_train: Sequence[str], owner_heldout: Sequence[str], real: Sequence[str],
                        generated: dict[str, Sequence[str]]) -> dict[str, Any]:
    """Stock-line rate, distinct-1/2 and relevance of each generated set, with the owner's
    own figures (their held-out lines, their real replies to the same contexts) beside them."""
    stock = stock_lines(owner_train)
    sets = {"owner (held-out)": list(owner_heldout), "real": list(real), **{k: list(v) for k, v in generated.items()}}
    result: dict[str, Any] = {
        "stock_lines": len(stock),
        "stock_line_rate": {name: stock_line_rate(texts, stock) for name, texts in sets.items()},
        "distinct_1": {name: distinct_n(texts, 1) for name, texts in sets.items()},
        "distinct_2": {name: distinct_n(texts, 2) for name, texts in sets.items()},
        "relevance": None,
    }
    if embedder is not None:
        try:
            result["relevance"] = relevance(embedder, real, generated, owner_train)
        except Exception as exc:  # noqa: BLE001 - a missing embedder costs one measure, not the evaluation
            log.warning("relevance skipped: %s", exc)
    return result

"""How owner-like are generated replies? Two text classifiers, fitted in each evaluation.

- **Owner-likeness.** A classifier trained on the training split only — the owner's
  messages against everyone else's (TF-IDF over character 2–4-grams, which catch
  spelling, slang, emoji and punctuation habits, + logistic regression, scikit-learn)
  — scores texts by the probability that the owner wrote them. The mean score of the
  generated replies is reported normalised between other people's held-out messages
  (0) and the owner's real held-out replies (1), so 1 means "as owner-like as the
  owner", whatever the classifier's calibration.
- **Real vs generated.** Cross-validated accuracy of the same kind of classifier at
  telling the model's replies from the owner's real replies to the same held-out
  contexts: 0.5 means indistinguishable, 1.0 means always told apart.

Both are style measures on small samples: the report shows how many texts each rests on.
"""

from __future__ import annotations

import logging
import random
import statistics
from collections.abc import Callable, Sequence
from typing import Any

log = logging.getLogger(__name__)

MIN_PER_CLASS = 4


def _pipeline() -> Any:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    return make_pipeline(TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), min_df=1, sublinear_tf=True, lowercase=False),
                         LogisticRegression(max_iter=2000, class_weight="balanced"))


def owner_likeness(owner_train: Sequence[str], others_train: Sequence[str], owner_heldout: Sequence[str], others_heldout: Sequence[str],
                   generated: dict[str, Sequence[str]]) -> dict[str, Any] | None:
    """Normalised owner-likeness of each set in `generated` (None without enough text to fit on)."""
    if min(len(owner_train), len(others_train)) < MIN_PER_CLASS or not owner_heldout or not others_heldout:
        return None
    model = _pipeline().fit([*owner_train, *others_train], [1] * len(owner_train) + [0] * len(others_train))

    def score(texts: Sequence[str]) -> float | None:
        return float(model.predict_proba(list(texts))[:, 1].mean()) if texts else None

    floor, ceiling = score(others_heldout), score(owner_heldout)
    assert floor is not None and ceiling is not None
    spread = ceiling - floor
    result: dict[str, Any] = {"others_heldout": round(floor, 4), "owner_heldout": round(ceiling, 4),
                              "texts": {"train_owner": len(owner_train), "train_others": len(others_train), "heldout_owner": len(owner_heldout),
                                        "heldout_others": len(others_heldout)}}
    for name, texts in generated.items():
        raw = score(texts)
        result[name] = round((raw - floor) / spread, 3) if raw is not None and spread > 1e-6 else None
    return result


def real_vs_generated(real: Sequence[str], generated: Sequence[str], seed: int = 13) -> float | None:
    """Cross-validated accuracy of telling `generated` from `real` (0.5: indistinguishable)."""
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    pairs = [(r, g) for r, g in zip(real, generated) if r.strip() and g.strip()]
    if len(pairs) < MIN_PER_CLASS:
        return None
    texts = [r for r, _ in pairs] + [g for _, g in pairs]
    labels = [0] * len(pairs) + [1] * len(pairs)
    folds = StratifiedKFold(n_splits=min(5, len(pairs)), shuffle=True, random_state=seed)
    return round(float(cross_val_score(_pipeline(), texts, labels, cv=folds, scoring="accuracy").mean()), 3)


def interval(values: Sequence[float], statistic: Callable[[Sequence[float]], float] = statistics.fmean, *, seed: int = 13,
             rounds: int = 1000) -> tuple[float, float] | None:
    """A 95% bootstrap confidence interval of `statistic` over `values`."""
    if len(values) < 2:
        return None
    rng = random.Random(seed)
    draws = sorted(statistic(rng.choices(values, k=len(values))) for _ in range(rounds))
    return round(draws[int(0.025 * rounds)], 3), round(draws[int(0.975 * rounds) - 1], 3)

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
  contexts: 0.5 means indistinguishable, 1.0 means always told apart — with its 95%
  interval, and the same classifier's figure for the owner's real replies against their
  own other held-out lines (what "indistinguishable" looks like at this sample size).
- **The ceiling** (`attribution_ceiling`): how well the owner-likeness classifier tells
  the owner's own held-out lines from other people's. Research on style imitation
  (arXiv 2509.14543) found informal chat the hardest register to attribute: a low
  ceiling says the likeness figures carry little.

Style measures, not sense: relevance and range are in trainer/voice_range.py.
"""

from __future__ import annotations

import logging
import math
import random
import statistics
from collections.abc import Callable, Sequence
from typing import Any

from persona.config import default_of

log = logging.getLogger(__name__)

MIN_PER_CLASS = 4
EVAL_CONTEXTS: int = default_of("eval_contexts")  # held-out contexts an evaluation replies to by default (PERSONA_EVAL_CONTEXTS)


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
    told = discriminate(real, generated, seed)
    return told["accuracy"] if told else None


def discriminate(real: Sequence[str], generated: Sequence[str], seed: int = 13) -> dict[str, Any] | None:
    """Real vs generated with its 95% interval: every text is classified by a model fitted
    on the other folds (5-fold), so each counts once as right or wrong; the interval is
    Wilson's for that many texts (exact enough at 100, honest at 8: wide)."""
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    pairs = [(r, g) for r, g in zip(real, generated) if r.strip() and g.strip()]
    if len(pairs) < MIN_PER_CLASS:
        return None
    texts = [r for r, _ in pairs] + [g for _, g in pairs]
    labels = [0] * len(pairs) + [1] * len(pairs)
    folds = StratifiedKFold(n_splits=min(5, len(pairs)), shuffle=True, random_state=seed)
    predicted = cross_val_predict(_pipeline(), texts, labels, cv=folds)
    right = int(sum(int(p == y) for p, y in zip(predicted, labels)))
    return {"accuracy": round(right / len(labels), 3), "interval": wilson(right, len(labels)), "pairs": len(pairs)}


def wilson(successes: int, trials: int, z: float = 1.96) -> tuple[float, float] | None:
    """The 95% Wilson score interval of a proportion (better than ±2σ near 0 and 1 and for few trials)."""
    if trials <= 0:
        return None
    p = successes / trials
    centre = (p + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / (1 + z * z / trials)
    return round(max(0.0, centre - half), 3), round(min(1.0, centre + half), 3)


def attribution_ceiling(owner_train: Sequence[str], others_train: Sequence[str], owner_heldout: Sequence[str],
                        others_heldout: Sequence[str]) -> dict[str, Any] | None:
    """How well the owner-likeness classifier tells the owner's own held-out lines from other
    people's (balanced accuracy with its interval): the most any likeness figure can mean.
    Informal chat is hard to attribute; a ceiling near 0.6 says the likeness figures are noise."""
    if min(len(owner_train), len(others_train)) < MIN_PER_CLASS or not owner_heldout or not others_heldout:
        return None
    model = _pipeline().fit([*owner_train, *others_train], [1] * len(owner_train) + [0] * len(others_train))
    owner_right = int((model.predict(list(owner_heldout)) == 1).sum())
    others_right = int((model.predict(list(others_heldout)) == 0).sum())
    balanced = (owner_right / len(owner_heldout) + others_right / len(others_heldout)) / 2
    owner_ci, others_ci = wilson(owner_right, len(owner_heldout)), wilson(others_right, len(others_heldout))
    assert owner_ci is not None and others_ci is not None
    return {"balanced_accuracy": round(balanced, 3), "interval": (round((owner_ci[0] + others_ci[0]) / 2, 3), round((owner_ci[1] + others_ci[1]) / 2, 3)),
            "owner_lines": len(owner_heldout), "others_lines": len(others_heldout)}


def interval(values: Sequence[float], statistic: Callable[[Sequence[float]], float] = statistics.fmean, *, seed: int = 13,
             rounds: int = 1000) -> tuple[float, float] | None:
    """A 95% bootstrap confidence interval of `statistic` over `values`."""
    if len(values) < 2:
        return None
    rng = random.Random(seed)
    draws = sorted(statistic(rng.choices(values, k=len(values))) for _ in range(rounds))
    return round(draws[int(0.025 * rounds)], 3), round(draws[int(0.975 * rounds) - 1], 3)

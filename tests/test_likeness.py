"""The owner-likeness and real-vs-generated measures tell a voice from another."""

from __future__ import annotations

import random

from trainer.likeness import interval, owner_likeness, real_vs_generated

SLANG = ["fr", "lowkey", "ngl", "💀", "bet", "ya", "kinda", "fire"]
PLAIN = ["Certainly", "I", "would", "be", "delighted", "to", "attend", "the", "meeting", "this", "evening", "with", "you"]


def _texts(words: list[str], n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choices(words, k=rng.randint(3, 8))) for _ in range(n)]


def test_owner_likeness_is_normalised_between_others_and_the_owner() -> None:
    owner_train, others_train = _texts(SLANG, 60, 1), _texts(PLAIN, 60, 2)
    owner_heldout, others_heldout = _texts(SLANG, 20, 3), _texts(PLAIN, 20, 4)
    result = owner_likeness(owner_train, others_train, owner_heldout, others_heldout,
                            {"like_owner": _texts(SLANG, 20, 5), "like_others": _texts(PLAIN, 20, 6), "none": []})
    assert result is not None
    assert result["like_owner"] > 0.8 and result["like_others"] < 0.2 and result["none"] is None
    assert result["owner_heldout"] > result["others_heldout"]
    assert owner_likeness(owner_train[:2], others_train, owner_heldout, others_heldout, {}) is None  # too little to fit on


def test_real_vs_generated_accuracy() -> None:
    real = _texts(SLANG, 30, 7)
    assert real_vs_generated(real, _texts(PLAIN, 30, 8)) > 0.9  # told apart
    assert real_vs_generated(real, _texts(SLANG, 30, 9)) < 0.75  # the same voice: near chance
    assert real_vs_generated(real[:2], real[:2]) is None


def test_bootstrap_interval_holds_the_mean() -> None:
    values = [float(v) for v in range(1, 21)]
    low, high = interval(values)
    assert low < sum(values) / len(values) < high and high - low < 8
    assert interval([1.0]) is None

"""The owner-likeness and real-vs-generated measures tell a voice from another."""

from __future__ import annotations

import random

from persona.memory.embeddings import Embedder
from trainer.dataset import Example
from trainer.evaluate import likeness_metrics, reply_contexts, served_context
from trainer.likeness import attribution_ceiling, discriminate, interval, owner_likeness, real_vs_generated, wilson
from trainer.voice_range import distinct_n, is_stock, range_and_relevance, stock_line_rate, stock_lines

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


def test_the_discriminator_has_an_interval_that_narrows_with_more_texts() -> None:
    few = discriminate(_texts(SLANG, 8, 1), _texts(PLAIN, 8, 2))
    many = discriminate(_texts(SLANG, 100, 3), _texts(PLAIN, 100, 4))
    assert few and many and few["pairs"] == 8 and many["pairs"] == 100
    assert many["accuracy"] > 0.9 and many["interval"][0] <= many["accuracy"] <= many["interval"][1]
    assert (few["interval"][1] - few["interval"][0]) > 2 * (many["interval"][1] - many["interval"][0])
    assert wilson(0, 10)[0] == 0.0 and 0.0 < wilson(0, 10)[1] < 0.35 and wilson(5, 0) is None


def test_the_attribution_ceiling_tells_a_distinct_voice_and_not_a_shared_one() -> None:
    distinct = attribution_ceiling(_texts(SLANG, 60, 1), _texts(PLAIN, 60, 2), _texts(SLANG, 30, 3), _texts(PLAIN, 30, 4))
    shared = attribution_ceiling(_texts(SLANG, 60, 5), _texts(SLANG, 60, 6), _texts(SLANG, 30, 7), _texts(SLANG, 30, 8))
    assert distinct and shared and distinct["balanced_accuracy"] > 0.9 and shared["balanced_accuracy"] < 0.7


def test_stock_lines_distinct_n_and_relevance(embedder: Embedder) -> None:
    owner = ["ya ya", "Love that!! 🥲", "love that", "ya ya", "lol same", "lol same", "the bakery shift ran late again", "sent the overhang"]
    stock = stock_lines(owner)
    assert stock == ["ya ya", "love that", "lol same"]  # said twice or more, case, punctuation and emoji set aside
    assert is_stock("LOVE THAT!", stock) and is_stock("love thaat", stock) and not is_stock("love the new crag", stock)
    collapsed = ["ya ya", "love that", "ya ya!", "lol same"]
    varied = ["the shift ran late", "sent it on the second go", "bread is proofing", "crag tomorrow?"]
    assert stock_line_rate(collapsed, stock)["rate"] == 1.0 and stock_line_rate(varied, stock)["rate"] == 0.0
    assert distinct_n(collapsed, 1) < distinct_n(varied, 1) and distinct_n([], 2) is None
    real = ["the bakery shift ran so late", "i sent the overhang today", "my sourdough starter is bubbling", "climbing at the crag tomorrow"]
    on_topic = ["bakery shift was late again", "sent the overhang finally", "starter is bubbling nicely", "crag tomorrow for climbing"]
    measured = range_and_relevance(embedder, owner, owner[:4], real, {"answers": on_topic, "stock": collapsed})
    relevance = measured["relevance"]
    assert relevance["answers"]["mean"] > relevance["random owner line"]["mean"] > 0 and relevance["answers"]["mean"] > relevance["stock"]["mean"]
    assert measured["stock_line_rate"]["stock"]["rate"] == 1.0 and measured["distinct_1"]["answers"] > measured["distinct_1"]["stock"]


def _example(day: str, lines: list[tuple[str, str]]) -> Example:
    messages = [{"role": "system", "content": "You are Jack."}] + [{"role": role, "content": text} for role, text in lines]
    return Example(messages=messages, target_ids=[1], channel_id=1, source="dce", kind="server", last_at=f"{day}T10:00:00")


def test_the_evaluation_replies_to_every_owner_turn_of_a_long_conversation() -> None:
    """One long held-out conversation is many contexts (not one: the play's last third was 8
    examples and 60 owner turns), each the conversation up to that turn, the latest kept."""
    long_one = _example("2026-01-23", [("user", "Algernon: Where have you been?"), ("assistant", "In the country."),
                                        ("user", "Algernon: What on earth do you do there?"), ("assistant", "Oh, neighbours, neighbours."),
                                        ("user", "Algernon: Got nice neighbours?"), ("assistant", "Perfectly horrid!")])
    earlier = _example("2026-01-22", [("user", "Lane: Mr. Ernest Worthing."), ("assistant", "How are you, my dear Ernest?")])
    chosen = reply_contexts([long_one, earlier], None)
    assert [e.messages[turn]["content"] for e, turn in chosen] == [
        "How are you, my dear Ernest?", "In the country.", "Oh, neighbours, neighbours.", "Perfectly horrid!"]
    assert all(e.messages[turn - 1]["role"] == "user" for e, turn in chosen)
    assert [e.messages[turn]["content"] for e, turn in reply_contexts([long_one, earlier], 2)] == [
        "Oh, neighbours, neighbours.", "Perfectly horrid!"]
    assert reply_contexts([long_one], 0) == []


def test_real_against_real_still_has_a_reference_when_every_held_out_turn_is_replied_to() -> None:
    rng = random.Random(3)
    real = [" ".join(rng.choice(["quite", "so", "really", "Algy", "my", "dear", "fellow", "nonsense"]) for _ in range(6)) for _ in range(40)]
    heldout = [_example("2026-01-23", [("user", "Algernon: well?"), ("assistant", line)]) for line in real]
    metrics = likeness_metrics([], heldout, real, real[::-1], real, None)
    assert metrics["real_vs_generated"]["owner"]["pairs"] == 20  # one half of the real replies against the other


def test_a_context_is_cut_to_what_the_bot_is_given() -> None:
    """The evaluation asks for each reply with the context the bot would have (its last 12
    messages, the place-and-day line in front), however long the training window was."""
    messages = [{"role": "system", "content": "You are Jack."}, {"role": "user", "content": "[#act-3 (Half-Moon Street) · 2026-01-22]\nAlgernon: one"}]
    for i in range(20):
        messages.append({"role": "assistant", "content": f"jack {i}"})
        messages.append({"role": "user", "content": f"Algernon: a {i}\nCecily: b {i}"})
    served = served_context(messages)
    assert served[0] == messages[0] and served[-1] == messages[-1]
    assert served[1] == {"role": "user", "content": "[#act-3 (Half-Moon Street) · 2026-01-22]"}  # as render() opens with an owner turn
    assert sum(m["content"].count("\n") + 1 for m in served[2:]) == 12
    assert [m["role"] for m in served[2:]] == ["assistant", "user"] * 4
    short = messages[:4]
    assert served_context(short) == short  # what fits is left as it was
    owner_first = [*messages[:1], {"role": "user", "content": "[#act-3 (Half-Moon Street) · 2026-01-22]"}, *messages[2:]]
    cut = served_context(owner_first[:5], limit=3)  # the cut lands on a user turn: the line goes in front of it
    assert cut[1:] == [{"role": "user", "content": "[#act-3 (Half-Moon Street) · 2026-01-22]\nAlgernon: a 0\nCecily: b 0"}, owner_first[4]]

"""Does the adapter write like the owner? Base vs adapter on the held-out split.

- per-token loss (and perplexity) on the owner's turns, for the base model, the
  candidate adapter and, when given, the active adapter (same data, same run: this is
  what the promotion gate compares);
- generated replies to held-out contexts vs the owner's real replies: length, emoji,
  lowercase and punctuation rates, vocabulary overlap, and embedding similarity;
- owner-likeness and a real-vs-generated discriminator (trainer/likeness.py);
- fact use: questions the owner answered, asked again with recall (trainer/fact_probes.py);
- a markdown report with PNG plots (loss curve, reply lengths) next to the adapter.
"""

from __future__ import annotations

import json
import logging
import math
import re
import statistics
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from persona.adapter_files import sample_lines
from persona.config import Settings
from persona.prompts import REPLY_CONTEXT_MESSAGES
from persona.runtime.engines.base import GenerationSettings, prompt_ids
from persona.runtime.engines.transformers_engine import generate
from persona.runtime.grounding import GroundingSettings
from trainer.dataset import Example
from trainer.encoding import EncodedDataset, PadCollator, encode
from trainer.fact_probes import Probe, fact_use
from trainer.likeness import EVAL_CONTEXTS, attribution_ceiling, discriminate, interval, owner_likeness
from trainer.loss import token_loss_sum
from trainer.sft import TrainOptions
from trainer.voice_range import range_and_relevance

log = logging.getLogger(__name__)

_EMOJI = re.compile("[\U0001f300-\U0001faff\u2600-\u27bf\U0001f1e6-\U0001f1ff]")
_WORD = re.compile(r"[\w']+")
SAMPLE_BATCH = 16


@torch.no_grad()
def heldout_loss(model: Any, tokenizer: Any, examples: list[Example], max_len: int, batch_size: int = 8, *,
                 last_only: bool = False) -> float | None:
    """Mean loss per owner token over the held-out examples (their last owner turn only with `last_only`)."""
    rows = [r for r in (encode(tokenizer, e.messages, max_len, last_only=last_only) for e in examples) if r]
    if not rows:
        return None
    collate = PadCollator(tokenizer.pad_token_id)
    device = next(model.parameters()).device
    total, count = 0.0, 0
    for start in range(0, len(rows), batch_size):
        batch = {k: v.to(device) for k, v in collate(EncodedDataset(rows).rows[start : start + batch_size]).items()}
        loss, tokens = token_loss_sum(model, batch)
        total += float(loss)
        count += tokens
    return total / max(count, 1)


def sample_replies(model: Any, tokenizer: Any, contexts: list[list[dict[str, str]]], generation: GenerationSettings,
                   seed: int = 13, batch_size: int = SAMPLE_BATCH) -> list[str]:
    """Replies to `contexts` generated with the bot's sampling settings, `batch_size` at a
    time (prompts padded on the left: one forward pass serves the batch, several times
    faster than one by one on CPU — bench/evaluation.py), each batch from the same seed so
    base and adapter are compared like for like."""
    prompts = [prompt_ids(tokenizer, context) for context in contexts]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    device = next(model.parameters()).device
    replies: list[str] = []
    for start in range(0, len(prompts), batch_size):
        batch = prompts[start:start + batch_size]
        width = max(len(p) for p in batch)
        ids = torch.tensor([[pad] * (width - len(p)) + p for p in batch], device=device)
        mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in batch], device=device)
        torch.manual_seed(seed + start)
        with torch.no_grad():
            output = model.generate(input_ids=ids, attention_mask=mask, **generation.generate_kwargs(tokenizer) | {"pad_token_id": pad})
        replies += [tokenizer.decode(row[width:], skip_special_tokens=True).strip() for row in output]
    return replies


def style_stats(texts: list[str]) -> dict[str, float]:
    if not texts:
        return {}
    lengths = [len(_WORD.findall(t)) for t in texts]
    return {
        "mean_words": round(statistics.fmean(lengths), 2),
        "median_words": float(statistics.median(lengths)),
        "emoji_rate": round(sum(bool(_EMOJI.search(t)) for t in texts) / len(texts), 3),
        "lowercase_rate": round(sum(t == t.lower() for t in texts) / len(texts), 3),
        "exclamation_rate": round(sum("!" in t for t in texts) / len(texts), 3),
        "question_rate": round(sum("?" in t for t in texts) / len(texts), 3),
        "ends_with_period_rate": round(sum(t.rstrip().endswith(".") for t in texts) / len(texts), 3),
    }


def vocabulary_overlap(generated: list[str], real: list[str]) -> float:
    a = {w.lower() for t in generated for w in _WORD.findall(t)}
    b = {w.lower() for t in real for w in _WORD.findall(t)}
    return round(len(a & b) / len(a | b), 3) if a | b else 0.0


def load_embedder(embed_model: str) -> Any:
    """The memory's embedder for the measures that compare meaning; None (and a warning) when it cannot load."""
    try:
        from persona.memory.embeddings import Embedder, resolve_embed_model

        return Embedder(resolve_embed_model(embed_model))
    except Exception as exc:  # noqa: BLE001 - a missing embedder costs the figures that need it, not the evaluation
        log.warning("the embedder did not load (%s): similarity, relevance and fact-use verdicts skipped", exc)
        return None


def embedding_similarity(embedder: Any, generated: list[str], real: list[str]) -> float | None:
    if not generated or embedder is None:
        return None
    try:
        a = embedder.embed_passages([g or " " for g in generated])
        b = embedder.embed_passages(real)
    except Exception as exc:  # noqa: BLE001 - a missing embedder costs one figure, not the evaluation
        log.warning("embedding similarity skipped: %s", exc)
        return None
    return round(float((a * b).sum(axis=1).mean()), 4)


def evaluate(spec: Any, adapter_dir: str, heldout: list[Example], options: TrainOptions, *, compare_adapter: str | None = None,
             samples: int = 8, generation: GenerationSettings | None = None, embed_model: str = "", report_dir: Path | None = None,
             log_history: list[dict[str, Any]] | None = None, train: list[Example] | None = None, probes: list[Probe] | None = None,
             grounding: GroundingSettings | None = None) -> dict[str, Any]:
    from peft import PeftModel

    from persona.runtime.model import load_base_model, load_tokenizer

    chosen = reply_contexts(heldout, samples)
    log.info("evaluating on %d held-out examples: loss of the base model%s and the adapter, then %d generated replies each",
             len(heldout), ", the active adapter" if compare_adapter else "", len(chosen))
    if 0 < len(chosen) < min(samples, EVAL_CONTEXTS):
        log.warning("only %d held-out contexts (the evaluation wants %d): its intervals are wide — read them before the figures",
                    len(chosen), min(samples, EVAL_CONTEXTS))
    tokenizer = load_tokenizer(spec)
    model = PeftModel.from_pretrained(load_base_model(spec), adapter_dir, adapter_name="candidate")
    if compare_adapter:
        model.load_adapter(compare_adapter, adapter_name="active")
    model.eval()

    losses: dict[str, float | None] = {}
    last = options.loss_on_last_turn
    with model.disable_adapter():
        losses["base"] = heldout_loss(model, tokenizer, heldout, options.max_seq_len, options.batch_size, last_only=last)
    model.set_adapter("candidate")
    losses["candidate"] = heldout_loss(model, tokenizer, heldout, options.max_seq_len, options.batch_size, last_only=last)
    if compare_adapter:
        model.set_adapter("active")
        losses["active"] = heldout_loss(model, tokenizer, heldout, options.max_seq_len, options.batch_size, last_only=last)
        model.set_adapter("candidate")

    contexts = [served_context(e.messages[:turn]) for e, turn in chosen]
    real = [e.messages[turn]["content"] for e, turn in chosen]
    generation = generation or GenerationSettings.from_settings(Settings.model_construct())
    with model.disable_adapter():
        base_replies = sample_replies(model, tokenizer, contexts, generation)
    adapter_replies = sample_replies(model, tokenizer, contexts, generation)
    embedder = load_embedder(embed_model) if chosen or probes else None

    metrics: dict[str, Any] = {
        "contexts": {"asked": samples, "used": len(chosen), "heldout": len(heldout), "owner_turns": len(reply_contexts(heldout, None))},
        "heldout_examples": len(heldout),
        "heldout_loss": losses,
        "heldout_perplexity": {k: (round(math.exp(v), 3) if v is not None and v < 50 else None) for k, v in losses.items()},
        "style": {"real": style_stats(real), "base": style_stats(base_replies), "adapter": style_stats(adapter_replies)},
        "vocabulary_overlap": {"base": vocabulary_overlap(base_replies, real), "adapter": vocabulary_overlap(adapter_replies, real)},
        "embedding_similarity": {
            "base": embedding_similarity(embedder, base_replies, real),
            "adapter": embedding_similarity(embedder, adapter_replies, real),
        },
        "samples": [{"context": c[-1]["content"][-300:], "real": r, "base": b, "adapter": a, "message_ids": e.message_ids}
                    for (e, _turn), c, r, b, a in zip(chosen, contexts, real, base_replies, adapter_replies)],
    }
    metrics |= likeness_metrics(train or [], heldout, real, base_replies, adapter_replies, embedder)
    if probes:
        metrics["fact_use"] = probe_fact_use(model, tokenizer, probes, generation, grounding, embedder)
    if report_dir is not None:
        write_report(report_dir, metrics, log_history or [], real, base_replies, adapter_replies)
    return metrics


def probe_fact_use(model: Any, tokenizer: Any, probes: list[Probe], generation: GenerationSettings,
                   grounding: GroundingSettings | None, embedder: Any = None) -> dict[str, Any]:
    """Greedy answers of the base model and the adapter to the fact probes, with the
    reply pipeline's grounding (trainer/fact_probes.py), and the consistency check's
    verdict on each (none without an embedder)."""
    greedy = replace(generation, greedy=True)

    def answers() -> list[str]:
        return [generate(model, tokenizer, p.messages, greedy, evidence=p.evidence, grounding=grounding).text for p in probes]

    with model.disable_adapter():
        base = answers()
    return fact_use(probes, {"base": base, "adapter": answers()}, embedder)


def likeness_metrics(train: list[Example], heldout: list[Example], real: list[str], base: list[str], adapter: list[str],
                     embedder: Any = None) -> dict[str, Any]:
    """Owner-likeness, real-vs-generated accuracy with its interval and the classifiers'
    ceiling (trainer/likeness.py), range and relevance (trainer/voice_range.py), and 95%
    intervals of the style statistics that are means."""
    owner_train, others_train = speakers_texts(train)
    owner_heldout, others_heldout = speakers_texts(heldout)
    generated = {"base": base, "adapter": adapter}
    intervals: dict[str, dict[str, Any]] = {}
    for who, texts in (("real", real), *generated.items()):
        if texts:
            lengths = [float(len(_WORD.findall(t))) for t in texts]
            intervals[who] = {"mean_words": interval(lengths), "emoji_rate": interval([float(bool(_EMOJI.search(t))) for t in texts]),
                              "lowercase_rate": interval([float(t == t.lower()) for t in texts])}
    told = {who: discriminate(real, texts) for who, texts in generated.items()}
    # What "indistinguishable" looks like at this size: the owner's real replies against as many other held-out lines of theirs.
    # (When the evaluation replies to nearly every held-out turn, one half of the real replies against the other.)
    others_of_owner = [line for line in owner_heldout if line not in set(real)][: len(real)]
    if len(others_of_owner) >= len(real) // 2:
        told["owner"] = discriminate(real[: len(others_of_owner)], others_of_owner)
    else:
        told["owner"] = discriminate(real[0::2], real[1::2])
    return {
        "owner_likeness": owner_likeness(owner_train, others_train, owner_heldout, others_heldout, generated),
        "real_vs_generated_accuracy": {who: (t or {}).get("accuracy") for who, t in told.items() if who != "owner"},
        "real_vs_generated": told,
        "attribution_ceiling": attribution_ceiling(owner_train, others_train, owner_heldout, others_heldout),
        "range": range_and_relevance(embedder, owner_train, owner_heldout, real, generated),
        "style_intervals": intervals,
    }


def speakers_texts(examples: list[Example]) -> tuple[list[str], list[str]]:
    """(the owner's turns, everyone else's lines without the speaker's name) of `examples`."""
    owner: list[str] = []
    others: list[str] = []
    for example in examples:
        for message in example.messages:
            if message["role"] == "assistant":
                owner.append(message["content"])
            elif message["role"] == "user":
                for line in message["content"].split("\n"):
                    _speaker, sep, text = line.partition(": ")
                    if sep and text.strip() and not line.startswith("["):
                        others.append(text)
    return owner, others


def reply_contexts(heldout: list[Example], samples: int | None) -> list[tuple[Example, int]]:
    """(example, index of an owner turn) for every owner turn of the held-out examples, the
    latest `samples` of them (None: all): each turn is replied to from what came before it.

    Every turn, not only each example's last: a long conversation is one example of up to
    24 turns, and one context per example left an evaluation of a chat-heavy history with
    a handful of replies to judge (a play's last third: 8 examples, 60 owner turns)."""
    if samples == 0:
        return []
    turns = [(e, i) for e in sorted(heldout, key=lambda e: e.last_at) for i, m in enumerate(e.messages) if m["role"] == "assistant" and i > 0]
    return turns if samples is None else turns[-samples:]


def served_context(messages: list[dict[str, str]], limit: int = REPLY_CONTEXT_MESSAGES) -> list[dict[str, str]]:
    """`messages` cut to what the bot would be given: the system prompt and the turns holding
    about the last `limit` messages (one per line), the place-and-day line kept in front.

    Whatever the training examples looked like (windows of 24 turns, or one per turn), each
    recipe is then judged on the same contexts, the ones replies are asked in."""
    system, turns = messages[:1], messages[1:]
    if not turns:
        return messages
    first = turns[0]["content"]
    opening = first.split("\n", 1)[0] if turns[0]["role"] == "user" and first.startswith("[") else None
    start, held = len(turns) - 1, 0
    while start >= 0:
        lines = turns[start]["content"].count("\n") + 1 - (start == 0 and opening is not None)
        if held + lines > limit and start < len(turns) - 1:
            break
        held += lines
        start -= 1
    kept = [dict(t) for t in turns[start + 1:]]
    if start >= 0 and opening is not None:
        if kept[0]["role"] == "user":
            kept[0]["content"] = f"{opening}\n{kept[0]['content']}"
        else:
            kept.insert(0, {"role": "user", "content": opening})
    return system + kept


def last_assistant(messages: list[dict[str, str]]) -> int:
    return max(i for i, m in enumerate(messages) if m["role"] == "assistant")


def write_report(folder: Path, metrics: dict[str, Any], history: list[dict[str, Any]], real: list[str], base: list[str],
                 adapter: list[str]) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    train_points = [(h["step"], h["loss"]) for h in history if "loss" in h]
    eval_points = [(h["step"], h["eval_loss"]) for h in history if "eval_loss" in h]
    if train_points:
        ax.plot(*zip(*train_points), marker="." if len(train_points) <= 60 else None, label="train loss")
    if eval_points:
        ax.plot(*zip(*eval_points), marker="o", label="held-out loss")
    ax.set_xlabel("step")
    ax.set_ylabel("loss per owner token")
    ax.legend()
    fig.tight_layout()
    fig.savefig(folder / "loss_curve.png", dpi=100)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 3.5))
    for label, texts in (("real", real), ("base", base), ("adapter", adapter)):
        if texts:
            ax.hist([len(_WORD.findall(t)) for t in texts], bins=range(0, 60, 3), alpha=0.5, label=label)
    ax.set_xlabel("words per reply")
    ax.set_ylabel("replies")
    ax.legend()
    fig.tight_layout()
    fig.savefig(folder / "reply_lengths.png", dpi=100)
    plt.close(fig)

    measures_plot(folder / "measures.png", metrics)

    loss = metrics["heldout_loss"]
    ppl = metrics["heldout_perplexity"]
    lines = [
        "# persona evaluation", "",
        f"Held-out examples: {metrics['heldout_examples']}", "",
        "| model | held-out loss | perplexity |", "| --- | --- | --- |",
        *[f"| {k} | {_fmt(v)} | {_fmt(ppl.get(k))} |" for k, v in loss.items()], "",
        "## Style of generated replies vs the owner's real ones", "",
        "| | " + " | ".join(metrics["style"]["real"].keys()) + " |",
        "| --- |" + " --- |" * len(metrics["style"]["real"]),
        *[f"| {who} | " + " | ".join(_fmt(v) for v in stats.values()) + " |" for who, stats in metrics["style"].items() if stats],
        "",
        f"Vocabulary overlap with real replies: base {metrics['vocabulary_overlap']['base']}, adapter {metrics['vocabulary_overlap']['adapter']}.",
        f"Embedding similarity to real replies: base {_fmt(metrics['embedding_similarity']['base'])}, "
        f"adapter {_fmt(metrics['embedding_similarity']['adapter'])}.",
        "", *_likeness_lines(metrics),
        "", *_range_lines(metrics),
        "", *_fact_use_lines(metrics.get("fact_use")),
        "", "![loss curve](loss_curve.png)", "", "![reply lengths](reply_lengths.png)", "",
        "![each measure, base vs adapter, with 95% intervals](measures.png)", "",
        *sample_lines(metrics["samples"]),
    ]
    (folder / "report.md").write_text("\n".join(lines))
    (folder / "metrics.json").write_text(json.dumps(metrics, indent=2))
    return folder / "report.md"


def _likeness_lines(metrics: dict[str, Any]) -> list[str]:
    likeness = metrics.get("owner_likeness")
    accuracy = metrics.get("real_vs_generated_accuracy", {})
    intervals = metrics.get("style_intervals", {})
    lines = ["## How owner-like", "",
             "| | owner-likeness (0: like other people, 1: like the owner's own held-out replies) "
             "| real vs generated accuracy (0.5: indistinguishable) | mean words, 95% interval |",
             "| --- | --- | --- | --- |"]
    for who in ("base", "adapter"):
        lines.append(f"| {who} | {_fmt((likeness or {}).get(who))} | {_fmt(accuracy.get(who))} | {_fmt((intervals.get(who) or {}).get('mean_words'))} |")
    lines.append(f"| real | 1 | — | {_fmt((intervals.get('real') or {}).get('mean_words'))} |")
    if likeness:
        lines += ["", f"Fitted on {likeness['texts']['train_owner']:,} owner and {likeness['texts']['train_others']:,} other messages of the training split; "
                  f"scored against {likeness['texts']['heldout_owner']:,} / {likeness['texts']['heldout_others']:,} held-out ones and "
                  f"{len(metrics.get('samples', []))} generated replies each."]
    return lines


def _range_lines(metrics: dict[str, Any]) -> list[str]:
    """Range, relevance and the discriminator with intervals (trainer/voice_range.py, trainer/likeness.py)."""
    ranged = metrics.get("range") or {}
    told = metrics.get("real_vs_generated") or {}
    relevance = ranged.get("relevance") or {}
    contexts = metrics.get("contexts") or {}
    lines = ["## Range, relevance and how often it is told apart", ""]
    if contexts and contexts.get("used", 0) < min(contexts.get("asked", 0), EVAL_CONTEXTS):
        lines += [f"**Only {contexts['used']} held-out contexts** (the evaluation wants {min(contexts['asked'], EVAL_CONTEXTS)}): "
                  "the intervals below are wide; read them before the figures.", ""]
    lines += ["| | stock-line rate | distinct-1 | distinct-2 | relevance (similarity to the real reply) | real vs generated (0.5: indistinguishable) |",
              "| --- | --- | --- | --- | --- | --- |"]
    rows = {"owner (held-out)": "owner (held-out)", "real replies": "real", "random owner line": "random owner line", "base": "base",
            "adapter": "adapter"}
    for label, key in rows.items():
        rate = (ranged.get("stock_line_rate") or {}).get(key)
        rel = relevance.get(key)
        disc = told.get("owner" if key == "real" else key)
        lines.append(f"| {label} | {_with_interval(rate, 'rate')} | {_fmt((ranged.get('distinct_1') or {}).get(key))} | "
                     f"{_fmt((ranged.get('distinct_2') or {}).get(key))} | {_with_interval(rel, 'mean')} | {_with_interval(disc, 'accuracy')} |")
    ceiling = metrics.get("attribution_ceiling")
    lines += ["", f"Stock lines: the owner's {ranged.get('stock_lines', 0)} most frequent lines of the training split (each said twice or more); "
              "a reply counts when it is one of them, or nearly. Relevance: the random owner line is the baseline a reply that "
              "answers its context beats. “real replies” in the last column: the owner's real replies against other held-out lines "
              "of theirs — what indistinguishable looks like at this size."]
    if ceiling:
        lines += ["", f"Ceiling: the owner-likeness classifier tells the owner's held-out lines from other people's with balanced accuracy "
                  f"{_with_interval(ceiling, 'balanced_accuracy')} ({ceiling['owner_lines']:,} / {ceiling['others_lines']:,} lines); "
                  "near 0.5 the likeness figures carry little."]
    return lines


def _with_interval(entry: dict[str, Any] | None, key: str) -> str:
    if not entry or entry.get(key) is None:
        return "—"
    bounds = entry.get("interval")
    return f"{_fmt(entry[key])} [{_fmt(bounds[0])}, {_fmt(bounds[1])}]" if bounds else _fmt(entry[key])


def measures_plot(path: Path, metrics: dict[str, Any]) -> None:
    """Each measure for base and adapter with its 95% interval, beside its reference (the
    owner's own figure, or the baseline): where a person would rather look than at a table."""
    import matplotlib.pyplot as plt

    ranged = metrics.get("range") or {}
    told = metrics.get("real_vs_generated") or {}
    panels = [
        ("real vs generated\n(0.5 best)", {k: told.get(k) for k in ("base", "adapter")}, "accuracy", ("owner's own", told.get("owner"))),
        ("stock-line rate", {k: (ranged.get("stock_line_rate") or {}).get(k) for k in ("base", "adapter")}, "rate",
         ("owner's own", (ranged.get("stock_line_rate") or {}).get("owner (held-out)"))),
        ("relevance", {k: (ranged.get("relevance") or {}).get(k) for k in ("base", "adapter")}, "mean",
         ("random line", (ranged.get("relevance") or {}).get("random owner line"))),
    ]
    fig, axes = plt.subplots(1, len(panels), figsize=(10, 3.4))
    for ax, (title, entries, key, (ref_label, reference)) in zip(axes, panels):
        names = [n for n, e in entries.items() if e and e.get(key) is not None]
        values = [entries[n][key] for n in names]
        errors = [[v - (entries[n].get("interval") or (v, v))[0] for n, v in zip(names, values)],
                  [(entries[n].get("interval") or (v, v))[1] - v for n, v in zip(names, values)]]
        ax.bar(names, values, yerr=errors if names else None, capsize=6, color=["#9aa5b1", "#3b82f6"][: len(names)])
        if reference and reference.get(key) is not None:
            ax.axhline(reference[key], color="#16a34a", linestyle="--", label=ref_label)
            ax.legend(fontsize=8)
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _consistency_lines(verdicts: dict[str, dict[str, int]] | None) -> list[str]:
    """The consistency check's verdicts on the probes' answers (persona/runtime/consistency.py)."""
    if not verdicts:
        return []
    return ["The consistency check on the same answers — what the owner said supports the claim, says otherwise, says nothing "
            "either way, or the answer claims nothing:", "",
            "| model | supported | contradicted | unsupported | no claim |", "| --- | --- | --- | --- | --- |",
            *[f"| {who} | {v['supported']} | {v['contradicted']} | {v['unsupported']} | {v['none']} |" for who, v in verdicts.items()], ""]


def _fact_use_lines(table: dict[str, Any] | None) -> list[str]:
    if not table:
        return ["## Fact use", "", "No fact probes: the training split holds no question the owner answered in the first person, or no memory is built."]
    found = table["in_recalled_memories"]
    lines = ["## Fact use", "",
             f"{table['probes']} questions the owner answered in the training history, asked again with recall (greedy). "
             f"Recall found the answer's key word for {found}; grounding evidence was found for {table['with_evidence']}.", "",
             "| model | replies stating the fact (of those recall found) |", "| --- | --- |",
             *[f"| {who} | {table[who]}/{found} |" for who in ("base", "adapter")], "",
             *_consistency_lines(table.get("consistency")),
             "Each question with both answers: `metrics.json` → `fact_use.samples` (kept out of this page so that a forget can remove them)."]
    return lines


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)

"""Training examples as token ids: labels on the owner's turns only, batches padded little.

Loss falls on the owner's turns only (with PERSONA_TRAIN_EXAMPLES=turns, on the last
one: each example ends at the turn it teaches): the chat template renders the whole
conversation, and the character spans of assistant turns (found by rendering each
prefix) select which tokens get labels. Discord messages are short, so padding is the
main waste: batches are grouped by length (`length_grouped_order`), which keeps over
90% of the tokens in a batch real.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch


def encode(tokenizer: Any, messages: list[dict[str, str]], max_len: int, *, last_only: bool = False) -> dict[str, list[int]] | None:
    """input_ids and labels (-100 outside the owner's turns, or outside the last one with
    `last_only`); None if nothing to learn."""
    text = tokenizer.apply_chat_template(messages, tokenize=False)
    spans = _assistant_spans(tokenizer, messages, text)[-1:] if last_only else _assistant_spans(tokenizer, messages, text)
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids: list[int] = encoded["input_ids"]
    labels = [-100] * len(ids)
    span_index = 0
    for position, (start, _end) in enumerate(encoded["offset_mapping"]):
        while span_index < len(spans) and start >= spans[span_index][1]:
            span_index += 1
        if span_index < len(spans) and spans[span_index][0] <= start < spans[span_index][1]:
            labels[position] = ids[position]
    if len(ids) > max_len:
        # Keep the system prompt and the latest turns.
        head = min(_prefix_tokens(tokenizer, messages), max_len // 4)
        tail = max_len - head
        ids, labels = ids[:head] + ids[-tail:], [-100] * head + labels[-tail:]
    if all(label == -100 for label in labels):
        return None
    return {"input_ids": ids, "labels": labels}


def _assistant_spans(tokenizer: Any, messages: list[dict[str, str]], text: str) -> list[tuple[int, int]]:
    """Character spans of each assistant turn (content and end-of-turn marker) in `text`."""
    spans: list[tuple[int, int]] = []
    cursor = 0
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        before = tokenizer.apply_chat_template(messages[:i], tokenize=False, add_generation_prompt=True)
        through = tokenizer.apply_chat_template(messages[: i + 1], tokenize=False)
        if text.startswith(before) and text.startswith(through) and len(through) > len(before):
            spans.append((len(before), len(through)))
            cursor = len(through)
            continue
        # Templates that rewrite earlier turns: find the content itself.
        found = text.find(message["content"], cursor)
        if found >= 0:
            spans.append((found, found + len(message["content"])))
            cursor = found + len(message["content"])
    return spans


def _prefix_tokens(tokenizer: Any, messages: list[dict[str, str]]) -> int:
    if messages and messages[0]["role"] == "system":
        rendered = tokenizer.apply_chat_template(messages[:1], tokenize=False)
        return len(tokenizer(rendered, add_special_tokens=False)["input_ids"])
    return 0


def length_grouped_order(lengths: list[int], batch_size: int, seed: int, pool_batches: int = 64) -> list[int]:
    """An order in which each run of `batch_size` items has similar lengths.

    Random pools of `pool_batches` batches are sorted by length and cut into batches,
    and the batches are shuffled: as random as plain shuffling at the batch level, with
    little padding inside a batch. (transformers' LengthGroupedSampler uses pools of
    only 4 batches on small datasets, which leaves ~15% padding on chat data.)
    """
    import random

    rng = random.Random(seed)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    pool = batch_size * pool_batches
    batches: list[list[int]] = []
    for start in range(0, len(order), pool):
        chunk = sorted(order[start : start + pool], key=lambda i: lengths[i], reverse=True)
        batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    rng.shuffle(batches)
    return [i for batch in batches for i in batch]


class EncodedDataset(torch.utils.data.Dataset):
    def __init__(self, rows: list[dict[str, list[int]]]) -> None:
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict[str, list[int]]:
        return self.rows[index]


@dataclass
class PadCollator:
    """Right-pads a batch and masks padding out of the loss.

    Our own rather than transformers' DataCollatorForSeq2Seq / DataCollatorWithPadding:
    the labels are already masked to the owner's turns by `encode` (character spans of
    the rendered chat template, which no stock collator knows), so all that is left is
    padding three tensors — and the throughput callback needs the real-token count of
    exactly what was padded."""

    pad_id: int

    def __call__(self, rows: list[dict[str, list[int]]]) -> dict[str, torch.Tensor]:
        width = max(len(r["input_ids"]) for r in rows)
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        labels = torch.full((len(rows), width), -100, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            n = len(row["input_ids"])
            ids[i, :n] = torch.tensor(row["input_ids"])
            labels[i, :n] = torch.tensor(row["labels"])
            mask[i, :n] = 1
        return {"input_ids": ids, "labels": labels, "attention_mask": mask}


class CountingCollator:
    """Wraps the collator to count real vs padded tokens for the throughput callback."""

    def __init__(self, inner: PadCollator, counter: Any) -> None:
        self.inner = inner
        self.counter = counter

    def __call__(self, rows: list[dict[str, list[int]]]) -> dict[str, torch.Tensor]:
        batch = self.inner(rows)
        mask = batch.get("attention_mask")
        self.counter.real += int(mask.sum()) if mask is not None else int(batch["input_ids"].numel())  # packed rows have no padding
        self.counter.padded += int(mask.numel()) if mask is not None else int(batch["input_ids"].numel())
        return batch

"""LoRA fine-tuning on the owner's examples (transformers Trainer + peft).

Loss falls on the owner's turns only: the chat template renders the whole
conversation, and the character spans of assistant turns (found by rendering each
prefix) select which tokens get labels. Discord messages are short, so padding is the
main waste: batches are grouped by length (`length_grouped_order`), which keeps over
90% of the tokens in a batch real; the real-token fraction is logged next to loss and
tokens/s.

This module runs in the training process (see trainer/job.py), never in the bot.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from persona.config import Settings, default_of

log = logging.getLogger(__name__)


@dataclass
class TrainOptions:
    """Everything the training process needs to know. Fields that mirror a setting take
    its default from persona.config (declared once); the rest are the trainer's own."""

    lora_rank: int = default_of("lora_rank")
    lora_alpha: int = default_of("lora_alpha")
    lora_dropout: float = default_of("lora_dropout")
    lora_targets: str = default_of("lora_targets")
    learning_rate: float = default_of("learning_rate")
    epochs: float = default_of("train_epochs")
    max_steps: int = -1
    batch_size: int = default_of("batch_size")
    grad_accumulation: int = default_of("grad_accumulation")
    max_seq_len: int = default_of("max_seq_len")
    warmup_fraction: float = 0.05
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0
    eval_steps: int = 50
    patience: int = 3
    time_budget_s: float = 0.0  # 0: no limit
    grouping: str = "length"  # "length" or "none"
    gradient_checkpointing: bool = True
    load_in_4bit: bool = default_of("load_in_4bit")
    seed: int = 13

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> TrainOptions:
        """The options of a run: the owner's settings, then the command's overrides (None: not given)."""
        options = cls(
            lora_rank=settings.lora_rank, lora_alpha=settings.lora_alpha, lora_dropout=settings.lora_dropout,
            lora_targets=settings.lora_targets, learning_rate=settings.learning_rate, epochs=settings.train_epochs,
            batch_size=settings.batch_size, grad_accumulation=settings.grad_accumulation, max_seq_len=settings.max_seq_len,
            load_in_4bit=settings.load_in_4bit,
        )
        return replace(options, **{k: v for k, v in overrides.items() if v is not None})

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


# --- tokenisation with assistant-only labels --------------------------------------------------


def encode(tokenizer: Any, messages: list[dict[str, str]], max_len: int) -> dict[str, list[int]] | None:
    """input_ids and labels (-100 outside the owner's turns); None if nothing to learn."""
    text = tokenizer.apply_chat_template(messages, tokenize=False)
    spans = _assistant_spans(tokenizer, messages, text)
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


# --- callbacks ----------------------------------------------------------------------------------


def _callbacks(options: TrainOptions) -> list[Any]:
    from transformers import TrainerCallback

    class Throughput(TrainerCallback):
        """Logs tokens/s (real tokens) and the share of real tokens in the batches."""

        def __init__(self) -> None:
            self.real = 0
            self.padded = 0
            self.started = time.perf_counter()

        def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
            if logs is not None and "loss" in logs and self.padded:
                elapsed = time.perf_counter() - self.started
                figures = {"tokens_per_s": round(self.real / max(elapsed, 1e-9), 1), "real_token_fraction": round(self.real / self.padded, 4)}
                logs.update(figures)  # shown on the progress bar
                if state.log_history and "loss" in state.log_history[-1]:
                    state.log_history[-1].update(figures)  # kept in the history (a copy of logs)

    class TimeBudget(TrainerCallback):
        def __init__(self, budget: float) -> None:
            self.budget = budget
            self.started = time.perf_counter()

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if self.budget and time.perf_counter() - self.started > self.budget:
                log.info("time budget of %.0fs reached at step %d", self.budget, state.global_step)
                control.should_training_stop = True
                control.should_save = True

    callbacks: list[Any] = [Throughput(), TimeBudget(options.time_budget_s)]
    if options.patience > 0:
        from transformers import EarlyStoppingCallback

        callbacks.append(EarlyStoppingCallback(early_stopping_patience=options.patience))
    return callbacks


class _CountingCollator:
    """Wraps the collator to count real vs padded tokens for the throughput callback."""

    def __init__(self, inner: PadCollator, counter: Any) -> None:
        self.inner = inner
        self.counter = counter

    def __call__(self, rows: list[dict[str, list[int]]]) -> dict[str, torch.Tensor]:
        batch = self.inner(rows)
        self.counter.real += int(batch["attention_mask"].sum())
        self.counter.padded += int(batch["attention_mask"].numel())
        return batch


# --- training -------------------------------------------------------------------------------------


@dataclass
class TrainResult:
    adapter_dir: str
    steps: int
    train_loss: float | None
    best_eval_loss: float | None
    tokens_per_s: float | None
    real_token_fraction: float | None
    seconds: float
    log_history: list[dict[str, Any]] = field(default_factory=list)


def lora_targets(value: str) -> str | list[str]:
    return "all-linear" if value.strip() in ("", "all-linear") else [t.strip() for t in value.split(",") if t.strip()]


def prepare_model(spec: Any, options: TrainOptions, init_adapter: str | None) -> tuple[Any, Any]:
    """(peft model, tokenizer): a fresh LoRA, or the given adapter continued."""
    from peft import LoraConfig, PeftModel, get_peft_model, prepare_model_for_kbit_training

    from persona.runtime.model import device_kind, load_base_model, load_tokenizer

    tokenizer = load_tokenizer(spec)
    quantise = options.load_in_4bit and device_kind() == "cuda" and _bitsandbytes()
    base = load_base_model(spec, for_training=True, load_in_4bit=quantise)
    if quantise:
        base = prepare_model_for_kbit_training(base, use_gradient_checkpointing=options.gradient_checkpointing)
    if init_adapter:
        model = PeftModel.from_pretrained(base, init_adapter, is_trainable=True)
    else:
        config = LoraConfig(
            r=options.lora_rank, lora_alpha=options.lora_alpha, lora_dropout=options.lora_dropout,
            target_modules=lora_targets(options.lora_targets), task_type="CAUSAL_LM", bias="none",
        )
        model = get_peft_model(base, config)
    if options.gradient_checkpointing:
        model.enable_input_require_grads()
    return model, tokenizer


def _bitsandbytes() -> bool:
    import importlib.util

    return importlib.util.find_spec("bitsandbytes") is not None


def train(spec: Any, train_rows: list[list[dict[str, str]]], eval_rows: list[list[dict[str, str]]], output_dir: Path,
          options: TrainOptions, *, init_adapter: str | None = None) -> TrainResult:
    """Train a LoRA adapter; checkpoints in output_dir/checkpoints (resumed if present),
    the final adapter in output_dir/adapter."""
    from transformers import Trainer, TrainingArguments, set_seed

    set_seed(options.seed)
    started = time.perf_counter()
    model, tokenizer = prepare_model(spec, options, init_adapter)
    encoded = [r for r in (encode(tokenizer, m, options.max_seq_len) for m in train_rows) if r]
    if options.grouping == "length":
        encoded = [encoded[i] for i in length_grouped_order([len(r["input_ids"]) for r in encoded], options.batch_size, options.seed)]
    train_set = EncodedDataset(encoded)
    eval_set = EncodedDataset([r for r in (encode(tokenizer, m, options.max_seq_len) for m in eval_rows) if r])
    if len(train_set) == 0:
        raise ValueError("no training example has an owner turn to learn")
    checkpoints = output_dir / "checkpoints"
    steps_per_epoch = math.ceil(len(train_set) / (options.batch_size * options.grad_accumulation * _world_size()))
    total_steps = options.max_steps if options.max_steps > 0 else max(1, math.ceil(steps_per_epoch * options.epochs))
    eval_steps = max(1, min(options.eval_steps, total_steps))
    import torch as _torch

    cuda = _torch.cuda.is_available()
    args = TrainingArguments(
        output_dir=str(checkpoints),
        per_device_train_batch_size=options.batch_size,
        per_device_eval_batch_size=options.batch_size,
        gradient_accumulation_steps=options.grad_accumulation,
        learning_rate=options.learning_rate,
        lr_scheduler_type="cosine",
        warmup_steps=max(1, int(total_steps * options.warmup_fraction)),
        weight_decay=options.weight_decay,
        max_grad_norm=options.max_grad_norm,
        num_train_epochs=options.epochs,
        max_steps=total_steps,
        logging_steps=max(1, min(10, eval_steps)),
        eval_strategy="steps" if len(eval_set) else "no",
        eval_steps=eval_steps,
        save_strategy="steps",
        save_steps=eval_steps,
        save_total_limit=2,
        load_best_model_at_end=bool(len(eval_set)),
        metric_for_best_model="eval_loss",
        greater_is_better=False,
        bf16=cuda and _torch.cuda.is_bf16_supported(),
        gradient_checkpointing=options.gradient_checkpointing,
        gradient_checkpointing_kwargs={"use_reentrant": False},
        # Length grouping is baked into the dataset's order (length_grouped_order).
        train_sampling_strategy="sequential" if options.grouping == "length" else "random",
        report_to="none",
        remove_unused_columns=False,
        dataloader_num_workers=0,
        ddp_backend="gloo" if not cuda and _world_size() > 1 else None,
        use_cpu=not cuda,
        seed=options.seed,
        save_only_model=False,
    )
    callbacks = _callbacks(options)
    collator = _CountingCollator(PadCollator(tokenizer.pad_token_id), callbacks[0])
    trainer = Trainer(
        model=model, args=args, train_dataset=train_set, eval_dataset=eval_set if len(eval_set) else None,
        data_collator=collator, processing_class=tokenizer, callbacks=callbacks,
    )
    resume = any(checkpoints.glob("checkpoint-*"))
    if resume:
        log.info("resuming from the last checkpoint in %s", checkpoints)
    output = trainer.train(resume_from_checkpoint=True if resume else None)
    adapter_dir = output_dir / "adapter"
    if trainer.is_world_process_zero():
        trainer.model.save_pretrained(adapter_dir)
    history = trainer.state.log_history
    throughput = [h for h in history if "tokens_per_s" in h]
    evals = [h["eval_loss"] for h in history if "eval_loss" in h]
    return TrainResult(
        adapter_dir=str(adapter_dir),
        steps=trainer.state.global_step,
        train_loss=float(output.training_loss) if output.training_loss is not None else None,
        best_eval_loss=min(evals) if evals else None,
        tokens_per_s=throughput[-1]["tokens_per_s"] if throughput else None,
        real_token_fraction=throughput[-1]["real_token_fraction"] if throughput else None,
        seconds=round(time.perf_counter() - started, 1),
        log_history=history,
    )


def _world_size() -> int:
    from accelerate import PartialState

    return PartialState().num_processes

"""LoRA fine-tuning on the owner's examples (transformers Trainer + peft).

Examples are encoded with labels on the owner's turns only and ordered in batches of
similar length (`trainer.encoding`); the real-token fraction is logged next to loss and
tokens/s.

This module runs in the training process (see trainer/job.py), never in the bot.
"""

from __future__ import annotations

import logging
import math
import re
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from persona.config import Settings, default_of
from trainer.encoding import CountingCollator, EncodedDataset, PadCollator, encode, length_grouped_order

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
    loss_on_last_turn: bool = False  # PERSONA_TRAIN_EXAMPLES=turns: each example teaches its last owner turn only
    neftune_alpha: float = 0.0  # NEFTune noise on the input embeddings while training (0: off); a candidate of bench/likeness.py
    warmup_fraction: float = 0.05
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0
    eval_steps: int = default_of("eval_steps")
    patience: int = 3
    time_budget_s: float = 0.0  # 0: no limit
    grouping: str = "length"  # "length", "none" or "packed" (padding-free rows, positions restarting per example)
    chunked_loss: bool = True  # trainer/loss.py; False: the model's own loss (full logits), for bench/train.py
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
            load_in_4bit=settings.load_in_4bit, eval_steps=settings.eval_steps, loss_on_last_turn=settings.train_examples == "turns",
        )
        return replace(options, **{k: v for k, v in overrides.items() if v is not None})

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


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

    class FirstStep(TrainerCallback):
        """The time the run will take, from its first step (trainer/estimate.py says it up front when an earlier run here tells)."""

        def __init__(self) -> None:
            self.started = time.perf_counter()

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if state.global_step == 1 and state.max_steps > 1:
                took = time.perf_counter() - self.started
                rest = took * (state.max_steps - 1)
                if options.time_budget_s:
                    rest = min(rest, max(0.0, options.time_budget_s - took))
                log.info("step 1 of %d took %.1f s: about %s more", state.max_steps, took, minutes(rest))

    callbacks: list[Any] = [Throughput(), TimeBudget(options.time_budget_s), FirstStep()]
    if options.patience > 0:
        from transformers import EarlyStoppingCallback

        callbacks.append(EarlyStoppingCallback(early_stopping_patience=options.patience))
    return callbacks


def minutes(seconds: float) -> str:
    """A duration as a person reads an estimate: seconds up to a minute and a half, then minutes."""
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"


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


def lora_targets(value: str, model: Any = None) -> str | list[str]:
    """peft's target_modules for PERSONA_LORA_TARGETS. A model with a vision tower
    (Gemma 3 4B/12B/27B) gets LoRA on its language model only: a regular expression
    over the module names under the decoder, since peft's "all-linear" would also
    adapt the vision tower and the projector, which persona's text never trains."""
    names = [t.strip() for t in value.split(",") if t.strip() and t.strip() != "all-linear"]
    prefix = _language_model_prefix(model) if model is not None else None
    if prefix is None:
        return names or "all-linear"
    if not names:
        import torch

        decoder = model.get_submodule(prefix)
        names = sorted({name.rsplit(".", 1)[-1] for name, module in decoder.named_modules() if isinstance(module, torch.nn.Linear)})
    return rf"^{re.escape(prefix)}\..*\.({'|'.join(map(re.escape, names))})$"


def _language_model_prefix(model: Any) -> str | None:
    """The module name of the language model inside a text + vision model; None for a text-only model."""
    if not any("vision" in name for name, _ in model.named_modules()) or not hasattr(model, "get_decoder"):
        return None
    decoder = model.get_decoder()
    return next((name for name, module in model.named_modules() if module is decoder and name), None)


def prepare_model(spec: Any, options: TrainOptions, init_adapter: str | None) -> tuple[Any, Any]:
    """(peft model, tokenizer): a fresh LoRA, or the given adapter continued."""
    from peft import (
        LoraConfig,
        PeftModel,
        get_peft_model,
        prepare_model_for_kbit_training,
    )

    from persona.runtime.model import device_kind, load_base_model, load_tokenizer
    from persona.runtime.turns import given_marker_ids

    tokenizer = load_tokenizer(spec)
    quantise = options.load_in_4bit and device_kind() == "cuda" and _bitsandbytes()
    base = load_base_model(spec, for_training=True, load_in_4bit=quantise)
    if quantise:
        base = prepare_model_for_kbit_training(base, use_gradient_checkpointing=options.gradient_checkpointing)
    if init_adapter:
        model = PeftModel.from_pretrained(base, init_adapter, is_trainable=True)
    else:
        markers = given_marker_ids(tokenizer)  # a base model learns to end its turn (persona/runtime/turns.py)
        config = LoraConfig(
            r=options.lora_rank, lora_alpha=options.lora_alpha, lora_dropout=options.lora_dropout,
            target_modules=lora_targets(options.lora_targets, base), task_type="CAUSAL_LM", bias="none",
            trainable_token_indices=markers or None,
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
    from transformers import Trainer, set_seed

    from trainer.loss import ChunkedLossTrainer

    set_seed(options.seed)
    started = time.perf_counter()
    model, tokenizer = prepare_model(spec, options, init_adapter)
    last = options.loss_on_last_turn
    encoded = [r for r in (encode(tokenizer, m, options.max_seq_len, last_only=last) for m in train_rows) if r]
    if options.grouping == "length":
        encoded = [encoded[i] for i in length_grouped_order([len(r["input_ids"]) for r in encoded], options.batch_size, options.seed)]
    train_set = EncodedDataset(encoded)
    eval_set = EncodedDataset([r for r in (encode(tokenizer, m, options.max_seq_len, last_only=last) for m in eval_rows) if r])
    if len(train_set) == 0:
        raise ValueError("no training example has an owner turn to learn")
    checkpoints = output_dir / "checkpoints"
    args = _training_arguments(options, checkpoints, len(train_set), has_eval=bool(len(eval_set)))
    callbacks = _callbacks(options)
    collator = CountingCollator(_collator(options, tokenizer), callbacks[0])
    trainer = (ChunkedLossTrainer if options.chunked_loss else Trainer)(
        model=model, args=args, train_dataset=train_set, eval_dataset=eval_set if len(eval_set) else None,
        data_collator=collator, processing_class=tokenizer, callbacks=callbacks,
    )
    resume = any(checkpoints.glob("checkpoint-*"))
    if resume:
        log.info("resuming from the last checkpoint in %s", checkpoints)
    output = None if _finished_in_checkpoint(trainer, checkpoints, args.max_steps) else trainer.train(resume_from_checkpoint=True if resume else None)
    adapter_dir = output_dir / "adapter"
    if trainer.is_world_process_zero():
        trainer.model.save_pretrained(adapter_dir)
    return _result(trainer, output, adapter_dir, time.perf_counter() - started)


def _collator(options: TrainOptions, tokenizer: Any) -> Any:
    if options.grouping == "packed":
        from transformers import DataCollatorWithFlattening

        # One row of the whole batch; transformers turns restarting position ids into a
        # block-diagonal causal mask, so no example attends to another.
        return DataCollatorWithFlattening(return_position_ids=True, separator_id=-100)
    return PadCollator(tokenizer.pad_token_id)


def _finished_in_checkpoint(trainer: Any, checkpoints: Path, max_steps: int) -> bool:
    """A run killed after its last checkpoint (while saving the adapter or evaluating) has
    nothing left to train. transformers, resumed at the final step, re-enters the epoch
    and trains a few steps more than asked; instead the best checkpoint's weights and the
    run's state are loaded as they were, so the result is the uninterrupted one."""
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file
    from transformers import TrainerState

    numbered = sorted(checkpoints.glob("checkpoint-*/trainer_state.json"), key=lambda p: int(p.parent.name.split("-")[1]))
    if not numbered:
        return False
    state = TrainerState.load_from_json(str(numbered[-1]))
    if state.global_step < max_steps:
        return False
    best = Path(state.best_model_checkpoint) if state.best_model_checkpoint else numbered[-1].parent
    set_peft_model_state_dict(trainer.model, load_file(str(best / "adapter_model.safetensors")))
    trainer.state = state
    log.info("the last checkpoint is the end of training (step %d): keeping %s", state.global_step, best.name)
    return True


def _result(trainer: Any, output: Any, adapter_dir: Path, seconds: float) -> TrainResult:
    history = trainer.state.log_history
    throughput = [h for h in history if "tokens_per_s" in h]
    evals = [h["eval_loss"] for h in history if "eval_loss" in h]
    return TrainResult(
        adapter_dir=str(adapter_dir),
        steps=trainer.state.global_step,
        train_loss=float(output.training_loss) if output is not None and output.training_loss is not None else None,
        best_eval_loss=min(evals) if evals else None,
        tokens_per_s=throughput[-1]["tokens_per_s"] if throughput else None,
        real_token_fraction=throughput[-1]["real_token_fraction"] if throughput else None,
        seconds=round(seconds, 1),
        log_history=history,
    )


def _training_arguments(options: TrainOptions, checkpoints: Path, examples: int, *, has_eval: bool) -> Any:
    """transformers' TrainingArguments for this run: cosine schedule with warm-up, an
    evaluation (and checkpoint) every `eval_steps`, the best checkpoint kept at the end."""
    from transformers import TrainingArguments

    steps_per_epoch = math.ceil(examples / (options.batch_size * options.grad_accumulation * _world_size()))
    total_steps = options.max_steps if options.max_steps > 0 else max(1, math.ceil(steps_per_epoch * options.epochs))
    eval_steps = max(1, min(options.eval_steps, total_steps))
    import torch as _torch

    cuda = _torch.cuda.is_available()
    return TrainingArguments(
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
        logging_steps=max(1, total_steps // 100),  # ~100 points on the loss curve, every step of a short run
        eval_strategy="steps" if has_eval else "no",
        prediction_loss_only=True,  # evaluation wants the loss only: never gather the logits
        eval_steps=eval_steps,
        save_strategy="steps",
        save_steps=eval_steps,
        save_total_limit=2,
        load_best_model_at_end=has_eval,
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
        neftune_noise_alpha=options.neftune_alpha or None,
    )


def _world_size() -> int:
    from accelerate import PartialState

    return PartialState().num_processes

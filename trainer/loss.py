"""The causal-LM loss without materialising the logits of every position.

A model's own loss computes fp32 logits for every token of the batch (8 × 512 ×
49,152 for SmolLM2 is 0.8 GB; Gemma 3's 262k vocabulary makes it 4.3 GB), then keeps
copies of them for the softmax and its gradient. Only the owner's turns carry labels,
and the logits of one position are cheap to recompute, so the loss here is taken from
the decoder's last hidden states:

- the forward pass asks the model for the logits of one position only
  (`logits_to_keep=1`) and a hook on the decoder keeps its hidden states;
- only the labelled positions go through the output head, in chunks of
  `CHUNK_TOKENS`, each under activation checkpointing, so at most one chunk's logits
  exist at a time, in the forward pass and in the backward pass.

The sum of token losses is divided exactly as transformers divides it
(`num_items_in_batch` across gradient accumulation and processes), so losses and
gradients equal the model's own up to float rounding (a test checks both).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint
from transformers import Trainer

log = logging.getLogger(__name__)

CHUNK_TOKENS = 1024
IGNORE = -100


def causal_lm_of(model: Any) -> Any:
    """The transformers causal LM inside a peft model (or a DDP wrapper of one)."""
    inner = getattr(model, "module", model)  # DistributedDataParallel
    return inner.get_base_model() if hasattr(inner, "get_base_model") else inner


def _decoder_and_head(causal_lm: Any) -> tuple[torch.nn.Module, torch.nn.Module] | None:
    decoder = getattr(causal_lm, "model", None)
    head = causal_lm.get_output_embeddings() if hasattr(causal_lm, "get_output_embeddings") else None
    if not isinstance(decoder, torch.nn.Module) or not isinstance(head, torch.nn.Module):
        return None
    return decoder, head


@contextmanager
def _last_hidden_state(decoder: torch.nn.Module) -> Iterator[list[torch.Tensor]]:
    kept: list[torch.Tensor] = []

    def keep(_module: Any, _args: Any, output: Any) -> None:
        kept.append(output.last_hidden_state if hasattr(output, "last_hidden_state") else output[0])

    handle = decoder.register_forward_hook(keep)
    try:
        yield kept
    finally:
        handle.remove()


def labelled_loss_sum(hidden: torch.Tensor, labels: torch.Tensor, head: torch.nn.Module, softcap: float | None = None,
                      chunk_tokens: int | None = None) -> tuple[torch.Tensor, int]:
    """(sum of next-token cross-entropies over labelled positions, how many there are)."""
    chunk_tokens = chunk_tokens or CHUNK_TOKENS
    targets = labels[:, 1:]
    keep = targets != IGNORE
    states = hidden[:, :-1, :][keep]
    wanted = targets[keep]
    total = hidden.new_zeros((), dtype=torch.float32)
    for start in range(0, wanted.shape[0], chunk_tokens):
        piece = slice(start, start + chunk_tokens)
        total = total + checkpoint(_chunk_loss, states[piece], wanted[piece], head, softcap, use_reentrant=False)
    return total, int(wanted.shape[0])


def _chunk_loss(states: torch.Tensor, wanted: torch.Tensor, head: torch.nn.Module, softcap: float | None) -> torch.Tensor:
    logits = head(states).float()
    if softcap:
        logits = torch.tanh(logits / softcap) * softcap
    return F.cross_entropy(logits, wanted, reduction="sum")


def token_loss_sum(model: Any, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int]:
    """(summed loss over the labelled next tokens of `batch`, their number), the
    logits computed a chunk at a time (or all at once for a model without a separate
    decoder and output head)."""
    causal_lm = causal_lm_of(model)
    parts = _decoder_and_head(causal_lm)
    forward = {k: v for k, v in batch.items() if k != "labels"}
    labels = batch["labels"]
    if parts is None:
        logits = model(**forward).logits[:, :-1].float()
        targets = labels[:, 1:]
        total = F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1), ignore_index=IGNORE, reduction="sum")
        return total, int((targets != IGNORE).sum())
    decoder, head = parts
    with _last_hidden_state(decoder) as kept:
        model(**forward, logits_to_keep=1)
    return labelled_loss_sum(kept[-1], labels, head, _softcap(causal_lm.config))


def _softcap(config: Any) -> float | None:
    """Gemma 2's final logit soft-capping, if the (text) config has one."""
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    return getattr(text, "final_logit_softcapping", None)


class ChunkedLossTrainer(Trainer):
    """transformers' Trainer with the loss of `token_loss_sum`, divided as Trainer divides its own."""

    def compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool = False,
                     num_items_in_batch: torch.Tensor | int | None = None) -> Any:
        if "labels" not in inputs:
            return super().compute_loss(model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch)
        total, count = token_loss_sum(model, inputs)
        loss = total / (num_items_in_batch if num_items_in_batch is not None else max(count, 1))
        if num_items_in_batch is not None and self.args.average_tokens_across_devices:
            loss = loss * (self.accelerator.num_processes // self.get_tp_size())  # as Trainer does: DDP averages gradients
        return (loss, {"loss": loss}) if return_outputs else loss

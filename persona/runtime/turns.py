"""Turn formats for base models, whose tokenizers carry no chat template.

An instruction-tuned model brings its chat template and persona uses it. A base
model (google/gemma-3-270m, a Llama 3 base) has none, so persona gives it its own
family's turn format — the one its instruction-tuned sibling uses, whose marker tokens
are already in its vocabulary — and makes the end-of-turn marker the token that ends
generation. The template is set on the tokenizer itself, so training examples,
evaluation and replies all render through the same `apply_chat_template`, and an
adapter is served exactly the frame it was trained on.

- Gemma: `<start_of_turn>user … <end_of_turn>`, the assistant is `model`, the system
  prompt opens the first user turn (Gemma has no system role).
- Llama 3: `<|start_header_id|>role<|end_header_id|>` … `<|eot_id|>`.
- Anything else: ChatML, ended by the tokenizer's own end-of-sequence token (a
  vocabulary without `<|im_end|>` has no better single token to stop at).
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)

GEMMA = (
    "{{ bos_token }}"
    "{%- if messages and messages[0]['role'] == 'system' -%}"
    "{%- set prefix = messages[0]['content'] | trim + '\n\n' -%}{%- set turns = messages[1:] -%}"
    "{%- else -%}{%- set prefix = '' -%}{%- set turns = messages -%}{%- endif -%}"
    "{%- if not turns and prefix -%}{{ '<start_of_turn>user\n' + prefix }}{%- endif -%}"
    "{%- for message in turns -%}"
    "{%- set role = 'model' if message['role'] == 'assistant' else 'user' -%}"
    "{{ '<start_of_turn>' + role + '\n' + (prefix if loop.first else '') + message['content'] | trim + '<end_of_turn>\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<start_of_turn>model\n' }}{%- endif -%}"
)

LLAMA3 = (
    "{{ bos_token }}"
    "{%- for message in messages -%}"
    "{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' + message['content'] | trim + '<|eot_id|>' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{%- endif -%}"
)


def _chatml(end: str) -> str:
    return (
        "{%- for message in messages -%}"
        "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '" + end + "' + '\n' }}"
        "{%- endfor -%}"
        "{%- if add_generation_prompt -%}{{ '<|im_start|>assistant\n' }}{%- endif -%}"
    )


def family_format(tokenizer: Any) -> tuple[str, str, str]:
    """(family name, chat template, end-of-turn token) for a tokenizer without a template."""
    vocabulary = tokenizer.get_vocab()
    if "<start_of_turn>" in vocabulary and "<end_of_turn>" in vocabulary:
        return "gemma", GEMMA, "<end_of_turn>"
    if "<|start_header_id|>" in vocabulary and "<|eot_id|>" in vocabulary:
        return "llama3", LLAMA3, "<|eot_id|>"
    end = "<|im_end|>" if "<|im_end|>" in vocabulary else tokenizer.eos_token
    if not end:
        raise ValueError("it has no chat template and no end-of-sequence token to end a turn with")
    return "chatml", _chatml(end), end


MARKERS = {"gemma": ("<start_of_turn>", "<end_of_turn>"), "llama3": ("<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>")}


def given_marker_ids(tokenizer: Any) -> list[int]:
    """The token ids of the turn markers persona gave a base model (empty for a model with
    its own chat template, or for ChatML on a vocabulary that ends turns with its usual
    end-of-sequence token). A base model was never trained to produce these markers —
    measured on Gemma 3 270M after 30 LoRA steps, <end_of_turn> still ranked 162nd where
    the turn ended, so replies ran on line after line — so training also learns their
    embedding rows (peft's trainable tokens; with tied embeddings the output row too)."""
    family = getattr(tokenizer, "persona_turn_family", None)
    vocabulary = tokenizer.get_vocab()
    return [vocabulary[m] for m in MARKERS.get(family, ()) if m in vocabulary]


def give_turn_format(tokenizer: Any) -> str:
    """Set the family's turn format on a tokenizer that has no chat template; returns the family."""
    family, template, end = family_format(tokenizer)
    tokenizer.chat_template = template
    tokenizer.eos_token = end  # generation stops at the end of the persona's turn
    tokenizer.persona_turn_family = family
    log.info("the base model has no chat template: using the %s turn format", family)
    return family

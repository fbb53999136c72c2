"""Learning from the owner's decisions on drafts (persona/drafts.py), and from corrections.

Each decision is training data in the exact prompt frame the draft was made in:

- sent unchanged → a desirable example, discarded → an undesirable one (KTO, beside the
  ratings: trainer/feedback.py);
- edited → an SFT target (the owner's text answering that prompt) **and** a preference
  pair, the edit chosen over the draft (DPO: trl's DPOTrainer, after SFT and KTO, on the
  same LoRA adapter with the adapter switched off as the reference model);
- a `/persona feedback` correction → a pair too (the correction over the rated reply).

Discord's Developer Policy forbids training on message content obtained through its
APIs without Discord's permission. A decision made on the dashboard or with the CLI is
the owner's own judgment in their own words, typed outside Discord; a decision made with
Discord's buttons or edit box reaches persona through the API. So without
PERSONA_TRAIN_ON_API_CONTENT=true only dashboard and CLI decisions are learned from;
Discord ones are kept (they count in the approval rate) but not trained on.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import psycopg

from persona import drafts
from trainer.dataset import Example

log = logging.getLogger(__name__)

OUTSIDE_DISCORD = ("dashboard", "cli")


def collect(conn: psycopg.Connection, after_seq: int, *, allow_api_content: bool) -> list[drafts.Lesson]:
    found = drafts.lessons(conn, after_seq, vias=(*OUTSIDE_DISCORD, "discord") if allow_api_content else OUTSIDE_DISCORD)
    if not allow_api_content:
        skipped = len(drafts.lessons(conn, after_seq, vias=("discord",)))
        if skipped:
            log.info("%d decisions made in Discord are not trained on (PERSONA_TRAIN_ON_API_CONTENT=false); "
                     "decide on the dashboard or with `persona drafts` to teach the persona", skipped)
    return found


def as_examples(lessons: list[drafts.Lesson]) -> list[Example]:
    """Edits: the owner's words as the answer to the draft's prompt."""
    return [
        Example(messages=[*lesson.prompt, {"role": "assistant", "content": lesson.final or ""}], target_ids=[], channel_id=lesson.channel_id,
                source="draft", kind="edit", last_at=lesson.created_at.isoformat(), tags=["draft", "edit"], draft_id=lesson.draft_id)
        for lesson in lessons if lesson.kind == "edited"
    ]


def as_kto_rows(lessons: list[drafts.Lesson]) -> list[dict[str, Any]]:
    """Sent unchanged: desirable; discarded: undesirable (rows as trainer/feedback.py writes them)."""
    return [{"prompt": lesson.prompt, "completion": lesson.draft, "label": lesson.kind == "sent", "draft_id": lesson.draft_id}
            for lesson in lessons if lesson.kind in ("sent", "discarded")]


def as_pairs(lessons: list[drafts.Lesson], feedback: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Preference pairs: an edit over its draft, a correction over the reply it corrects."""
    pairs = [{"prompt": lesson.prompt, "chosen": lesson.final, "rejected": lesson.draft, "draft_id": lesson.draft_id}
             for lesson in lessons if lesson.kind == "edited"]
    pairs += [{"prompt": row["prompt"], "chosen": row["correction"], "rejected": row["completion"], "feedback_id": row["id"]}
              for row in feedback if row.get("correction") and row["correction"].strip() != row["completion"].strip()]
    return pairs


def write_rows(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    return path


def read_rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def train_dpo(spec: Any, adapter_dir: str, rows: list[dict[str, Any]], options: Any, *, steps: int = 0) -> dict[str, Any]:
    """Continue the adapter at `adapter_dir` with DPO on preference pairs; saves it in place
    (a candidate: the gate decides whether it serves)."""
    import torch
    from datasets import Dataset
    from peft import PeftModel
    from trl import DPOConfig, DPOTrainer

    from persona.runtime.model import load_base_model, load_tokenizer

    tokenizer = load_tokenizer(spec)
    model = PeftModel.from_pretrained(load_base_model(spec, for_training=True), adapter_dir, is_trainable=True)
    data = Dataset.from_list([
        {"prompt": r["prompt"], "chosen": [{"role": "assistant", "content": r["chosen"]}],
         "rejected": [{"role": "assistant", "content": r["rejected"]}]} for r in rows
    ])
    cuda = torch.cuda.is_available()
    batch = max(1, min(options.batch_size, len(rows)))
    config = DPOConfig(
        output_dir=str(Path(adapter_dir).parent / "dpo"), per_device_train_batch_size=batch,
        max_steps=steps or max(1, min(50, len(rows) // batch * 2)), learning_rate=options.learning_rate / 4, beta=0.1,
        max_length=options.max_seq_len, report_to="none", use_cpu=not cuda, bf16=cuda and torch.cuda.is_bf16_supported(), logging_steps=1,
        save_strategy="no", remove_unused_columns=False,
    )
    trainer = DPOTrainer(model=model, args=config, train_dataset=data, processing_class=tokenizer)
    output = trainer.train()
    trainer.model.save_pretrained(adapter_dir)
    history = [entry for entry in trainer.state.log_history if "rewards/accuracies" in entry]
    return {"pairs": len(rows), "steps": trainer.state.global_step, "loss": float(output.training_loss),
            "reward_accuracy": float(history[-1]["rewards/accuracies"]) if history else None}

"""Learning from thumbs up/down on the bot's replies.

Unpaired ratings become KTO examples (trl's KTOTrainer) on the same LoRA adapter, the
base model with the adapter switched off serving as the reference; the desirable and
undesirable weights balance uneven up/down counts so the rarer side is not drowned
out. A rating that comes with a correction becomes an ordinary training target (the
conversation, answered with the correction). Only the owner's ratings, and those of
PERSONA_TRUSTED_USERS, are used; everyone else's are stored but not trained on.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from trainer.dataset import Example

log = logging.getLogger(__name__)

def collect(conn: Any, trusted_ids: list[int], after_id: int = 0) -> list[dict[str, Any]]:
    """Trusted ratings newer than `after_id`, as the rows the training job reads."""
    from persona.replies import ratings

    return [rating.as_json() for rating in ratings(conn, trusted_ids, after_id)]


def corrections_as_examples(rows: list[dict[str, Any]]) -> list[Example]:
    """A correction is what the owner would have said: train on it like any reply."""
    return [
        Example(messages=[*row["prompt"], {"role": "assistant", "content": row["correction"]}], target_ids=[], channel_id=row["channel_id"],
                source="feedback", kind="correction", last_at=row["created_at"], tags=["feedback", "correction"], feedback_id=row["id"])
        for row in rows if row.get("correction")
    ]


def write_kto_rows(path: Path, rows: list[dict[str, Any]]) -> Path:
    """Ratings (`id`: the feedback's) and decisions on drafts (`draft_id`), each naming where it came from."""
    path.write_text("".join(json.dumps({"prompt": r["prompt"], "completion": r["completion"], "label": r["label"],
                                        **({"feedback_id": r["id"]} if "id" in r else {"draft_id": r["draft_id"]})}) + "\n"
                            for r in rows))
    return path


def read_kto_rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def balanced_weights(rows: list[dict[str, Any]]) -> tuple[float, float]:
    """(desirable, undesirable) weights so both sides weigh about the same in total."""
    up = sum(1 for r in rows if r["label"])
    down = len(rows) - up
    if not up or not down:
        return 1.0, 1.0
    return (max(1.0, down / up), max(1.0, up / down))


def train_kto(spec: Any, adapter_dir: str, rows: list[dict[str, Any]], options: Any, *, steps: int = 0) -> dict[str, Any]:
    """Continue the adapter at `adapter_dir` with KTO on `rows`; saves it in place (a candidate, never the active one)."""
    from datasets import Dataset
    from peft import PeftModel
    from trl import KTOConfig, KTOTrainer

    from persona.runtime.model import load_base_model, load_tokenizer

    tokenizer = load_tokenizer(spec)
    model = PeftModel.from_pretrained(load_base_model(spec, for_training=True), adapter_dir, is_trainable=True)
    desirable, undesirable = balanced_weights(rows)
    data = Dataset.from_list([
        {"prompt": r["prompt"], "completion": [{"role": "assistant", "content": r["completion"]}], "label": r["label"]} for r in rows
    ])
    import torch

    cuda = torch.cuda.is_available()
    batch = max(2, min(options.batch_size, len(rows)))
    config = KTOConfig(
        output_dir=str(Path(adapter_dir).parent / "kto"), per_device_train_batch_size=batch,
        max_steps=steps or max(1, min(50, len(rows) // batch * 2)), learning_rate=options.learning_rate / 4,
        desirable_weight=desirable, undesirable_weight=undesirable, beta=0.1, max_length=options.max_seq_len,
        report_to="none", use_cpu=not cuda, bf16=cuda and torch.cuda.is_bf16_supported(), logging_steps=1,
        save_strategy="no", remove_unused_columns=False,
    )
    trainer = KTOTrainer(model=model, args=config, train_dataset=data, processing_class=tokenizer)
    output = trainer.train()
    trainer.model.save_pretrained(adapter_dir)
    return {"examples": len(rows), "steps": trainer.state.global_step, "loss": float(output.training_loss),
            "desirable_weight": desirable, "undesirable_weight": undesirable}

"""Training: dataset building, LoRA fine-tuning, evaluation, feedback learning, adapter registry."""

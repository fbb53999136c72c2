"""The real thing, small: LoRA on the bundled SmolLM2-135M-Instruct learns a distinctive voice."""

from __future__ import annotations

from pathlib import Path

import pytest

from persona.config import Settings
from persona.storage.db import Database
from persona.storage.store import Store
from tests.fixtures import voice


@pytest.mark.slow
def test_smollm2_adapter_beats_the_base_model_on_heldout(database: Database, tmp_path: Path) -> None:
    from trainer import pipeline

    store = Store(database)
    with store.connect() as conn:
        voice.populate(conn, sessions=48)
    settings = Settings(_env_file=None, database_url=database.url, home=tmp_path / "home", batch_size=4, max_seq_len=256)
    outcome = pipeline.run(store, settings, incremental=False, max_steps=24, learning_rate=5e-4, eval_samples=2,
                           eval_max_new_tokens=12, quiet=True)
    losses = outcome.metrics["heldout_loss"]
    assert outcome.status == "promoted", outcome.line()
    assert losses["candidate"] < losses["base"] * 0.8, losses  # the slang is learned, not just noise
    assert "SmolLM2" in outcome.metrics["train"]["adapter_dir"] or outcome.version == 1

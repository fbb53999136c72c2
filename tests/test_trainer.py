"""The trainer on a tiny random Llama: labels, dataset, LoRA, resume, gate, retrain, KTO, accelerate."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
import torch

from persona import adapters
from persona.config import Settings
from persona.errors import PersonaError
from persona.runtime.model import load_tokenizer, resolve_base_model
from persona.storage.db import Database
from persona.storage.store import Store
from tests.fixtures import voice
from tests.fixtures.tiny_model import build_tiny_model
from trainer import pipeline
from trainer.dataset import Options, build_dataset
from trainer.encoding import encode
from trainer.feedback import balanced_weights, collect, train_kto
from trainer.job import Job
from trainer.promotion import evaluation_checks, gate
from trainer.sft import TrainOptions, train

OWNER = voice.OWNER_ID
SAM = 222222222222222222


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(build_tiny_model(tmp_path_factory.mktemp("tiny") / "model", voice.PROMPTS + voice.REPLIES))


@pytest.fixture
def tsettings(database: Database, tiny: str, tmp_path: Path) -> Settings:
    return Settings(_env_file=None, database_url=database.url, home=tmp_path / "home", base_model=tiny, batch_size=4)


CHAT = voice.CHAT


def test_only_the_owners_turns_get_labels(tiny: str) -> None:
    tokenizer = load_tokenizer(resolve_base_model(tiny))
    encoded = encode(tokenizer, CHAT, 512)
    assert encoded is not None
    learned = tokenizer.decode([t for t, label in zip(encoded["input_ids"], encoded["labels"]) if label != -100])
    assert learned == "fr lowkey yes<|im_end|>\nya<|im_end|>\n"
    short = encode(tokenizer, CHAT, 24)
    assert short is not None and len(short["input_ids"]) == 24
    assert encode(tokenizer, CHAT[:2], 512) is None  # no owner turn: nothing to learn
    last = encode(tokenizer, CHAT, 512, last_only=True)  # PERSONA_TRAIN_EXAMPLES=turns
    assert last is not None and last["input_ids"] == encoded["input_ids"]
    assert tokenizer.decode([t for t, label in zip(last["input_ids"], last["labels"]) if label != -100]) == "ya<|im_end|>\n"


def test_dataset_examples_filters_and_policy(store: Store) -> None:
    with store.connect() as conn:
        voice.populate(conn, sessions=12)
        extra = [
            (9001, OWNER, "!rank alex"), (9002, OWNER, "https://example.com/cat.png"), (9003, OWNER, "```\n" + "x = 1\n" * 200 + "```"),
            (9004, OWNER, "this exact long sentence appears twice here"), (9005, OWNER, "this exact long sentence appears twice here!"),
        ]
        for offset, (mid, author, text) in enumerate(extra):
            conn.execute("INSERT INTO messages (id, channel_id, author_id, source, scope, created_at, content) VALUES"
                         " (%s, 1000000000000000001, %s, 'dce', 'dm:222222222222222222', %s, %s)",
                         (mid, author, datetime(2022, 6, 1, 10, offset, tzinfo=UTC), text))
        conn.execute("INSERT INTO messages (id, channel_id, author_id, source, scope, created_at, content) VALUES"
                     " (9100, 1000000000000000004, %s, 'live', 'guild:5000000000000000001', '2022-07-01T10:00Z', 'api-obtained owner line')", (OWNER,))
        conn.commit()
        dataset = build_dataset(conn, Options(owner_name="Alex"))
        everything = json.dumps([e.to_json() for e in dataset.train + dataset.heldout])
        assert "api-obtained owner line" not in everything  # backfill/live need PERSONA_TRAIN_ON_API_CONTENT
        filtered = dataset.stats["filtered"]
        assert (filtered["bot_command"], filtered["link_only"], filtered["pasted_code_or_log"]) == (1, 1, 1)
        assert filtered["near_duplicate"] >= 1
        assert everything.count("this exact long sentence appears twice here") == 1
        assert "!rank" not in everything and "example.com/cat.png" not in everything and "x = 1" not in everything
        example = next(e for e in dataset.train + dataset.heldout if e.kind == "dm" and len(e.messages) == 5)
        roles = [m["role"] for m in example.messages]
        assert roles == ["system", "user", "assistant", "user", "assistant"]
        assert example.messages[0]["content"].startswith("You are Alex")
        assert example.messages[1]["content"].startswith("[DM with sam · ") and "\nsam: " in example.messages[1]["content"]
        assert {"dm", "dce"} <= set(example.tags)
        with_api = build_dataset(conn, Options(owner_name="Alex", allow_api_content=True))
        assert "api-obtained owner line" in json.dumps([e.to_json() for e in with_api.train + with_api.heldout])


def test_one_example_per_owner_turn_with_the_turns_before_it(store: Store) -> None:
    """PERSONA_TRAIN_EXAMPLES=turns: every owner turn is the end of an example of its own,
    the conversation before it as context; it teaches that turn, and is held out by it."""
    with store.connect() as conn:
        voice.populate(conn, sessions=12)
        windows = build_dataset(conn, Options(owner_name="Alex"))
        turns = build_dataset(conn, Options(owner_name="Alex", examples="turns"))
    owner_turns = sum(m["role"] == "assistant" for e in windows.train + windows.heldout for m in e.messages)
    every = turns.train + turns.heldout
    assert len(every) == owner_turns > len(windows.train + windows.heldout)
    assert all(e.messages[-1]["role"] == "assistant" for e in every)
    assert turns.stats["owner_messages"] == windows.stats["owner_messages"]  # each owner message taught once, not once per window
    ends = {e.messages[-1]["content"] for e in every}
    assert ends == {m["content"] for e in windows.train + windows.heldout for m in e.messages if m["role"] == "assistant"}
    longest = max(every, key=lambda e: len(e.messages))
    assert sum(m["role"] == "assistant" for m in longest.messages) > 1  # earlier owner turns are context
    held = {i for e in turns.heldout for i in e.target_ids}
    assert held and not held & {i for e in turns.train for i in e.target_ids}


def test_owner_only_history_becomes_context_plus_reply(store: Store) -> None:
    with store.connect() as conn:
        conn.execute("INSERT INTO people (id, name, is_owner) VALUES (%s, 'alex', true)", (OWNER,))
        conn.execute("INSERT INTO channels (id, kind, name, guild_id, guild_name, scope) VALUES (7, 'guild_text', 'memes', 5, 'Friends', 'guild:5')")
        for i in range(6):
            conn.execute("INSERT INTO messages (id, channel_id, author_id, source, scope, created_at, content) VALUES"
                         " (%s, 7, %s, 'package', 'guild:5', %s, %s)",
                         (100 + i, OWNER, datetime(2022, 1, 1 + i, tzinfo=UTC), f"owner line {i}"))
        conn.commit()
        dataset = build_dataset(conn, Options(owner_name="Alex"))
        example = (dataset.train + dataset.heldout)[0]
        assert [m["role"] for m in example.messages] == ["system", "user", "assistant"]
        assert example.messages[1]["content"].startswith("[#memes (Friends) · 2022-01-0")
        assert "owner_only" in example.tags


def test_heldout_split_is_stable_across_rebuilds(store: Store) -> None:
    with store.connect() as conn:
        voice.populate(conn, sessions=40)
        first = build_dataset(conn, Options())
        first_heldout = sorted(i for e in first.heldout for i in e.target_ids)
        assert first_heldout and not set(first_heldout) & {i for e in first.train for i in e.target_ids}
        voice.populate(conn, sessions=20, start=datetime(2025, 1, 1, tzinfo=UTC), first_id=8_200_000_000_000_000_000)
        second = build_dataset(conn, Options())
        assert sorted(i for e in second.heldout for i in e.target_ids) == first_heldout  # new data went to training
        assert len(second.train) > len(first.train)


def test_lora_weights_change_and_base_weights_do_not(tiny: str, tmp_path: Path) -> None:
    from peft import PeftModel
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    base_before = {k: v.clone() for k, v in AutoModelForCausalLM.from_pretrained(tiny).state_dict().items()}
    data = [CHAT] * 16
    result = train(resolve_base_model(tiny), data, data[:4], tmp_path / "run", TrainOptions(max_steps=6, batch_size=4, eval_steps=3))
    adapter = load_file(str(Path(result.adapter_dir) / "adapter_model.safetensors"))
    lora_b = [v for k, v in adapter.items() if "lora_B" in k]
    assert lora_b and any(float(v.abs().sum()) > 0 for v in lora_b)  # B starts at zero: training moved it
    base_after = AutoModelForCausalLM.from_pretrained(tiny).state_dict()
    assert all(torch.equal(base_before[k], base_after[k]) for k in base_before)
    merged = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny), result.adapter_dir)
    assert any("lora_A" in n for n, _ in merged.named_parameters())
    assert result.real_token_fraction is not None and result.real_token_fraction > 0.9


def test_training_resumes_after_a_kill(tiny: str, tmp_path: Path) -> None:
    from trainer.dataset import Dataset, Example

    example = Example(messages=CHAT, target_ids=[1], channel_id=1, source="dce", kind="dm", last_at="2023-01-01T00:00:00+00:00")
    Dataset([example] * 64, [example] * 2, {}).write(tmp_path / "data")
    job = Job(base_model={"name": tiny, "path": tiny, "gguf_file": None}, train_file=str(tmp_path / "data" / "train.jsonl"),
              heldout_file=str(tmp_path / "data" / "heldout.jsonl"), output_dir=str(tmp_path / "run"),
              options=TrainOptions(max_steps=300, batch_size=4, eval_steps=10, patience=0, gradient_checkpointing=False).to_json(),
              eval_samples=0)
    job_path = job.write(tmp_path / "job.json")
    command = [sys.executable, "-m", "trainer.job", str(job_path)]
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not any((tmp_path / "run" / "checkpoints").glob("checkpoint-*/trainer_state.json")) and time.monotonic() < deadline:
        time.sleep(0.05)
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert not (tmp_path / "run" / "result.json").exists()
    saved = max(int(p.name.split("-")[1]) for p in (tmp_path / "run" / "checkpoints").glob("checkpoint-*"))
    assert 0 < saved < 300
    again = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "resuming from the last checkpoint" in again.stderr
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    assert result["train"]["steps"] == 300


def test_the_training_child_dies_with_its_parent(tiny: str, tmp_path: Path) -> None:
    """A killed `persona train` (or bot) must not leave a training process running for nobody."""
    from trainer.dataset import Dataset, Example
    from trainer.job import PARENT_PID_ENV

    example = Example(messages=CHAT, target_ids=[1], channel_id=1, source="dce", kind="dm", last_at="2023-01-01T00:00:00+00:00")
    Dataset([example] * 64, [example] * 2, {}).write(tmp_path / "data")
    job = Job(base_model={"name": tiny, "path": tiny, "gguf_file": None}, train_file=str(tmp_path / "data" / "train.jsonl"),
              heldout_file=str(tmp_path / "data" / "heldout.jsonl"), output_dir=str(tmp_path / "run"),
              options=TrainOptions(max_steps=100_000, batch_size=4, eval_steps=10_000, patience=0).to_json(), eval_samples=0)
    job_path = job.write(tmp_path / "job.json")
    # The parent: a stand-in for `persona train` or the bot. The child's output goes to a
    # file, not a pipe, so a write into a closed pipe cannot be what stops it.
    parent = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    with (tmp_path / "child.log").open("w") as log:
        child = subprocess.Popen([sys.executable, "-m", "trainer.job", str(job_path)], stdout=log, stderr=subprocess.STDOUT,
                                 env={**os.environ, PARENT_PID_ENV: str(parent.pid)})
    try:
        deadline = time.monotonic() + 60
        while "%|" not in (tmp_path / "child.log").read_text() and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert child.poll() is None, "the training process ended on its own"
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        assert child.wait(timeout=30) == 3, "the training process outlived the process that started it"
        assert "is gone; stopping" in (tmp_path / "child.log").read_text()
    finally:
        for process in (parent, child):
            if process.poll() is None:
                process.kill()


def test_promotion_gate_both_ways() -> None:
    assert gate(2.0, 2.0, 0.02, "active")[0]
    assert gate(2.03, 2.0, 0.02, "active")[0]  # within the margin
    promoted, reason = gate(2.1, 2.0, 0.02, "active")
    assert not promoted and "worse than active" in reason
    assert gate(1.0, None, 0.02, "base model") == (True, "first adapter")
    assert not gate(None, 2.0, 0.02, "active")[0]
    # The owner's extra checks: off by default, and a check without figures passes.
    worse = {"owner_likeness": {"base": 0.4, "adapter": 0.3}, "fact_use": {"base": 2, "adapter": 1}}
    assert evaluation_checks(worse, likeness=False, fact_use=False) == (True, "")
    assert evaluation_checks({}, likeness=True, fact_use=True) == (True, "")
    passed, failed = evaluation_checks(worse, likeness=True, fact_use=True)
    assert not passed and "owner-likeness 0.300 below the base model's 0.400" in failed and "states 1 remembered facts" in failed
    assert evaluation_checks({"owner_likeness": {"base": 0.4, "adapter": 0.5}, "fact_use": {"base": 2, "adapter": 2}}, likeness=True, fact_use=True)[0]


def test_pipeline_trains_gates_and_retrains(store: Store, tsettings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    with store.connect() as conn:
        voice.populate(conn, sessions=30)
    caplog.set_level(logging.INFO, logger="trainer.pipeline")
    first = pipeline.run(store, tsettings, incremental=False, max_steps=20, learning_rate=1e-2, eval_samples=2, eval_max_new_tokens=6, quiet=True)
    assert first.status == "promoted" and first.version == 1
    said = [r.getMessage() for r in caplog.records if r.getMessage().startswith("training: ")]
    assert said == [said[0]] and "20 optimiser steps" in said[0] and "estimated after the first step" in said[0]  # nothing to go by yet
    report = Path(first.report)
    assert report.exists() and (report.parent / "loss_curve.png").exists() and (report.parent / "reply_lengths.png").exists()
    assert first.metrics["heldout_loss"]["candidate"] < first.metrics["heldout_loss"]["base"]
    likeness = first.metrics["owner_likeness"]
    assert likeness["texts"]["train_owner"] > 0 and {"base", "adapter"} <= set(likeness)  # fitted on the training split, scored
    assert "## How owner-like" in report.read_text() and (report.parent / "measures.png").exists()
    assert "Only 2 held-out contexts" not in report.read_text()  # asked for 2, got 2: no warning
    told, ranged = first.metrics["real_vs_generated"], first.metrics["range"]
    assert set(told) == {"base", "adapter", "owner"} and set(ranged["stock_line_rate"]) == {"owner (held-out)", "real", "base", "adapter"}
    assert "## Range, relevance and how often it is told apart" in report.read_text() and "Ceiling:" in report.read_text()

    nothing = pipeline.run(store, tsettings, incremental=True, max_steps=4, eval_samples=0, quiet=True)
    assert nothing.status == "nothing_new" and "nothing new since v1" in nothing.reason

    # New messages in a different voice, learned hard without replay: the candidate writes
    # worse on the held-out split, stays a candidate, and the active adapter does not move.
    with store.connect() as conn:
        voice.populate(conn, sessions=12, start=datetime(2024, 1, 1, tzinfo=UTC), first_id=8_100_000_000_000_000_000, replies=voice.FORMAL)
    drifting = tsettings.model_copy(update={"replay_ratio": 0.0})
    caplog.clear()
    broken = pipeline.run(store, drifting, incremental=True, max_steps=30, learning_rate=3e-2, eval_samples=0, quiet=True)
    assert broken.status == "not_promoted" and "worse than active" in broken.reason
    seconds_per_step = first.metrics["train"]["seconds"] / first.metrics["train"]["steps"]
    said = next(r.getMessage() for r in caplog.records if r.getMessage().startswith("training: "))
    assert "30 optimiser steps" in said and f"{seconds_per_step:.1f} s a step, as v1's run here took" in said, said  # said before it ran
    with store.connect() as conn:
        assert adapters.active(conn).id == 1
        assert adapters.get(conn, broken.version).status == "candidate"
        assert adapters.get(conn, broken.version).parent_id == 1
        assert adapters.get(conn, broken.version).data_watermark > adapters.get(conn, 1).data_watermark

    with store.connect() as conn:
        assert adapters.activate(conn, broken.version).status == "active"
        assert adapters.rollback(conn).id == 1


def test_failed_training_leaves_the_active_adapter_untouched(store: Store, tsettings: Settings, tmp_path: Path) -> None:
    with store.connect() as conn:
        voice.populate(conn, sessions=24)
    assert pipeline.run(store, tsettings, incremental=False, max_steps=4, eval_samples=0, quiet=True).status == "promoted"
    with store.connect() as conn:
        voice.populate(conn, sessions=6, start=datetime(2024, 1, 1, tzinfo=UTC), first_id=8_100_000_000_000_000_000)
    broken = tsettings.model_copy(update={"lora_targets": "no_such_module"})  # the training process dies on it
    with pytest.raises(PersonaError, match=r"no_such_module.*active adapter v1 is unchanged"):
        pipeline.run(store, broken, incremental=False, max_steps=4, eval_samples=0, quiet=True)
    with store.connect() as conn:
        assert adapters.active(conn).id == 1
        assert [v.status for v in adapters.versions(conn)] == ["active", "failed"]
        assert conn.execute("SELECT status FROM training_runs ORDER BY id").fetchall() == [("succeeded",), ("failed",)]


def test_only_one_run_at_a_time(store: Store, tsettings: Settings) -> None:
    with psycopg.connect(store.database.url, autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s)", (pipeline.TRAIN_LOCK,))
        with pytest.raises(PersonaError, match="already in progress"):
            pipeline.run(store, tsettings, incremental=True, quiet=True)


def test_kto_on_a_handful_of_ratings(tiny: str, tmp_path: Path, store: Store) -> None:
    from safetensors.torch import load_file

    spec = resolve_base_model(tiny)
    result = train(spec, [CHAT] * 8, [CHAT], tmp_path / "run", TrainOptions(max_steps=2, batch_size=4, eval_steps=2))
    before = load_file(str(Path(result.adapter_dir) / "adapter_model.safetensors"))
    rated = [{"prompt": CHAT[:2], "completion": "fr lowkey yes", "label": True}] * 3 + [{"prompt": CHAT[:2], "completion": "As an AI, I cannot.",
                                                                                         "label": False}]
    assert balanced_weights(rated) == (1.0, 3.0)
    summary = train_kto(spec, result.adapter_dir, rated, TrainOptions(batch_size=4), steps=2)
    assert summary["steps"] == 2
    after = load_file(str(Path(result.adapter_dir) / "adapter_model.safetensors"))
    assert any(not torch.equal(before[k], after[k]) for k in before)

    with store.connect() as conn:  # only trusted raters' feedback is collected
        conn.execute("INSERT INTO replies (scope, prompt, completion, base_model) VALUES ('dm:1', %s, 'fr', 'tiny')", (json.dumps(CHAT[:2]),))
        conn.execute("INSERT INTO feedback (reply_id, rater_id, rating, via) VALUES (1, %s, 1, 'command'), (1, 555, -1, 'reaction')", (OWNER,))
        assert [r["label"] for r in collect(conn, [OWNER])] == [True]


def test_two_process_accelerate_run(tiny: str, tmp_path: Path) -> None:
    from trainer.dataset import Dataset, Example

    example = Example(messages=CHAT, target_ids=[1], channel_id=1, source="dce", kind="dm", last_at="2023-01-01T00:00:00+00:00")
    Dataset([example] * 16, [example] * 2, {}).write(tmp_path / "data")
    job = Job(base_model={"name": tiny, "path": tiny, "gguf_file": None}, train_file=str(tmp_path / "data" / "train.jsonl"),
              heldout_file=str(tmp_path / "data" / "heldout.jsonl"), output_dir=str(tmp_path / "run"),
              options=TrainOptions(max_steps=4, batch_size=2, eval_steps=2, gradient_checkpointing=False).to_json(), eval_samples=0)
    code, tail = pipeline._launch(job.write(tmp_path / "job.json"), processes=2, quiet=True)
    assert code == 0, tail
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    assert result["train"]["steps"] == 4 and Path(result["adapter_dir"]).exists()


def test_cli_retrain_with_nothing_new_exits_0(persona_exe: Path, database: Database, tiny: str, tmp_path: Path) -> None:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("PERSONA_")}, "DATABASE_URL": database.url,
           "PERSONA_BASE_MODEL": tiny, "PERSONA_HOME": str(tmp_path / "home"), "PERSONA_BATCH_SIZE": "4"}
    with psycopg.connect(database.url) as conn:
        voice.populate(conn, sessions=24)
    first = subprocess.run([str(persona_exe), "train", "--max-steps", "4", "--eval-samples", "0", "--json"], env=env, capture_output=True, text=True,
                           timeout=600)
    assert first.returncode == 0, first.stderr[-2000:]
    assert json.loads(first.stdout)["status"] == "promoted"
    again = subprocess.run([str(persona_exe), "retrain"], env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and "nothing new since v1" in again.stdout
    listing = subprocess.run([str(persona_exe), "adapters", "--json"], env=env, capture_output=True, text=True, timeout=120)
    assert [v["status"] for v in json.loads(listing.stdout)] == ["active"]
    evaluated = subprocess.run([str(persona_exe), "eval", "v1", "--eval-samples", "1", "--json"], env=env, capture_output=True, text=True, timeout=600)
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    summary = json.loads(evaluated.stdout)
    assert summary["version"] == 1 and set(summary["heldout_loss"]) == {"base", "candidate"} and Path(summary["report"]).exists()
    missing = subprocess.run([str(persona_exe), "adapters", "activate", "v9"], env=env, capture_output=True, text=True, timeout=120)
    assert missing.returncode == 1 and "there is no adapter v9" in missing.stderr and "Traceback" not in missing.stderr


def test_cli_dataset_build(persona_exe: Path, database: Database, tiny: str, tmp_path: Path) -> None:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("PERSONA_")}, "DATABASE_URL": database.url,
           "PERSONA_BASE_MODEL": tiny, "PERSONA_HOME": str(tmp_path / "home")}
    with psycopg.connect(database.url) as conn:
        voice.populate(conn, sessions=12)
    result = subprocess.run([str(persona_exe), "dataset", "build", "--stats", "--json"], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    stats = json.loads(result.stdout)
    assert stats["train_examples"] > 0 and stats["heldout_examples"] > 0 and stats["train_tokens"] > 0
    assert Path(stats["folder"], "train.jsonl").exists()
    table = subprocess.run([str(persona_exe), "dataset", "build"], env=env, capture_output=True, text=True, timeout=300)
    assert "training examples" in table.stdout and "tags:" in table.stdout


def test_everything_after_a_day_can_be_held_out(store: Store) -> None:
    from datetime import date

    with store.connect() as conn:
        voice.populate(conn, sessions=40)  # 2023-01-01 onwards, a session every 5 hours
        usual = build_dataset(conn, Options())
        dataset = build_dataset(conn, Options(heldout_after=date(2023, 1, 6)))
    assert dataset.train and all(e.last_at[:10] < "2023-01-06" for e in dataset.train)
    late = {e.target_ids[0] for e in usual.train + usual.heldout if e.last_at[:10] >= "2023-01-06"}
    assert len(late) > len(usual.heldout) and {e.target_ids[0] for e in dataset.heldout} == late | {e.target_ids[0] for e in usual.heldout}


def test_decisions_on_drafts_teach_through_sft_kto_and_dpo(store: Store, tsettings: Settings) -> None:
    """The owner's decisions reach the nightly retrain: an edit is an SFT example and a DPO
    pair, a draft sent unchanged a desirable KTO row, a discarded one an undesirable row, a
    correction a pair; a decision made in Discord waits for PERSONA_TRAIN_ON_API_CONTENT.
    The DPO-trained candidate goes through the gate; forgetting the asker taints it and
    takes the pair out of its files."""
    from persona import drafts
    from persona.privacy.forget import carry_out, forget_person
    from tests.helpers import hold_draft

    friend = 999_000_000_000_000_001  # someone who only ever asked in DMs the owner answered as drafts: no message of theirs is stored
    with store.connect() as conn:
        voice.populate(conn, sessions=24)
    assert pipeline.run(store, tsettings, incremental=False, max_steps=4, eval_samples=0, quiet=True).status == "promoted"

    def held(conn: psycopg.Connection, text: str) -> int:
        return hold_draft(conn, asker=friend, channel=7, asked="are you coming?", draft=text, prompt=CHAT[:2], adapter=1, asker_name="sam",
                          place_label="DM").id

    with store.connect() as conn:
        edited, kept, dropped, in_discord = (held(conn, t) for t in ("As an AI, I cannot attend.", "fr lowkey yes", "Greetings, Sam.", "Indeed."))
        drafts.approve(conn, edited, via="cli", text="omw ✨ fr")
        drafts.approve(conn, kept, via="dashboard")
        drafts.discard(conn, dropped, via="cli")
        drafts.approve(conn, in_discord, via="discord", text="ya ya")
        reply_id = conn.execute("INSERT INTO replies (scope, prompt, completion, base_model) VALUES ('dm:1', %s, 'Certainly!', 'tiny') "
                                "RETURNING id", (json.dumps(CHAT[:2]),)).fetchone()[0]
        conn.execute("INSERT INTO feedback (reply_id, rater_id, rating, correction, via) VALUES (%s, %s, -1, 'nah lol', 'command')",
                     (reply_id, voice.OWNER_ID))
        conn.commit()

    taught = pipeline.run(store, tsettings, incremental=True, max_steps=4, eval_samples=0, quiet=True)
    assert taught.status in ("promoted", "not_promoted"), taught.reason  # through the gate like any candidate
    data = Path(tsettings.adapters_dir / f"v{taught.version}" / "data")
    train_rows = [json.loads(line) for line in (data / "train.jsonl").read_text().splitlines()]
    assert [(r["draft_id"], r["messages"][-1]["content"]) for r in train_rows if r.get("draft_id")] == [(edited, "omw ✨ fr")]
    pairs = [json.loads(line) for line in (data / "pairs.jsonl").read_text().splitlines()]
    assert [(p.get("draft_id"), p["chosen"], p["rejected"]) for p in pairs] == [(edited, "omw ✨ fr", "As an AI, I cannot attend."),
                                                                              (None, "nah lol", "Certainly!")]
    kto = [json.loads(line) for line in (data / "kto.jsonl").read_text().splitlines()]
    assert sorted((r["draft_id"], r["label"]) for r in kto if "draft_id" in r) == [(kept, True), (dropped, False)]
    assert taught.metrics["dpo"]["pairs"] == 2 and taught.metrics["dpo"]["steps"] >= 1
    with store.connect() as conn:
        version = conn.execute("SELECT trained_draft_ids, draft_watermark FROM adapter_versions WHERE id = %s", (taught.version,)).fetchone()
        assert version[0] == sorted([edited, kept, dropped]) and version[1] > 0
        if taught.status == "not_promoted":
            adapters.activate(conn, taught.version)
    again = pipeline.run(store, tsettings, incremental=True, max_steps=4, eval_samples=0, quiet=True)
    assert again.status == "nothing_new"  # the Discord decision is not new training data while the policy setting is off

    with store.connect() as conn:
        forgotten, _ = carry_out(conn, lambda c: forget_person(c, friend), tsettings.datasets_dir)
    assert forgotten.tainted == [taught.version] and forgotten.drafts == 4  # reached through the decisions alone
    assert not any(p.get("draft_id") for p in (json.loads(line) for line in (data / "pairs.jsonl").read_text().splitlines()))


def test_the_estimate_follows_the_data_and_the_last_run_of_the_same_shape() -> None:
    from trainer.estimate import estimate, planned_steps
    from trainer.sft import TrainOptions

    options = TrainOptions(batch_size=4, grad_accumulation=2, epochs=2.0)
    assert planned_steps(100, options) == 26 and planned_steps(100_000, options) == 25_000  # epochs, not a fixed count
    assert planned_steps(100, TrainOptions(max_steps=7)) == 7 and planned_steps(100, options, processes=2) == 14

    def version(number: int, base: str, seconds: float, **shape: object) -> adapters.AdapterVersion:
        return adapters.AdapterVersion(number, None, base, "", "active", None, 0, 0, options.to_json() | shape,
                                       {"train": {"steps": 10, "seconds": seconds}}, datetime(2026, 1, 1, tzinfo=UTC), None)

    versions = [version(1, "smollm2", 50.0), version(2, "gemma", 300.0), version(3, "smollm2", 90.0, max_seq_len=2048)]
    told = estimate(100, options, versions, "smollm2")
    assert (told.steps, told.seconds_per_step, told.measured_on, told.seconds) == (26, 5.0, "v1", 130.0)  # v3 has another shape
    assert "about 2 min" in told.line(100, 2.0) and "(2 epochs)" in told.line(100, 2.0)
    budgeted = estimate(100, TrainOptions(batch_size=4, grad_accumulation=2, epochs=2.0, time_budget_s=60), versions, "smollm2")
    assert budgeted.seconds == 60 and "cut to the time budget" in budgeted.line(100, 2.0)  # the budget is not part of the shape
    assert estimate(100, options, versions, "llama").seconds is None  # no run of this model: said after the first step

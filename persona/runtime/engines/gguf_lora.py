"""A persona adapter (peft LoRA, safetensors) as a llama.cpp LoRA (GGUF), for the
llama.cpp engine.

llama.cpp ships `convert_lora_to_gguf.py`, but it is a script in its source tree (not in
any installable package) and it needs the base model's Hugging Face folder, which the
bundled GGUF base does not have. What the conversion needs is small and fully described
by the GGUF base itself: each LoRA pair is renamed to the base tensor it modifies (gguf's
own name map), and for the Llama architecture the rows of the query and key
projections are permuted as the GGUF base's were (rotary halves interleaved), so B's
rows are permuted the same way. Written with gguf's `GGUFWriter`, under a temporary name
first, beside the adapter (a forget that deletes the adapter deletes it too).
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np

from persona.errors import ConfigError
from persona.files import whole_file

log = logging.getLogger(__name__)

# Architectures whose GGUF conversion permutes the query/key rows (convert_hf_to_gguf's LlamaModel.permute).
_PERMUTED = {"llama"}
_SUPPORTED = {"llama", "gemma", "gemma2", "gemma3"}


def converted_path(adapter_dir: Path, base_gguf: Path) -> Path:
    return adapter_dir / f"llama-cpp-lora.{base_gguf.stem}.gguf"


def lora_for(adapter_dir: Path, base_gguf: Path) -> Path:
    """The adapter in `adapter_dir` as a GGUF LoRA for `base_gguf`, converted once."""
    target = converted_path(adapter_dir, base_gguf)
    if target.exists():
        return target
    convert(adapter_dir, base_gguf, target)
    return target


def convert(adapter_dir: Path, base_gguf: Path, target: Path) -> None:
    import gguf
    from safetensors.numpy import load_file

    config = _adapter_config(adapter_dir)
    reader = gguf.GGUFReader(base_gguf)
    arch = gguf_field(reader, "general.architecture")
    if arch not in _SUPPORTED:
        raise ConfigError(f"PERSONA_ENGINE=llama.cpp: persona converts adapters for {sorted(_SUPPORTED)}, not {arch!r}: "
                          "use PERSONA_ENGINE=transformers")
    blocks = int(gguf_field(reader, f"{arch}.block_count"))
    heads = int(gguf_field(reader, f"{arch}.attention.head_count"))
    kv_heads = int(gguf_field(reader, f"{arch}.attention.head_count_kv", heads))
    names = gguf.get_tensor_name_map({v: k for k, v in gguf.MODEL_ARCH_NAMES.items()}[arch], blocks)
    base_tensors = {t.name for t in reader.tensors}

    weights = load_file(str(adapter_dir / "adapter_model.safetensors"))
    pairs: dict[str, dict[str, np.ndarray]] = {}
    for key, value in weights.items():
        if ".lora_A." not in key and ".lora_B." not in key:
            raise ConfigError(f"adapter {adapter_dir.name}: {key.split('.')[-2]!r} weights (e.g. trained token rows) have no GGUF "
                              "LoRA form: use PERSONA_ENGINE=transformers for this base model")
        module, part = key.split(".lora_A." if ".lora_A." in key else ".lora_B.")[0], ("a" if ".lora_A." in key else "b")
        # Gemma 3 4B+ (text + vision) keeps its language model under `language_model.`; its GGUF is the language model alone.
        module = module.removeprefix("base_model.model.").replace("language_model.", "")
        pairs.setdefault(module, {})[part] = value.astype(np.float32)

    rank = int(config["r"])
    alpha = float(config.get("lora_alpha", rank))
    if config.get("use_rslora"):
        alpha = alpha * rank / math.sqrt(rank)  # llama.cpp scales by alpha / rank; rsLoRA by alpha / sqrt(rank)
    with whole_file(target) as partial:
        writer = gguf.GGUFWriter(str(partial), arch)
        writer.add_string("general.type", "adapter")
        writer.add_string("adapter.type", "lora")
        writer.add_float32("adapter.lora.alpha", alpha)
        for module, pair in sorted(pairs.items()):
            base = names.get_name(module + ".weight", try_suffixes=(".weight",))
            if base is None or base not in base_tensors or set(pair) != {"a", "b"}:
                raise ConfigError(f"adapter {adapter_dir.name}: no tensor of the GGUF base matches {module!r}")
            a, b = pair["a"], pair["b"]
            if arch in _PERMUTED and base.endswith(("attn_q.weight", "attn_k.weight")):
                b = _permute_rows(b, heads if base.endswith("attn_q.weight") else kv_heads)
            stem = base.removesuffix(".weight")
            writer.add_tensor(f"{stem}.weight.lora_a", np.ascontiguousarray(a))
            writer.add_tensor(f"{stem}.weight.lora_b", np.ascontiguousarray(b))
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
    log.info("converted adapter %s to a llama.cpp LoRA (%d modules)", adapter_dir.name, len(pairs))


def _permute_rows(matrix: np.ndarray, heads: int) -> np.ndarray:
    """Rows in Hugging Face's rotary layout (halves) → GGUF's (interleaved pairs), per head."""
    return matrix.reshape(heads, 2, matrix.shape[0] // heads // 2, *matrix.shape[1:]).swapaxes(1, 2).reshape(matrix.shape)


def _adapter_config(adapter_dir: Path) -> dict[str, Any]:
    try:
        return json.loads((adapter_dir / "adapter_config.json").read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"adapter {adapter_dir}: cannot read adapter_config.json ({exc})") from None


def gguf_field(reader: Any, key: str, default: Any = None) -> Any:
    """A metadata value of a GGUF (gguf's GGUFReader); `default` when absent, else a clear error."""
    field = reader.fields.get(key)
    if field is None:
        if default is None:
            raise ConfigError(f"the GGUF base has no {key!r}: is it a language model GGUF?")
        return default
    return field.contents()



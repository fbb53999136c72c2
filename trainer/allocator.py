"""Give freed tensor memory back to the operating system during training.

PyTorch on CPU allocates with the C library's malloc. glibc serves requests under its
dynamic mmap threshold (which grows up to 32 MB after large frees) from heaps that it
rarely returns, and training allocates and frees hundreds of megabytes of activations
of a different shape every step, so the resident size ratchets up: 6.2 GB peak for
SmolLM2-135M at batch 8 × 512 where the live tensors never exceed 2 GB. With a fixed
64 KB mmap threshold and trimming on, every large buffer is its own mapping and goes
back on free (measured: 6.2 → 2.1 GB peak, bench/train.py).

Process-wide and only in the training process (trainer/job.py, bench/train.py). glibc
reads the same settings from MALLOC_MMAP_THRESHOLD_ / MALLOC_TRIM_THRESHOLD_; an owner
who set those keeps theirs. Elsewhere (macOS, musl) it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os

log = logging.getLogger(__name__)

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 64 * 1024


def return_freed_memory() -> bool:
    """Set glibc's mmap and trim thresholds for this process; True if it took effect."""
    if os.environ.get("MALLOC_MMAP_THRESHOLD_") or os.environ.get("MALLOC_TRIM_THRESHOLD_"):
        return False
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    done = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, 0))
    log.debug("glibc mmap threshold %d, trim threshold 0: %s", MMAP_THRESHOLD, done)
    return done

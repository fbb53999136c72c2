"""Deterministic ids for sources that have none (WhatsApp, notes, journals).

Negative 63-bit integers, so they can never collide with a Discord snowflake, and
derived from what identifies the thing, so importing it again yields the same id.
"""

from __future__ import annotations

import hashlib


def synthetic_id(*parts: object) -> int:
    digest = hashlib.blake2b("\x1f".join(str(p) for p in parts).encode(), digest_size=8).digest()
    return -(int.from_bytes(digest, "big") >> 1) - 1

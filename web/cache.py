"""The dashboard's aggregates over whole tables (counts, messages per month, messages per
channel and per person), kept until those tables change (persona/storage/changes.py).

Why not always compute: with a million messages each aggregate is a scan of the table,
hundreds of milliseconds on a laptop; the pages that show them are opened far more
often than an import or a forget changes them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

import psycopg

from persona.storage.changes import Mark, change_mark

T = TypeVar("T")
# Everything the overview's counts and charts read.
TABLES = ("messages", "channels", "people", "memories", "replies", "feedback", "adapter_versions", "import_runs")


class Aggregates:
    def __init__(self) -> None:
        self._kept: dict[str, tuple[Mark, Any]] = {}
        self._lock = threading.Lock()

    def get(self, conn: psycopg.Connection, name: str, compute: Callable[[psycopg.Connection], T]) -> T:
        mark = change_mark(conn, TABLES)
        with self._lock:
            kept = self._kept.get(name)
        if kept is not None and kept[0] == mark:
            return kept[1]
        value = compute(conn)
        with self._lock:
            self._kept[name] = (mark, value)
        return value

"""Small helpers shared by the tests."""

from __future__ import annotations

from pathlib import Path

from persona.storage.store import Store


def rows(store: Store, query: str, *args: object) -> list[tuple]:
    with store.connect() as conn:
        return conn.execute(query, args).fetchall()


def stop_embedded(data_dir: Path, timeout: float = 30) -> None:
    """Stop an embedded PostgreSQL from outside, as a crash or an admin would (fast shutdown)."""
    import os
    import signal
    import time

    import psutil

    pid = int((data_dir / "postmaster.pid").read_text().splitlines()[0])
    os.kill(pid, signal.SIGINT)
    deadline = time.monotonic() + timeout
    while psutil.pid_exists(pid) and time.monotonic() < deadline:
        time.sleep(0.05)

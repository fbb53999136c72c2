"""Helpers shared by the benchmark scripts (run them from the repository root)."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path


def fresh_database(admin_url: str, name: str) -> str:
    """Drop and create database `name` on the server, migrate it, return its URL."""
    import psycopg
    from psycopg.conninfo import make_conninfo

    from persona.storage import migrate

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_conninfo(admin_url, dbname=name)
    with psycopg.connect(url, autocommit=True) as conn:
        migrate.upgrade(conn)
    return url


def vm_hwm_kb(pid: int) -> int:
    """Peak resident memory of a live process since its exec (rusage would inherit the parent's at fork)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def wait_with_peak_rss(child: subprocess.Popen) -> float:
    """Wait for `child`, sampling its peak RSS every 20 ms; return the peak in MB."""
    peak = 0
    while child.poll() is None:
        peak = max(peak, vm_hwm_kb(child.pid))
        time.sleep(0.02)
    return peak / 1024


def start_server(label: str, argv: Callable[[int], list[str]], env: dict[str, str], timeout_s: float, *, ready: str = "/health",
                 keep_stdout: bool = False) -> tuple[subprocess.Popen[str], int]:
    """A server process (`argv(port)`) on a free port, once `ready` answers 200; with
    `keep_stdout` its standard output stays readable (what it printed before serving)."""
    import httpx

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(argv(port), env=env, text=True, stdout=subprocess.PIPE if keep_stdout else subprocess.DEVNULL,
                              stderr=subprocess.PIPE)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"{label} exited: {server.stderr.read()[-1500:] if server.stderr else ''}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}{ready}", timeout=1).status_code == 200:
                return server, port
        except httpx.TransportError:
            time.sleep(0.5)
    server.kill()
    raise SystemExit(f"{label} did not come up in {timeout_s:.0f} s")

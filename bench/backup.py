"""Benchmark: `persona backup` and `persona restore` of a big database. One JSON line.

Loads --messages messages and --memories memories into the real schema (bench/web.py's
loader: 400 channels, 2,000 people, 384-d vectors with their HNSW index), plus an adapter
folder of --adapter-mb MB in PERSONA_HOME; then times, in the same run:

- `backup`: persona's archive (pg_dump custom format, the home's files, checksums) against
  the baseline `pg_dump --format=custom` alone to a file (the floor: what the dump costs);
- `restore`: persona's restore into an empty database and home (the archive checked in
  full, the database replaced in one psql transaction, the files moved, migrations) against
  the baseline `pg_restore --single-transaction` of the same dump alone.

Goals (issue 31): backup of 1M messages ≤ 60 s, restore ≤ 120 s on 2 cores.

    python bench/backup.py                                # 1M messages, 200k memories
    python bench/backup.py --messages 100000 --memories 20000
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _loader() -> object:
    """bench/web.py's `load` (imported by path: its module name is the dashboard package's)."""
    spec = importlib.util.spec_from_file_location("bench_web", REPO / "bench" / "web.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.path.insert(0, str(REPO / "bench"))
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module.load


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--memories", type=int, default=200_000)
    parser.add_argument("--adapter-mb", type=int, default=30)
    args = parser.parse_args()

    import psycopg
    from psycopg.conninfo import make_conninfo

    from persona.backup import _client, backup, pg_tool, restore
    from persona.config import Settings
    from persona.storage.embedded import start_embedded

    sys.path.insert(0, str(REPO / "bench"))
    from _common import fresh_database

    with tempfile.TemporaryDirectory(prefix="persona-bench-backup-") as tmp:
        root = Path(tmp)
        admin = make_conninfo(start_embedded(root / "pg"), dbname="postgres")
        source, target, floor = (fresh_database(admin, name) for name in ("bench_backup_source", "bench_backup_target", "bench_backup_floor"))
        began = time.perf_counter()
        _loader()(source, args.messages, args.memories)  # type: ignore[operator]
        load_s = time.perf_counter() - began
        home = root / "home-a"
        (home / "adapters" / "v1" / "adapter").mkdir(parents=True)
        (home / "adapters" / "v1" / "adapter" / "adapter_model.safetensors").write_bytes(os.urandom(args.adapter_mb * 1024 * 1024))
        with psycopg.connect(source) as conn:
            db_bytes = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]
        for url in (target, floor):  # empty databases, as a user's new server would hold: no tables
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")

        conninfo, env = _client(source)
        started = time.perf_counter()
        subprocess.run([str(pg_tool("pg_dump")), "--format=custom", "--no-owner", "--no-privileges", f"--file={root / 'floor.dump'}",
                        f"--dbname={conninfo}"], env=env, check=True)
        dump_s = time.perf_counter() - started
        started = time.perf_counter()
        made = backup(Settings(_env_file=None, database_url=source, home=home), root / "archives")
        backup_s = time.perf_counter() - started

        conninfo, env = _client(floor)
        started = time.perf_counter()
        subprocess.run([str(pg_tool("pg_restore")), "--no-owner", "--no-privileges", "--single-transaction", f"--dbname={conninfo}",
                        str(root / "floor.dump")], env=env, check=True)
        pg_restore_s = time.perf_counter() - started
        started = time.perf_counter()
        restored = restore(Settings(_env_file=None, database_url=target, home=root / "home-b"), made.path)
        restore_s = time.perf_counter() - started

    print(json.dumps({
        "bench": "backup", "messages": args.messages, "memories": args.memories, "adapter_mb": args.adapter_mb, "load_s": round(load_s, 1),
        "database_mb": round(db_bytes / 1e6, 1), "archive_mb": round(made.bytes / 1e6, 1),
        "backup_s": round(backup_s, 1), "pg_dump_alone_s": round(dump_s, 1), "backup_vs_pg_dump": round(backup_s / max(dump_s, 0.01), 2),
        "restore_s": round(restore_s, 1), "pg_restore_alone_s": round(pg_restore_s, 1),
        "restore_vs_pg_restore": round(restore_s / max(pg_restore_s, 0.01), 2),
        "restored_messages": restored.counts["messages"], "goal_backup_s": 60, "goal_restore_s": 120,
        "goal_met": backup_s <= 60 and restore_s <= 120,
    }))


if __name__ == "__main__":
    main()

"""The owner leaving: `persona forget everything`.

Every row of every table, every file under PERSONA_HOME that came from the owner's
data (adapters, training files, uploads, the bot's records), and on the embedded server
the database's own files: PostgreSQL keeps deleted text in its pages and write-ahead log
until they are reused, so the whole data folder goes and the next command starts an
empty one. Kept: the bundled base models under `models/` (no personal data, and slow to
assemble again). On a separate server the tables are emptied in one transaction; that
server's write-ahead log and backups are its administrator's to clear (the docs say so).
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

from persona.config import Settings

log = logging.getLogger(__name__)

KEPT = ("models",)  # folders under PERSONA_HOME that hold nothing of the owner's


@dataclass(frozen=True)
class Erased:
    rows: int | None  # rows deleted from a separate server's tables (None: no separate server)
    database_deleted: bool
    files: int

    def describe(self) -> str:
        parts = [] if self.rows is None else [f"{self.rows:,} rows deleted from the database"]
        if self.database_deleted:
            parts.append("the embedded database deleted (an empty one is made on the next use)")
        return "; ".join([*parts, f"{self.files:,} files deleted"])


def forget_everything(settings: Settings) -> Erased:
    """Delete everything; safe to run again after an interruption (each part is all-or-nothing or idempotent)."""
    from persona.storage.embedded import delete_unused

    # The embedded server's folder first (also one left from before DATABASE_URL was set):
    # refused while `persona run` or `persona web` uses it, before anything is deleted.
    deleted = delete_unused(settings.pg_data_dir)
    rows = None
    if settings.database_url is not None:
        from persona.storage.store import open_store
        from persona.storage.wipe import erase_all

        with open_store(settings).connect() as conn, conn.transaction():
            rows = erase_all(conn)
    files = _erase_home(settings.home.expanduser().resolve(), keep=set(KEPT))
    erased = Erased(rows, deleted, files)
    log.warning("forgot everything: %s", erased.describe())
    return erased


def _erase_home(home: Path, keep: set[str]) -> int:
    if not home.is_dir():
        return 0
    count = 0
    for entry in home.iterdir():
        if entry.name in keep and entry.is_dir() and not entry.is_symlink():
            continue
        if entry.is_dir() and not entry.is_symlink():
            count += sum(1 for p in entry.rglob("*") if p.is_file())
            shutil.rmtree(entry)
        else:
            count += 1
            entry.unlink()
    return count

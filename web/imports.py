"""An import started from the dashboard: the same importers as `persona ingest`, in a thread,
with files and messages counted as they go so the page can show progress."""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ingest.progress import ImportProgress
from persona.errors import PersonaError
from persona.storage.store import Store

log = logging.getLogger(__name__)
_ids = itertools.count(1)


def display_name(filename: str | None, limit: int = 120) -> str:
    """An upload's name as the browser sent it, fit to show: its last path part, no
    control characters, at most `limit` characters with both ends kept (a 5,000-character
    name is shortened, not refused)."""
    name = "".join(c for c in (filename or "").replace("\\", "/").rsplit("/", 1)[-1] if c.isprintable()).strip()
    if not name:
        return "the upload"
    half = (limit - 1) // 2
    return name if len(name) <= limit else name[:half] + "…" + name[-half:]


@dataclass
class ImportJob:
    filename: str
    kind: str
    id: int = field(default_factory=lambda: next(_ids))
    total_files: int | None = None
    files: int = 0
    messages: int = 0
    summary: Any = None  # ingest.loader.ImportSummary once done
    error: str = ""
    done: bool = False

    def advance(self, *, files: int = 0, messages: int = 0) -> None:
        self.files += files
        self.messages += messages


class _Counting(ImportProgress):
    def __init__(self, job: ImportJob) -> None:
        super().__init__(enabled=False)
        self.job = job

    @contextmanager
    def task(self, total_files: int | None) -> Iterator[ImportJob]:
        self.job.total_files = total_files
        yield self.job


def start_import(store: Store, job: ImportJob, saved: Path, owner_id: int | None) -> None:
    """Import `saved` (deleted afterwards, whatever happens) in a thread; `job` tells how it goes."""

    def work() -> None:
        from ingest.dce import ingest_dce
        from ingest.discord_package import ingest_discord_package

        try:
            progress = _Counting(job)
            if job.kind == "dce":
                job.summary = ingest_dce(store, [saved], owner_id=owner_id, progress=progress)
            else:
                job.summary = ingest_discord_package(store, saved, owner_id=owner_id, progress=progress)
        except PersonaError as exc:
            # The importers name the file they read: here that is the upload's stored copy, not what the owner chose.
            job.error = f"{job.filename}: {exc.message.replace(str(saved), job.filename).replace(saved.name, job.filename)}"
            log.warning("an uploaded import was refused: %s", exc.message)
        except Exception as exc:
            log.exception("an uploaded import failed")
            job.error = f"{job.filename}: the import failed ({type(exc).__name__}); nothing was stored"
        finally:
            saved.unlink(missing_ok=True)
            job.done = True

    threading.Thread(target=work, name=f"dashboard-import-{job.id}", daemon=True).start()

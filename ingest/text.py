"""A folder of plain-text or markdown journals, scope `private`.

A date in the file name (`2021-06-26.md`, `journal 2021_06_26.txt`) is the entry's
date; otherwise the file's modification time.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

from ingest.loader import ImportSummary
from ingest.notes import Document, ingest_documents, require_folder
from ingest.progress import ImportProgress
from persona.storage.store import Store

SOURCE = "text"
SUFFIXES = (".txt", ".md", ".markdown")
_DATE_IN_NAME = re.compile(r"(\d{4})[-_.](\d{2})[-_.](\d{2})")


def journal_files(folder: Path) -> list[Path]:
    return [
        p for p in folder.rglob("*")
        if p.is_file() and p.suffix.lower() in SUFFIXES and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    ]


def to_document(path: Path, text: str) -> Document:
    match = _DATE_IN_NAME.search(path.stem)
    created = None
    if match:
        try:
            created = datetime(*(int(g) for g in match.groups()), tzinfo=UTC)
        except ValueError:
            created = None
    return Document(text=text, created_at=created)


def ingest_text(store: Store, folder: Path, *, owner_id: int | None, progress: ImportProgress | None = None) -> ImportSummary:
    require_folder(folder, "journal")
    return ingest_documents(
        store, folder, source=SOURCE, channel_name=folder.resolve().name, files=journal_files(folder),
        transform=to_document, owner_id=owner_id, progress=progress,
    )

"""Folders of documents written by the owner alone (an Obsidian vault, journals).

Each document becomes one message in a `notes` channel with scope `private`: only the
owner can ever be shown it. Structure (headings, paragraphs) is kept as markdown so
the memory step can chunk by heading. A document's id comes from its path, and its
modification time is its edit time, so re-importing an edited note replaces it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from ingest.files import decode_utf8
from ingest.ids import synthetic_id
from ingest.loader import Channel, ImportSession, ImportSummary, IngestError, Person
from ingest.progress import ImportProgress
from persona.privacy.scopes import PRIVATE
from persona.storage.store import Store

log = logging.getLogger(__name__)


@dataclass
class Document:
    """A note after the source's own clean-up: text plus the time it was written."""

    text: str
    created_at: datetime | None


Transform = Callable[[Path, str], Document]


def ingest_documents(
    store: Store,
    root: Path,
    *,
    source: str,
    channel_name: str,
    files: Iterable[Path],
    transform: Transform,
    owner_id: int | None,
    progress: ImportProgress | None = None,
) -> ImportSummary:
    """Import `files` under `root` as the owner's private notes."""
    progress = progress or ImportProgress.quiet()
    documents = sorted(files)
    if not documents:
        raise IngestError(f"no notes (.md or .txt files) in {root}")
    channel_id = synthetic_id(source, "channel", root.resolve())
    with ImportSession(store, source, str(root)) as session, progress.task(len(documents)) as task:
        owner = session.resolve_owner(owner_id)
        session.add_person(Person(id=owner, name=session.names.get(owner, ""), is_owner=True))
        session.add_channel(Channel(id=channel_id, kind="notes", scope=PRIVATE, name=channel_name))
        for path in documents:
            relative = path.relative_to(root).as_posix()
            try:
                stat = path.stat()
                raw = path.read_bytes()
            except OSError as exc:
                raise IngestError(f"cannot read {path}: {exc.strerror}") from None
            document = transform(path, decode_utf8(raw, str(path)))
            text = document.text.strip()
            session.files += 1
            if not text:
                session.skip("notes", "empty")
                task.advance(files=1)
                continue
            modified = datetime.fromtimestamp(stat.st_mtime, tz=UTC)
            created = document.created_at or modified
            session.add_message(
                synthetic_id(source, root.resolve(), relative),
                channel_id,
                owner,
                created.isoformat(),
                text,
                kind="note",
                edited_at=modified.isoformat(),
                attachments=[relative],
            )
            task.advance(files=1, messages=1)
        return session.finish()


def require_folder(path: Path, what: str) -> None:
    if not path.exists():
        raise IngestError(f"{path} does not exist")
    if not path.is_dir():
        raise IngestError(f"{path} is not a folder: pass the {what} folder")

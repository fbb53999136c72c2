"""An Obsidian vault: markdown notes, scope `private`.

Front matter is read for a creation date (`created`, `date`) and dropped from the
text; wiki-links become their visible text (`[[Page|alias]]` → `alias`), embeds of
files are dropped, headings stay as the structure the memory step chunks by.
Obsidian's own folders (`.obsidian`, `.trash`) are skipped.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from pathlib import Path

import yaml

from ingest.loader import ImportSummary
from ingest.notes import Document, ingest_documents, require_folder
from ingest.progress import ImportProgress
from persona.storage.store import Store

SOURCE = "obsidian"
_FRONT_MATTER = re.compile(r"\A---\r?\n(.*?)\r?\n(?:---|\.\.\.)\r?\n?", re.S)
_EMBED = re.compile(r"!\[\[[^\]]*\]\]")
_WIKI_LINK = re.compile(r"\[\[([^\]|#]*)(?:#[^\]|]*)?(?:\|([^\]]*))?\]\]")
_COMMENT = re.compile(r"%%.*?%%", re.S)


def vault_notes(vault: Path) -> list[Path]:
    return [
        p for p in vault.rglob("*.md")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(vault).parts)
    ]


def to_document(path: Path, text: str) -> Document:
    created = None
    match = _FRONT_MATTER.match(text)
    if match:
        created = _front_matter_date(match.group(1))
        text = text[match.end():]
    text = _COMMENT.sub("", text)
    text = _EMBED.sub("", text)
    text = _WIKI_LINK.sub(lambda m: (m.group(2) or m.group(1)).strip(), text)
    if text.strip() and not text.lstrip().startswith("#"):
        text = f"# {path.stem}\n\n{text.lstrip()}"
    return Document(text=text, created_at=created)


def _front_matter_date(block: str) -> datetime | None:
    try:
        data = yaml.safe_load(block)
    except yaml.YAMLError:
        return None  # malformed front matter is the note's business, not a reason to fail
    if not isinstance(data, dict):
        return None
    for key in ("created", "date", "created_at"):
        value = data.get(key)
        if isinstance(value, datetime):
            return value if value.tzinfo else value.replace(tzinfo=UTC)
        if isinstance(value, date):
            return datetime(value.year, value.month, value.day, tzinfo=UTC)
        if isinstance(value, str):
            try:
                parsed = datetime.fromisoformat(value)
            except ValueError:
                continue
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def ingest_obsidian(store: Store, vault: Path, *, owner_id: int | None, progress: ImportProgress | None = None) -> ImportSummary:
    require_folder(vault, "vault")
    return ingest_documents(
        store, vault, source=SOURCE, channel_name=vault.resolve().name, files=vault_notes(vault),
        transform=to_document, owner_id=owner_id, progress=progress,
    )

"""Import: upload a Discord data package (.zip) or a DiscordChatExporter JSON; the same
importers as `persona ingest` (scrubbed before storage, one transaction: a broken file
stores nothing). The upload is deleted once read: only what the importer keeps stays."""

from __future__ import annotations

import logging
import secrets
import shutil
from pathlib import Path

from fastapi import APIRouter, File, Form, HTTPException, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse

from persona.errors import PersonaError
from persona.history import runs
from web.app import dashboard_of, render

log = logging.getLogger(__name__)
router = APIRouter()
KINDS = {"discord-package": ".zip", "dce": ".json"}


@router.get("/import", response_class=HTMLResponse)
def import_form(request: Request) -> HTMLResponse:
    with dashboard_of(request).store.connect() as conn:
        recent = runs.recent_imports(conn, 10)
    return render(request, "import.html", page="import", recent=recent, summary=None, error="")


@router.post("/import", response_class=HTMLResponse)
async def upload(request: Request, kind: str = Form(...), file: UploadFile = File(...)) -> HTMLResponse:
    dashboard = dashboard_of(request)
    if kind not in KINDS:
        raise HTTPException(400, "choose what the file is: a Discord data package or a DiscordChatExporter JSON")
    folder = dashboard.settings.home / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    saved = folder / f"{secrets.token_hex(8)}{KINDS[kind]}"

    def run() -> object:
        from ingest.dce import ingest_dce
        from ingest.discord_package import ingest_discord_package

        with saved.open("wb") as target:
            shutil.copyfileobj(file.file, target)
        owner_id = dashboard.settings.owner_id
        if kind == "dce":
            return ingest_dce(dashboard.store, [saved], owner_id=owner_id)
        return ingest_discord_package(dashboard.store, saved, owner_id=owner_id)

    summary, error = None, ""
    try:
        summary = await run_in_threadpool(run)
    except PersonaError as exc:
        error = f"{file.filename or 'the file'}: {exc.message}"
        log.warning("an upload was refused: %s", exc.message)
    finally:
        Path(saved).unlink(missing_ok=True)
    with dashboard.store.connect() as conn:
        recent = runs.recent_imports(conn, 10)
    return render(request, "import.html", status_code=400 if error else 200, page="import", recent=recent, summary=summary, error=error,
                  filename=file.filename or "")

"""Import: upload a Discord data package (.zip) or a DiscordChatExporter JSON; the same
importers as `persona ingest` (scrubbed before storage, one transaction: a broken file
stores nothing), run in the background with their progress shown. The upload is
deleted once read: only what the importer keeps stays."""

from __future__ import annotations

import secrets
import shutil
from typing import Annotated

from fastapi import APIRouter, File, Form, HTTPException, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from persona.history import runs
from web.dependencies import dashboard_of, render
from web.imports import ImportJob, display_name, start_import

router = APIRouter()
KINDS = {"discord-package": ".zip", "dce": ".json"}


@router.get("/import", response_class=HTMLResponse)
def import_form(request: Request, job: int = 0) -> HTMLResponse:
    dashboard = dashboard_of(request)
    with dashboard.store.connect() as conn:
        recent = runs.recent_imports(conn, 10)
    return render(request, "import.html", page="import", recent=recent, job=dashboard.imports.get(job),
                  max_upload_mb=dashboard.settings.web_max_upload_mb)


@router.get("/import/jobs/{job_id}", response_class=HTMLResponse)
def progress(request: Request, job_id: int) -> HTMLResponse:
    """How an upload's import goes (htmx polls this until it is done)."""
    job = dashboard_of(request).imports.get(job_id)
    if job is None:
        raise HTTPException(404, "no such import here (the dashboard was restarted?): see Recent imports")
    if job.done and "hx-request" in request.headers:
        return HTMLResponse("", headers={"HX-Refresh": "true"})  # finished while watched: the whole page, with the new run listed
    return render(request, "import_job.html", job=job)


@router.post("/import")
async def upload(request: Request, kind: Annotated[str, Form()], file: Annotated[UploadFile, File()]) -> Response:
    dashboard = dashboard_of(request)
    if kind not in KINDS:
        raise HTTPException(400, "choose what the file is: a Discord data package or a DiscordChatExporter JSON")
    folder = dashboard.settings.home / "uploads"
    saved = folder / f"{secrets.token_hex(8)}{KINDS[kind]}"

    def keep() -> None:
        folder.mkdir(parents=True, exist_ok=True)
        with saved.open("wb") as target:
            shutil.copyfileobj(file.file, target)

    await run_in_threadpool(keep)
    job = ImportJob(filename=display_name(file.filename), kind=kind)
    dashboard.imports[job.id] = job
    start_import(dashboard.store, job, saved, dashboard.settings.owner_id)
    return RedirectResponse(f"/import?job={job.id}", status_code=303)

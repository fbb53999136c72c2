"""Adapters: versions with their evaluation reports, two side by side, activate / roll back,
a retrain with its progress live, and the training-run log."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from markdown_it import MarkdownIt
from markupsafe import Markup

from persona import adapters, drafts
from web.charts import stacked_bars
from web.dependencies import dashboard_of, render
from web.training import start_retrain

router = APIRouter()
PLOTS = ("loss_curve.png", "reply_lengths.png", "measures.png")
# Markdown from our own evaluation, but it quotes generated replies: no raw HTML passes.
_markdown = MarkdownIt("commonmark", {"html": False}).enable("table")


def _folder(version: adapters.AdapterVersion) -> Path:
    return Path(version.path).parent


@router.get("/adapters", response_class=HTMLResponse)
def versions(request: Request, done: str = "") -> HTMLResponse:
    dashboard = dashboard_of(request)
    with dashboard.store.connect() as conn:
        found = adapters.versions(conn)
        runs = adapters.recent_runs(conn, 20)
        approvals = drafts.approval(conn)
    chart = stacked_bars([(a.adapter_version or 0, kind, n) for a in approvals
                          for kind, n in (("sent as written", a.sent), ("edited", a.edited), ("discarded", a.discarded))],
                         title="your decisions on each version's drafts", label=lambda v: f"v{v}" if v else "base",
                         empty="no draft decided yet (draft mode: `persona mode set draft`)")
    return render(request, "adapters.html", page="adapters", versions=list(reversed(found)), runs=runs, done=done,
                  training=dashboard.training, approvals={a.adapter_version: a for a in approvals}, approval_chart=chart)


@router.get("/adapters/training", response_class=HTMLResponse)
def training(request: Request) -> HTMLResponse:
    """The retrain's progress (htmx polls this while one runs)."""
    dashboard = dashboard_of(request)
    if "hx-request" in request.headers and dashboard.training is not None and not dashboard.training.running:
        # It finished while the page watched: reload the whole page (new version, the run in the log).
        return HTMLResponse("", headers={"HX-Refresh": "true"})
    with dashboard.store.connect() as conn:
        running = adapters.running_runs(conn)
    return render(request, "adapters_training.html", training=dashboard.training, running=running)


@router.post("/adapters/retrain")
def retrain(request: Request, max_steps: int = Form(0, ge=0, le=1_000_000)) -> Response:
    dashboard = dashboard_of(request)
    if dashboard.training is not None and dashboard.training.running:
        raise HTTPException(409, "a retrain started here is still running")
    dashboard.training = start_retrain(dashboard.store, dashboard.settings, max_steps=max_steps or None)
    return RedirectResponse("/adapters", status_code=303)


@router.post("/adapters/{version_id}/activate")
def activate(request: Request, version_id: int) -> Response:
    with dashboard_of(request).store.connect() as conn:
        result = adapters.activate(conn, version_id)
    return RedirectResponse(f"/adapters?done={result.label}+is+active", status_code=303)


@router.post("/adapters/rollback")
def rollback(request: Request) -> Response:
    with dashboard_of(request).store.connect() as conn:
        result = adapters.rollback(conn)
    return RedirectResponse(f"/adapters?done=rolled+back:+{result.label}+is+active", status_code=303)


@router.get("/adapters/compare", response_class=HTMLResponse)
def compare(request: Request, a: int, b: int) -> HTMLResponse:
    with dashboard_of(request).store.connect() as conn:
        pair = [adapters.get(conn, a), adapters.get(conn, b)]
    if None in pair:
        raise HTTPException(404, "no such adapter version")
    return render(request, "adapters_compare.html", page="adapters", pair=pair, rows=_comparison(pair))


@router.get("/adapters/{version_id}", response_class=HTMLResponse)
def report(request: Request, version_id: int) -> HTMLResponse:
    with dashboard_of(request).store.connect() as conn:
        version = adapters.get(conn, version_id)
    if version is None:
        raise HTTPException(404, f"there is no adapter v{version_id}")
    path = _folder(version) / "report.md"
    # markdown-it with raw HTML off: the report's text is escaped; only its own image links are pointed here.
    html = _markdown.render(path.read_text()).replace('src="', f'src="/adapters/{version_id}/files/') if path.exists() else None
    body = Markup(html) if html is not None else None  # noqa: S704 - rendered with html=False (above)
    return render(request, "adapter.html", page="adapters", version=version, report=body)


@router.get("/adapters/{version_id}/files/{name}")
def plot(request: Request, version_id: int, name: str) -> FileResponse:
    """A report's plot (only the known plot files of that version's folder)."""
    with dashboard_of(request).store.connect() as conn:
        version = adapters.get(conn, version_id)
    if version is None or name not in PLOTS or not (_folder(version) / name).is_file():
        raise HTTPException(404, "no such plot")
    return FileResponse(_folder(version) / name, media_type="image/png")


def _comparison(pair: list[Any]) -> list[tuple[str, list[str]]]:
    """Rows of figures for two versions: held-out loss, likeness and the rest of metrics.json's numbers."""
    def flat(prefix: str, value: Any, into: dict[str, str]) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                flat(f"{prefix}.{k}" if prefix else str(k), v, into)
        elif isinstance(value, bool) or value is None:
            return
        elif isinstance(value, (int, float)):
            into[prefix] = f"{value:,.4f}" if isinstance(value, float) else f"{value:,}"

    figures = []
    for version in pair:
        found: dict[str, str] = {}
        flat("", version.metrics, found)
        figures.append(found)
    names = sorted(set(figures[0]) | set(figures[1]))
    return [("base model", [v.base_model for v in pair]), ("status", [v.status for v in pair]),
            ("created", [f"{v.created_at:%Y-%m-%d %H:%M}" for v in pair])] + [(n, [f.get(n, "—") for f in figures]) for n in names]

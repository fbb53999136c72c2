"""`persona db upgrade | status` and `persona stats`."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table

from persona.cli.app import app, err, out, settings_of

db_app = typer.Typer(help="The database: migrations and server status.", no_args_is_help=True)
app.add_typer(db_app, name="db")


@db_app.command("upgrade")
def db_upgrade(ctx: typer.Context) -> None:
    """Apply pending migrations (safe to run any time, and concurrently)."""
    from persona.storage.store import open_store

    store = open_store(settings_of(ctx), migrate=False)
    applied = store.upgrade()
    for migration in applied:
        out.print(f"applied {migration.filename}")
    state = store.migration_status()
    out.print(f"database is up to date at version {state.current_version:04d} ({store.database.describe()})")


@db_app.command("status")
def db_status(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Show the server, pgvector version, and applied/pending migrations."""
    from persona.storage.store import open_store

    store = open_store(settings_of(ctx), migrate=False)
    info = store.server_info()
    state = store.migration_status()
    report: dict[str, Any] = {
        "server": store.database.describe(),
        "embedded": store.database.embedded_dir is not None,
        "postgres_version": info["postgres_version"],
        "pgvector_installed": info["pgvector_installed"],
        "pgvector_available": info["pgvector_available"],
        "current_version": state.current_version,
        "applied": [{"version": m.version, "name": m.name, "applied_at": m.applied_at.isoformat()} for m in state.applied],
        "pending": [m.filename for m in state.pending],
        "modified": state.modified,
    }
    if as_json:
        print(json.dumps(report))
        return
    out.print(f"server      {report['server']}")
    out.print(f"postgres    {report['postgres_version']}")
    out.print(f"pgvector    {report['pgvector_installed'] or 'not installed'} (server offers {report['pgvector_available']})")
    table = Table("migration", "state", "applied at", box=None, pad_edge=False)
    for m in state.applied:
        table.add_row(f"{m.version:04d}_{m.name}", "applied", m.applied_at.strftime("%Y-%m-%d %H:%M:%S %Z"))
    for m in state.pending:
        table.add_row(m.filename.removesuffix(".sql"), "[yellow]pending[/]", "")
    out.print(table)
    for name in state.modified:
        err.print(f"warning: {name} was edited after it was applied; add a new migration instead")
    if state.pending:
        out.print("run `persona db upgrade` to apply the pending migrations")


# --- persona stats -----------------------------------------------------------------------


@app.command("stats")
def stats(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Count messages, channels, memories, feedback and adapters."""
    from persona.status import collect_stats
    from persona.storage.store import open_store

    with open_store(settings_of(ctx)).connect() as conn:
        counts = collect_stats(conn)
    if as_json:
        print(json.dumps(counts))
        return
    table = Table("what", "count", box=None, pad_edge=False)
    table.add_row("messages", str(counts["messages"]))
    table.add_row("  by the owner", str(counts["owner_messages"]))
    for source, n in counts["messages_by_source"].items():
        table.add_row(f"  from {source}", str(n))
    for language, n in counts["messages_by_language"].items():
        table.add_row(f"  in {language}", str(n))
    table.add_row("people", f"{counts['people']} ({counts['opted_out_people']} opted out)")
    table.add_row("channels", str(counts["channels"]))
    for kind, n in counts["channels_by_kind"].items():
        table.add_row(f"  {kind}", str(n))
    table.add_row("memories", f"{counts['memories']} ({counts['memories_embedded']} embedded)")
    table.add_row("replies sent", str(counts["replies"]))
    table.add_row("feedback", str(counts["feedback"]))
    active = counts["active_adapter"]
    table.add_row("adapters", f"{counts['adapters']} (active: {'v' + str(active) if active else 'none'})")
    table.add_row("imports", str(counts["import_runs"]))
    out.print(table)



"""The `persona` command line: one entry point, one sub-command group per concern."""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import dataclass
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from persona import __version__
from persona.config import Settings, load_settings
from persona.errors import PersonaError

app = typer.Typer(
    help="persona: a self-hosted Discord bot that talks like its owner.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
db_app = typer.Typer(help="The database: migrations and server status.", no_args_is_help=True)
app.add_typer(db_app, name="db")

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


@dataclass
class AppContext:
    settings: Settings


def _version(value: bool) -> None:
    if value:
        print(f"persona {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    log_level: Annotated[str | None, typer.Option(help="Override PERSONA_LOG_LEVEL (DEBUG, INFO, WARNING, ERROR).")] = None,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")] = False,
) -> None:
    from persona.logs import configure_logging

    overrides = {"log_level": log_level} if log_level else {}
    settings = load_settings(**overrides)
    configure_logging(settings.log_level, settings.secrets)
    logging.getLogger(__name__).debug("settings: %r", settings)
    ctx.obj = AppContext(settings=settings)


def settings_of(ctx: typer.Context) -> Settings:
    """The settings loaded by the root callback (for plugin commands too)."""
    return ctx.ensure_object(AppContext).settings


# --- persona db ------------------------------------------------------------------------


@db_app.command("upgrade")
def db_upgrade(ctx: typer.Context) -> None:
    """Apply pending migrations (safe to run any time, and concurrently)."""
    from persona.store import open_store

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
    from persona.store import open_store

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
    from persona.store import open_store

    store = open_store(settings_of(ctx))
    counts = store.stats()
    if as_json:
        print(json.dumps(counts))
        return
    table = Table("what", "count", box=None, pad_edge=False)
    table.add_row("messages", str(counts["messages"]))
    table.add_row("  by the owner", str(counts["owner_messages"]))
    for source, n in counts["messages_by_source"].items():
        table.add_row(f"  from {source}", str(n))
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


# --- entry point -----------------------------------------------------------------------


def register_plugins(target: typer.Typer) -> None:
    """Add the commands of bot/, ingest/ and trainer/, declared as `persona.commands` entry points.

    The core never imports those packages; they register themselves (see pyproject.toml).
    """
    from importlib.metadata import entry_points

    for entry in sorted(entry_points(group="persona.commands"), key=lambda e: e.name):
        entry.load()(target)


def _fail(message: str, code: int) -> None:
    err.print(f"[bold red]error:[/] {message}", soft_wrap=True)
    sys.exit(code)


def main() -> None:
    """Console-script entry: user errors become one line and an exit code, never a traceback."""
    import psycopg

    try:
        register_plugins(app)
        app(prog_name="persona")
    except PersonaError as exc:
        _fail(exc.message, exc.exit_code)
    except psycopg.OperationalError as exc:
        reason = next((ln.strip() for ln in str(exc).splitlines() if ln.strip()), "connection lost")
        _fail(f"the database connection failed mid-command ({reason}); nothing was committed by the failed step, check the server and retry", 1)
    except KeyboardInterrupt:
        _fail("interrupted", 130)


if __name__ == "__main__":
    main()

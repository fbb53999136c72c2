"""`persona backup` and `persona restore` (persona/backup.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from persona.cli.app import app, err, out, settings_of


@app.command("backup")
def backup_cmd(
    ctx: typer.Context,
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="A folder, or a file name ending in .persona-backup (default: PERSONA_HOME/backups/).")] = None,
) -> None:
    """One archive of the database (pg_dump), the adapters and every file in PERSONA_HOME, with checksums."""
    from persona.backup import backup

    made = backup(settings_of(ctx), output)
    counts = made.counts
    out.print(f"backup: {made.path} ({made.bytes / 1e6:,.1f} MB: {counts['messages']:,} messages, {counts['memories']:,} memories, "
              f"{counts['adapters']} adapter(s))")
    out.print("it holds everything persona knows, secrets excepted: keep it where your data may be")


@app.command("restore")
def restore_cmd(
    ctx: typer.Context,
    archive: Annotated[Path, typer.Argument(help="A *.persona-backup file made by `persona backup`.")],
    force: Annotated[bool, typer.Option("--force", help="Replace a database and home that already hold data.")] = False,
) -> None:
    """Restore a backup into the configured database and PERSONA_HOME (empty ones, or --force)."""
    from persona.backup import restore

    done = restore(settings_of(ctx), archive, force=force)
    counts = done.counts
    out.print(f"restored from persona {done.made_by}: {counts['messages']:,} messages, {counts['memories']:,} memories, "
              f"{counts['adapters']} adapter(s) (active: {'v' + str(done.active_adapter) if done.active_adapter else 'none'}), "
              f"{done.files} file(s)")
    if done.settings_differ:
        err.print("[yellow]note:[/] settings that differ from the backup's (see settings.json in the archive): "
                  + ", ".join(f"PERSONA_{name.upper()}" for name in done.settings_differ))

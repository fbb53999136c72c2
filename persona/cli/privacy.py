"""`persona forget user | channel | range | everything`, `persona optout`, `persona optin`."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from persona.cli.app import app, out, settings_of

forget_app = typer.Typer(help="Delete for good: a person, a channel, a time range or everything (messages, memories, replies, "
                                "training files; adapters trained on it are replaced).", no_args_is_help=True)
app.add_typer(forget_app, name="forget")

YesOption = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
NoRetrain = Annotated[bool, typer.Option("--no-retrain", help="Do not retrain now when the serving adapter was trained on it "
                                         "(the next retrain, e.g. the nightly one, does it first).")]


def _confirm(what: str, yes: bool) -> None:
    from persona.errors import ConfigError

    if yes:
        return
    if not sys.stdin.isatty():
        raise ConfigError(f"refusing to delete {what} without confirmation: add --yes")
    if not typer.confirm(f"Delete {what} for good?"):
        raise typer.Exit(1)


def _delete(ctx: typer.Context, action: Any, *, retrain: bool = True) -> None:  # action(conn) -> Forgotten
    """Delete in one transaction, clean the training files, then retrain if the serving adapter learned from it."""
    from persona.backup import made_before
    from persona.privacy.forget import carry_out
    from persona.storage.store import open_store

    settings = settings_of(ctx)
    started = datetime.now(UTC)
    with open_store(settings).connect() as conn:
        result, purged = carry_out(conn, action, settings.datasets_dir)
    out.print(result.describe())
    if purged.describe():
        out.print(purged.describe())
    _older_backups(made_before(settings, started))
    if not result.needs_retrain:
        return
    command = next((c.callback for c in app.registered_commands if c.name == "retrain"), None)
    if not retrain or command is None:
        out.print("run `persona retrain` to train an adapter without it (the nightly retrain does it first)")
        return
    out.print("retraining without it…")
    command(ctx)


@forget_app.command("user")
def forget_user(ctx: typer.Context, user_id: Annotated[int, typer.Argument(help="Discord user id.")], yes: YesOption = False,
                no_retrain: NoRetrain = False) -> None:
    """Everything a person wrote, and your whole DM conversation with them."""
    from persona.privacy.forget import forget_person

    _confirm(f"everything from and with user {user_id}", yes)
    _delete(ctx, lambda conn: forget_person(conn, user_id), retrain=not no_retrain)


@forget_app.command("channel")
def forget_channel_cmd(ctx: typer.Context, channel_id: Annotated[int, typer.Argument(help="Channel id.")], yes: YesOption = False,
                       no_retrain: NoRetrain = False) -> None:
    """Every message of a channel and the memories made from it."""
    from persona.privacy.forget import forget_channel

    _confirm(f"channel {channel_id}", yes)
    _delete(ctx, lambda conn: forget_channel(conn, channel_id), retrain=not no_retrain)


@forget_app.command("range")
def forget_range_cmd(
    ctx: typer.Context,
    start: Annotated[str, typer.Argument(help="From (inclusive), e.g. 2021-06-01, 2021-06-01T18:00 or 2021-06-01T18:00+02:00.")],
    end: Annotated[str, typer.Argument(help="Until (exclusive).")],
    yes: YesOption = False,
    no_retrain: NoRetrain = False,
) -> None:
    """Messages written in a time range (UTC unless an offset is given)."""
    from persona.privacy.forget import forget_range
    from persona.privacy.requests import time_range

    begin, until = time_range(start, end)
    _confirm(f"everything written from {begin:%Y-%m-%d %H:%M} to {until:%Y-%m-%d %H:%M} UTC", yes)
    _delete(ctx, lambda conn: forget_range(conn, begin, until), retrain=not no_retrain)


@app.command("optout")
def optout(ctx: typer.Context, user_id: Annotated[int, typer.Argument(help="Discord user id.")], yes: YesOption = False,
           no_retrain: NoRetrain = False) -> None:
    """Opt a person out (on their request): delete what they wrote and refuse it from now on."""
    from persona.privacy.forget import opt_out

    _confirm(f"everything user {user_id} wrote, and keep them out", yes)
    _delete(ctx, lambda conn: opt_out(conn, user_id), retrain=not no_retrain)


@app.command("optin")
def optin(ctx: typer.Context, user_id: Annotated[int, typer.Argument(help="Discord user id.")]) -> None:
    """Let an opted-out person's new messages be kept again."""
    from persona.privacy.forget import opt_in
    from persona.storage.store import open_store

    with open_store(settings_of(ctx)).connect() as conn, conn.transaction():
        changed = opt_in(conn, user_id)
    out.print(f"user {user_id} {'opted back in' if changed else 'was not opted out'}")




@forget_app.command("everything")
def forget_everything_cmd(ctx: typer.Context, yes: YesOption = False) -> None:
    """Everything: every message, memory, reply, rating, adapter and training file, and the embedded
    database's own files (for when you stop using persona). Only the bundled base models stay."""
    from persona.backup import made_before
    from persona.privacy.leaving import forget_everything

    settings = settings_of(ctx)
    _confirm(f"everything persona holds (the database and every file in {settings.home})", yes)
    older = made_before(settings, datetime.now(UTC))  # read before the home (and its list of backups) goes
    out.print(forget_everything(settings).describe())
    _older_backups([path for path in older if path.is_file()])


def _older_backups(paths: list[Path]) -> None:
    """Backups are copies: forget cannot reach into them, so it names them."""
    if paths:
        out.print(f"[yellow]{len(paths)} backup(s) made before this still hold what was deleted[/] — delete them, or make them "
                  "again with `persona backup` once they are gone: " + ", ".join(str(p) for p in paths))

"""The `persona` command line: one entry point, one module per group of commands.

`persona.cli.app` holds the Typer application and the settings; `db`, `memory`,
`privacy` and `chat` add the core's commands; bot/, ingest/, trainer/ and demo/ add
theirs through the `persona.commands` entry point.
"""

from __future__ import annotations

import sys

import typer

from persona.cli import backup, chat, db, languages, memory, privacy, replies, sending, serve  # noqa: F401 - each module registers its commands
from persona.cli.app import app, err, out, settings_of
from persona.errors import PersonaError, first_line

__all__ = ["app", "err", "main", "out", "settings_of"]


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
        reason = first_line(exc, "connection lost")
        _fail(f"the database connection failed mid-command ({reason}); nothing was committed by the failed step, check the server and retry", 1)
    except KeyboardInterrupt:
        _fail("interrupted", 130)


if __name__ == "__main__":
    main()

"""The `persona` Typer application, its console streams and the settings every command reads."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Annotated

import typer
from rich.console import Console

from persona import __version__
from persona.config import Settings, load_settings

app = typer.Typer(
    help="persona: a self-hosted Discord bot that talks like its owner.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

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

"""`persona ingest ...`: one sub-command per source, one summary format for all."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from ingest.loader import ImportSummary
from ingest.progress import ImportProgress

ingest_app = typer.Typer(help="Import the owner's history (scrubbed of personal data before storage).", no_args_is_help=True)
out = Console(highlight=False, soft_wrap=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print the summary as one JSON object.")]


def register(app: typer.Typer) -> None:
    app.add_typer(ingest_app, name="ingest")


def _store(ctx: typer.Context):  # noqa: ANN202 - persona.store.Store
    from persona.cli import settings_of
    from persona.storage.store import open_store

    return open_store(settings_of(ctx))


def print_summary(summary: ImportSummary, as_json: bool) -> None:
    if as_json:
        print(json.dumps(summary.as_json()))
        return
    table = Table("channel kind", "new", "updated", "duplicate", "skipped", box=None, pad_edge=False)
    for kind, counts in sorted(summary.by_kind.items()):
        table.add_row(kind, f"{counts.new:,}", f"{counts.updated:,}", f"{counts.duplicate:,}", f"{counts.skipped:,}")
    total = summary.total
    table.add_row("[bold]total", *(f"[bold]{total[k]:,}" for k in ("new", "updated", "duplicate", "skipped")))
    out.print(table)
    if summary.skipped_reasons:
        out.print("skipped: " + ", ".join(f"{n:,} {reason.replace('_', ' ')}" for reason, n in summary.skipped_reasons.most_common()))
    if summary.scrubbed:
        out.print("scrubbed before storage: " + ", ".join(f"{n:,} {kind.replace('_', ' ')}" for kind, n in summary.scrubbed.most_common()))
    out.print(f"import run {summary.run_id}: {summary.files:,} file(s), {total['new']:,} new message(s)")


@ingest_app.command("discord-package")
def discord_package(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="The package .zip, or the folder it unpacks to.")],
    as_json: JsonOption = False,
) -> None:
    """Discord's official data package (your own messages, every layout since 2018)."""
    from ingest.discord_package import ingest_discord_package
    from persona.cli import settings_of

    store = _store(ctx)
    summary = ingest_discord_package(
        store, path, owner_id=settings_of(ctx).owner_id, progress=ImportProgress.for_terminal("discord package")
    )
    print_summary(summary, as_json)


@ingest_app.command("dce")
def dce(
    ctx: typer.Context,
    paths: Annotated[list[Path], typer.Argument(help="DiscordChatExporter JSON files, or folders of them.")],
    as_json: JsonOption = False,
) -> None:
    """DiscordChatExporter JSON exports (whole conversations; needs PERSONA_OWNER_ID)."""
    from ingest.dce import ingest_dce
    from persona.cli import settings_of

    store = _store(ctx)
    summary = ingest_dce(store, paths, owner_id=settings_of(ctx).owner_id, progress=ImportProgress.for_terminal("dce"))
    print_summary(summary, as_json)


@ingest_app.command("obsidian")
def obsidian(
    ctx: typer.Context,
    vault: Annotated[Path, typer.Argument(help="The vault folder.")],
    as_json: JsonOption = False,
) -> None:
    """An Obsidian vault: markdown notes, visible to the owner only."""
    from ingest.obsidian import ingest_obsidian
    from persona.cli import settings_of

    summary = ingest_obsidian(_store(ctx), vault, owner_id=settings_of(ctx).owner_id, progress=ImportProgress.for_terminal("obsidian"))
    print_summary(summary, as_json)


@ingest_app.command("text")
def text(
    ctx: typer.Context,
    folder: Annotated[Path, typer.Argument(help="A folder of .txt / .md journal files.")],
    as_json: JsonOption = False,
) -> None:
    """Plain-text or markdown journals, visible to the owner only."""
    from ingest.text import ingest_text
    from persona.cli import settings_of

    summary = ingest_text(_store(ctx), folder, owner_id=settings_of(ctx).owner_id, progress=ImportProgress.for_terminal("text"))
    print_summary(summary, as_json)


@ingest_app.command("whatsapp")
def whatsapp(
    ctx: typer.Context,
    paths: Annotated[list[Path], typer.Argument(help="WhatsApp 'Export chat' .txt or .zip files, or folders of them.")],
    me: Annotated[str | None, typer.Option(help="Your name as it appears in the chats (default: PERSONA_WHATSAPP_NAME).")] = None,
    timezone: Annotated[str | None, typer.Option(help="The phone's time zone (default: PERSONA_TIMEZONE).")] = None,
    as_json: JsonOption = False,
) -> None:
    """WhatsApp chat exports (Android and iOS, any date locale)."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from ingest.whatsapp import ingest_whatsapp
    from persona.cli import settings_of
    from persona.errors import ConfigError

    settings = settings_of(ctx)
    zone = timezone or settings.timezone
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"--timezone: {zone!r} is not an IANA time zone such as 'Europe/Berlin'") from None
    summary = ingest_whatsapp(
        _store(ctx), paths, owner_id=settings.owner_id, me=me or settings.whatsapp_name or None, timezone=zone,
        progress=ImportProgress.for_terminal("whatsapp"),
    )
    print_summary(summary, as_json)

"""`persona languages`: what the history is written in (persona/languages.py)."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from persona.cli.app import app, out, settings_of

languages_app = typer.Typer(help="The languages of your history: counted, and detected for messages stored before detection existed.",
                            invoke_without_command=True)
app.add_typer(languages_app, name="languages")


@languages_app.callback()
def languages_cmd(ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False) -> None:
    """Messages by language (yours and everyone's); `undecided`: too short to tell; `not yet detected`: stored since the last memory build."""
    if ctx.invoked_subcommand is not None:
        return
    from persona.history import messages
    from persona.languages import parse
    from persona.memory import stored_model
    from persona.storage.store import open_store

    settings = settings_of(ctx)
    with open_store(settings).connect() as conn:
        counts = messages.counts(conn)
        embedded = stored_model(conn)
    found = {"detected_among": list(parse(settings.languages)), "messages": counts["messages_by_language"],
             "owner_messages": counts["owner_messages_by_language"], "memory_embedded_with": embedded[0] if embedded else None}
    if as_json:
        print(json.dumps(found))
        return
    table = Table("language", "messages", "yours", box=None, pad_edge=False)
    for language, n in found["messages"].items():
        table.add_row(language, f"{n:,}", f"{found['owner_messages'].get(language, 0):,}")
    out.print(table)
    out.print(f"detected among: {', '.join(found['detected_among'])} (PERSONA_LANGUAGES)")
    out.print(f"memory embedded with: {found['memory_embedded_with'] or 'nothing yet'} "
              "(PERSONA_EMBED_MODEL; unset, the first `persona memory build` picks the multilingual model when you write mostly in another language)")


@languages_app.command("detect")
def detect_cmd(ctx: typer.Context) -> None:
    """Detect the language of every message not looked at yet (`persona memory build` does this first, too); a batch per
    transaction: safe to stop and run again."""
    from persona.languages import detector_for, fill_missing
    from persona.storage.store import open_store

    settings = settings_of(ctx)
    with open_store(settings).connect() as conn:
        examined, changed = fill_missing(conn, detector_for(settings.languages))
    out.print(f"{examined:,} messages examined; {changed:,} in a language, {examined - changed:,} too short to tell")

"""The `persona` command line: one entry point, one sub-command group per concern."""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from persona import __version__
from persona.config import Settings, load_settings
from persona.errors import PersonaError
from persona.people import stored_owner

app = typer.Typer(
    help="persona: a self-hosted Discord bot that talks like its owner.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
db_app = typer.Typer(help="The database: migrations and server status.", no_args_is_help=True)
app.add_typer(db_app, name="db")
memory_app = typer.Typer(help="Memory: chunk, embed and search what was said.", no_args_is_help=True)
app.add_typer(memory_app, name="memory")
forget_app = typer.Typer(help="Delete for good: a person, a channel or a time range (messages, memories, replies).", no_args_is_help=True)
app.add_typer(forget_app, name="forget")

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


# --- persona memory ---------------------------------------------------------------------


def embedder_for(settings: Settings):  # noqa: ANN202 - persona.embeddings.Embedder
    from persona.embeddings import Embedder, resolve_embed_model

    return Embedder(resolve_embed_model(settings.embed_model))


@memory_app.command("build")
def memory_build(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Chunk new messages into memories and embed everything not embedded yet (resumable)."""
    from persona import memory
    from persona.progress import counting_bar
    from persona.store import open_store

    settings = settings_of(ctx)
    store = open_store(settings)
    embedder = embedder_for(settings)
    with store.connect() as conn:
        memory.prepare_vectors(conn, embedder)
        conn.commit()
        created = memory.chunk_pending(conn, embedder)
        with counting_bar(memory.unembedded_count(conn), "embedding") as advance:
            embedded = memory.embed_pending(conn, embedder, progress=advance)
        indexed = memory.ensure_index(conn)
        total = conn.execute("SELECT count(*) FROM memories").fetchone()[0]
    result = {"created": created, "embedded": embedded, "memories": total, "model": embedder.name, "index_built": indexed}
    if as_json:
        print(json.dumps(result))
    else:
        out.print(f"{created:,} new memories, {embedded:,} embedded with {embedder.name}; {total:,} memories in all")


@memory_app.command("rebuild")
def memory_rebuild(ctx: typer.Context) -> None:
    """Re-embed every memory with PERSONA_EMBED_MODEL (after switching models)."""
    from persona import memory
    from persona.progress import counting_bar
    from persona.store import open_store

    settings = settings_of(ctx)
    store = open_store(settings)
    embedder = embedder_for(settings)
    with store.connect() as conn:
        total = conn.execute("SELECT count(*) FROM memories").fetchone()[0]
        memory.prepare_vectors(conn, embedder, rebuild=True)
        conn.commit()
        with counting_bar(total, "re-embedding") as advance:
            embedded = memory.embed_pending(conn, embedder, progress=advance)
        memory.ensure_index(conn)
    out.print(f"{embedded:,} memories re-embedded with {embedder.name} ({embedder.dimension}-d)")


@memory_app.command("search")
def memory_search(
    ctx: typer.Context,
    text: Annotated[str, typer.Argument(help="What to look for.")],
    as_user: Annotated[int | None, typer.Option("--as", help="Who asks (a Discord user id; default: the owner).")] = None,
    channel: Annotated[int | None, typer.Option(help="Where they ask: a channel id (default: a DM with the bot).")] = None,
    guild: Annotated[int | None, typer.Option(help="The server of --channel, if persona has not seen that channel.")] = None,
    k: Annotated[int, typer.Option(min=1, max=100, help="How many memories.")] = 10,
    mode: Annotated[str, typer.Option(help="fused (default), vector or text.")] = "fused",
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list of {id, scope, score, content}.")] = False,
) -> None:
    """Show what the bot would recall for this asker in this place (scope rules applied)."""
    from persona import memory
    from persona.errors import ConfigError
    from persona.store import open_store

    if mode not in memory.MODES:
        raise ConfigError(f"--mode must be one of {', '.join(memory.MODES)}")
    settings = settings_of(ctx)
    store = open_store(settings)
    embedder = embedder_for(settings)
    with store.connect() as conn:
        owner = stored_owner(conn)
        owner_id = settings.owner_id or (owner.id if owner else None)
        asker = as_user if as_user is not None else owner_id
        place = _place(conn, channel, guild)
        from persona.scopes import readable_scopes

        scopes = readable_scopes(asker, place, owner_id)
        results = memory.search(conn, embedder, text, scopes, k=k, mode=mode)
    if as_json:
        print(json.dumps([m.as_json() for m in results]))
        return
    out.print(f"[dim]scopes: {'all' if scopes is None else ', '.join(scopes) or 'none'}[/]")
    for m in results:
        out.print(f"[bold]#{m.id}[/] [dim]{m.scope} · score {m.score:.4f}[/]")
        out.print(m.content, markup=False)
        out.print()
    if not results:
        out.print("nothing recalled")


def _place(conn: Any, channel: int | None, guild: int | None):  # noqa: ANN202 - persona.scopes.Place
    from persona.errors import ConfigError
    from persona.scopes import Place

    if channel is None:
        return Place(kind="guild", guild_id=guild) if guild is not None else Place.dm()
    row = conn.execute("SELECT kind, guild_id FROM channels WHERE id = %s", (channel,)).fetchone()
    if row is None:
        if guild is None:
            raise ConfigError(f"--channel {channel} is not a channel persona knows: add --guild GUILD_ID (or leave --channel out for a DM)")
        return Place.guild(guild, channel)
    kind, guild_id = row
    if kind == "dm":
        return Place.dm(channel)
    if kind == "group_dm":
        return Place("group_dm", channel_id=channel)
    if guild_id is None and guild is None:
        raise ConfigError(f"channel {channel} has no known server: add --guild GUILD_ID")
    return Place.guild(guild_id or guild, channel)


# --- persona chat -----------------------------------------------------------------------


@app.command("chat")
def chat(
    ctx: typer.Context,
    show_memories: Annotated[bool, typer.Option("--show-memories", help="Print the memories each reply recalled.")] = False,
    greedy: Annotated[bool, typer.Option(help="Deterministic replies (no sampling).")] = False,
) -> None:
    """Talk to your persona in the terminal (same memory and adapter as the bot). Ctrl-D or /quit ends."""
    from persona.chat import build_engine, chat_loop
    from persona.store import open_store

    settings = settings_of(ctx)
    engine = build_engine(settings, open_store(settings))
    engine.generator.greedy = greedy
    version = engine.generator.adapter_version
    err.print(f"[dim]{engine.owner_name}'s persona · {'adapter v' + str(version) if version else 'base model (no adapter yet)'} · Ctrl-D to end[/]")
    chat_loop(engine, out, show_memories=show_memories)


# --- persona forget / optout / optin -------------------------------------------------------

YesOption = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]


def _confirm(what: str, yes: bool) -> None:
    from persona.errors import ConfigError

    if yes:
        return
    if not sys.stdin.isatty():
        raise ConfigError(f"refusing to delete {what} without confirmation: add --yes")
    if not typer.confirm(f"Delete {what} for good?"):
        raise typer.Exit(1)


def _delete(ctx: typer.Context, action: Any) -> None:  # action(conn) -> Forgotten
    from persona.store import open_store

    with open_store(settings_of(ctx)).connect() as conn, conn.transaction():
        result = action(conn)
    out.print(result.describe())


@forget_app.command("user")
def forget_user(ctx: typer.Context, user_id: Annotated[int, typer.Argument(help="Discord user id.")], yes: YesOption = False) -> None:
    """Everything a person wrote, and your whole DM conversation with them."""
    from persona.forget import forget_person

    _confirm(f"everything from and with user {user_id}", yes)
    _delete(ctx, lambda conn: forget_person(conn, user_id))


@forget_app.command("channel")
def forget_channel_cmd(ctx: typer.Context, channel_id: Annotated[int, typer.Argument(help="Channel id.")], yes: YesOption = False) -> None:
    """Every message of a channel and the memories made from it."""
    from persona.forget import forget_channel

    _confirm(f"channel {channel_id}", yes)
    _delete(ctx, lambda conn: forget_channel(conn, channel_id))


@forget_app.command("range")
def forget_range_cmd(
    ctx: typer.Context,
    start: Annotated[datetime, typer.Argument(help="From (inclusive), e.g. 2021-06-01 or 2021-06-01T18:00.")],
    end: Annotated[datetime, typer.Argument(help="Until (exclusive).")],
    yes: YesOption = False,
) -> None:
    """Messages written in a time range (UTC unless an offset is given)."""
    from persona.errors import ConfigError
    from persona.forget import forget_range

    start, end = (d if d.tzinfo else d.replace(tzinfo=timezone.utc) for d in (start, end))
    if end <= start:
        raise ConfigError("END must be after START")
    _confirm(f"everything written from {start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC", yes)
    _delete(ctx, lambda conn: forget_range(conn, start, end))


@app.command("optout")
def optout(ctx: typer.Context, user_id: Annotated[int, typer.Argument(help="Discord user id.")], yes: YesOption = False) -> None:
    """Opt a person out (on their request): delete what they wrote and refuse it from now on."""
    from persona.forget import opt_out

    _confirm(f"everything user {user_id} wrote, and keep them out", yes)
    _delete(ctx, lambda conn: opt_out(conn, user_id))


@app.command("optin")
def optin(ctx: typer.Context, user_id: Annotated[int, typer.Argument(help="Discord user id.")]) -> None:
    """Let an opted-out person's new messages be kept again."""
    from persona.forget import opt_in
    from persona.store import open_store

    with open_store(settings_of(ctx)).connect() as conn, conn.transaction():
        changed = opt_in(conn, user_id)
    out.print(f"user {user_id} {'opted back in' if changed else 'was not opted out'}")


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

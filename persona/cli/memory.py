"""`persona memory build | rebuild | search` and `persona topics`."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from persona.cli.app import app, out, settings_of
from persona.config import Settings

memory_app = typer.Typer(help="Memory: chunk, embed and search what was said.", no_args_is_help=True)
app.add_typer(memory_app, name="memory")


def embedder_for(settings: Settings, conn: Any, *, keep_stored: bool = True) -> Any:  # persona.memory.embeddings.Embedder
    from persona.memory import chosen_model
    from persona.memory.embeddings import Embedder

    return Embedder(chosen_model(conn, settings.embed_model, keep_stored=keep_stored))


@memory_app.command("build")
def memory_build(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Chunk new messages into memories and embed everything not embedded yet (resumable)."""
    from persona import memory
    from persona.cli.progress import counting_bar
    from persona.storage.store import open_store

    settings = settings_of(ctx)
    store = open_store(settings)
    with store.connect() as conn:
        embedder = embedder_for(settings, conn)
        built = memory.build(conn, embedder, bar=lambda total: counting_bar(total, "embedding"))
    result = {"created": built.created, "embedded": built.embedded, "memories": built.total, "model": embedder.name,
              "index_built": built.index_built}
    if as_json:
        print(json.dumps(result))
    else:
        out.print(f"{built.created:,} new memories, {built.embedded:,} embedded with {embedder.name}; {built.total:,} memories in all")


@memory_app.command("rebuild")
def memory_rebuild(ctx: typer.Context) -> None:
    """Re-embed every memory with PERSONA_EMBED_MODEL (after switching models; unset: chosen by the owner's languages again)."""
    from persona import memory
    from persona.cli.progress import counting_bar
    from persona.storage.store import open_store

    settings = settings_of(ctx)
    store = open_store(settings)
    with store.connect() as conn:
        embedder = embedder_for(settings, conn, keep_stored=False)
        embedded = memory.rebuild(conn, embedder, bar=lambda total: counting_bar(total, "re-embedding"))
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
    from persona.storage.store import open_store

    if mode not in memory.MODES:
        raise ConfigError(f"--mode must be one of {', '.join(memory.MODES)}")
    settings = settings_of(ctx)
    store = open_store(settings)
    from persona.privacy.scopes import Place, readable_scopes

    with store.connect() as conn:
        embedder = embedder_for(settings, conn)
        owner_id, asker, place = _who_and_where(conn, settings, as_user, channel, guild, default=Place.dm())
        scopes = readable_scopes(asker, place, owner_id)
        results = memory.recall(conn, embedder, text, asker_id=asker, place=place, owner_id=owner_id, k=k, mode=mode)
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


@app.command("topics")
def topics_command(
    ctx: typer.Context,
    as_user: Annotated[int | None, typer.Option("--as", help="Who asks (a Discord user id; default: the owner).")] = None,
    channel: Annotated[int | None, typer.Option(help="Where they ask: a channel id (default: the owner's terminal).")] = None,
    guild: Annotated[int | None, typer.Option(help="The server of --channel, if persona has not seen that channel.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list of topics.")] = False,
) -> None:
    """What the owner's history covers well and thinly: clusters of their memories, named by their most distinctive words
    (scope rules applied: `--as` and `--channel` show what someone else would be told there)."""
    from persona.memory import topics
    from persona.privacy.scopes import Place
    from persona.storage.store import open_store

    settings = settings_of(ctx)
    store = open_store(settings)
    with store.connect() as conn:
        # The terminal is the owner's; anyone else named with --as asks in a DM with the bot unless --channel says where.
        owner_id, asker, place = _who_and_where(conn, settings, as_user, channel, guild,
                                                default=Place.terminal() if as_user is None else Place.dm())
        found = topics.topics_for(conn, asker_id=asker, place=place, owner_id=owner_id)
    if as_json:
        print(json.dumps([t.as_json() for t in found]))
        return
    if not found:
        out.print("no topics yet: import the owner's history and run `persona memory build`")
        return
    for label, chosen in (("covered well", [t for t in found if not t.thin]), ("thin (few memories)", [t for t in found if t.thin])):
        if chosen:
            out.print(f"[bold]{label}[/]")
            for t in chosen:
                out.print(f"  {t.describe()}", markup=False)


def _who_and_where(conn: Any, settings: Settings, as_user: int | None, channel: int | None, guild: int | None, *,
                   default: Any) -> tuple[int | None, int | None, Any]:
    """(the owner's id, who asks: --as or the owner, where: --channel/--guild or `default`)."""
    from persona.history.people import resolve_owner
    from persona.history.places import place_of_ids

    owner = resolve_owner(conn, settings.owner_id)
    owner_id = owner.id if owner else None
    asker = as_user if as_user is not None else owner_id
    return owner_id, asker, place_of_ids(conn, channel, guild, default=default)

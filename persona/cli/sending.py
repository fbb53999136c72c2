"""What goes out in the owner's name, from a terminal: `persona drafts list | send | discard`,
`persona mode set | clear | list`, `persona guard add | remove | list`."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from persona.cli.app import app, out, settings_of
from persona.errors import ConfigError, PersonaError

if TYPE_CHECKING:
    from persona.send_modes import Place

drafts_app = typer.Typer(help="Replies held for you in draft mode: list them, send (as drafted or edited) or discard.", no_args_is_help=True)
app.add_typer(drafts_app, name="drafts")
mode_app = typer.Typer(help="Where the persona replies by itself (auto), drafts for you (draft) or stays quiet (off).", no_args_is_help=True)
app.add_typer(mode_app, name="mode")
guard_app = typer.Typer(help="Your never-say list: an automatic reply holding one of these becomes a draft.", no_args_is_help=True)
app.add_typer(guard_app, name="guard")

SEND_WAIT_S = 15.0  # how long `send` waits to see the running bot post the draft


@drafts_app.command("list")
def drafts_list(
    ctx: typer.Context,
    status: Annotated[str | None, typer.Option(help="Only these statuses, comma-separated: pending, approved, sending, sent, discarded, "
                                               "expired, failed.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="How many, newest first.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list of drafts.")] = False,
) -> None:
    """Drafts, newest first: who asked, where, the draft and what became of it."""
    from persona import drafts
    from persona.storage.store import open_store

    statuses = tuple(s.strip() for s in (status or "").split(",") if s.strip())
    with open_store(settings_of(ctx)).connect() as conn:
        found = drafts.listed(conn, statuses=statuses, limit=limit)
    if as_json:
        print(json.dumps([d.as_json() for d in found], ensure_ascii=False))
        return
    if not found:
        out.print("no drafts" + (f" with status {status}" if statuses else " yet"))
        return
    for draft in found:
        out.print(f"[bold]#{draft.id}[/] {draft.created_at:%Y-%m-%d %H:%M} · {escape(draft.asker_name)} in {escape(draft.place_label)} · "
                  f"{escape(drafts.describe_status(draft))}")
        out.print(f"  they said: {escape(draft.asker_text[:200])}")
        out.print(f"  {'sent' if draft.status == 'sent' else 'draft'}: {escape(draft.text)}", soft_wrap=True)


@drafts_app.command("send")
def drafts_send(
    ctx: typer.Context,
    draft_id: Annotated[int, typer.Argument(help="The draft's id (`persona drafts list`).")],
    text: Annotated[str | None, typer.Option(help="Send this instead of the draft (your edit: it teaches the persona).")] = None,
    no_wait: Annotated[bool, typer.Option("--no-wait", help="Do not wait for the running bot to post it.")] = False,
) -> None:
    """Send a pending draft as a reply to the message it answers (the running `persona run` posts it)."""
    from persona import drafts
    from persona.presence import bot_presence
    from persona.storage.store import open_store

    with open_store(settings_of(ctx)).connect() as conn:
        decision = drafts.approve(conn, draft_id, via="cli", text=text)
        conn.commit()
        if not decision.changed or decision.draft is None:
            raise PersonaError(decision.refusal())
        running = bot_presence(conn) is not None
        if not running:
            out.print(f"draft {draft_id} approved; `persona run` is not connected to Discord: it sends the draft when it starts, "
                      f"if that is before it expires ({decision.draft.expires_at:%Y-%m-%d %H:%M %Z})")
            return
        deadline = time.monotonic() + (0 if no_wait else SEND_WAIT_S)
        draft = decision.draft
        while draft.status in ("approved", "sending") and time.monotonic() < deadline:
            time.sleep(0.25)
            draft = drafts.get(conn, draft_id) or draft
    out.print(f"draft {draft_id}: {drafts.describe_status(draft)}")
    if draft.status == "failed":
        raise typer.Exit(1)


@drafts_app.command("discard")
def drafts_discard(ctx: typer.Context, draft_id: Annotated[int, typer.Argument(help="The draft's id (`persona drafts list`).")]) -> None:
    """Discard a pending draft: nothing is sent (and the persona learns this was not a reply to make)."""
    from persona import drafts
    from persona.storage.store import open_store

    with open_store(settings_of(ctx)).connect() as conn:
        decision = drafts.discard(conn, draft_id, via="cli")
        conn.commit()
    if not decision.changed:
        raise PersonaError(decision.refusal())
    out.print(f"draft {draft_id} discarded")


def _place(channel: int | None, guild: int | None, user: int | None, dms: bool) -> Place:
    from persona.send_modes import Place

    chosen = [p for p in (channel is not None and Place("channel", channel), guild is not None and Place("guild", guild),
                          user is not None and Place("user", user), dms and Place("dms")) if p]
    if len(chosen) != 1:
        raise ConfigError("say where, once: --channel ID, --guild ID, --user ID (their DMs) or --dms (all DMs)")
    return chosen[0]


ChannelOption = Annotated[int | None, typer.Option("--channel", help="A server channel's id.")]
GuildOption = Annotated[int | None, typer.Option("--guild", help="A whole server's id (its channels without a mode of their own).")]
UserOption = Annotated[int | None, typer.Option("--user", help="A person's id: your DMs with them.")]
DmsOption = Annotated[bool, typer.Option("--dms", help="All DMs (those with a person without a mode of their own).")]


@mode_app.command("set")
def mode_set(ctx: typer.Context, mode: Annotated[str, typer.Argument(help="auto, draft or off.")], channel: ChannelOption = None,
             guild: GuildOption = None, user: UserOption = None, dms: DmsOption = False) -> None:
    """Set how the persona answers in one place; the most specific place wins."""
    from persona import send_modes
    from persona.storage.store import open_store

    place = _place(channel, guild, user, dms)
    with open_store(settings_of(ctx)).connect() as conn:
        send_modes.set_mode(conn, place, mode)
        conn.commit()
    out.print(f"{place.describe()}: {mode}")


@mode_app.command("clear")
def mode_clear(ctx: typer.Context, channel: ChannelOption = None, guild: GuildOption = None, user: UserOption = None,
               dms: DmsOption = False) -> None:
    """Remove a place's own mode: the next less specific one (or PERSONA_SEND_MODE) applies again."""
    from persona import send_modes
    from persona.storage.store import open_store

    place = _place(channel, guild, user, dms)
    with open_store(settings_of(ctx)).connect() as conn:
        removed = send_modes.clear(conn, place)
        conn.commit()
    out.print(f"{place.describe()}: " + ("back to the default" if removed else "had no mode of its own"))


@mode_app.command("list")
def mode_list(ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Every place with a mode of its own, and the default for the rest."""
    from persona import send_modes
    from persona.storage.store import open_store

    settings = settings_of(ctx)
    with open_store(settings).connect() as conn:
        modes = send_modes.listed(conn)
    if as_json:
        print(json.dumps({"default": settings.send_mode, "places": [
            {"place": m.place.kind, "id": m.place.id, "mode": m.mode, "set_at": m.set_at.isoformat()} for m in modes]}))
        return
    out.print(f"default (PERSONA_SEND_MODE): {settings.send_mode}")
    for m in modes:
        out.print(f"{m.place.describe()}: {m.mode}  (set {m.set_at:%Y-%m-%d %H:%M})")


@guard_app.command("add")
def guard_add(ctx: typer.Context, term: Annotated[str, typer.Argument(help="A word or phrase (matched as whole words, any case).")]) -> None:
    """Never send this automatically: a reply holding it becomes a draft for you to decide."""
    from persona import guard
    from persona.storage.store import open_store

    with open_store(settings_of(ctx)).connect() as conn:
        added = guard.add(conn, term)
        conn.commit()
    out.print(f"“{escape(term.strip())}” " + ("added to the never-say list" if added else "was already on the never-say list"))


@guard_app.command("remove")
def guard_remove(ctx: typer.Context, term: Annotated[str, typer.Argument(help="A word or phrase on the list.")]) -> None:
    from persona import guard
    from persona.storage.store import open_store

    with open_store(settings_of(ctx)).connect() as conn:
        removed = guard.remove(conn, term)
        conn.commit()
    if not removed:
        raise PersonaError(f"“{term.strip()}” is not on the never-say list (`persona guard list` shows it)")
    out.print(f"“{escape(term.strip())}” removed")


@guard_app.command("list")
def guard_list(ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """The never-say list, and the offensive-language check's threshold."""
    from persona import guard
    from persona.storage.store import open_store

    settings = settings_of(ctx)
    with open_store(settings).connect() as conn:
        listed = guard.terms(conn)
    if as_json:
        print(json.dumps({"never_say": listed, "offensive_threshold": settings.guard_offensive_threshold}, ensure_ascii=False))
        return
    threshold = settings.guard_offensive_threshold
    out.print("offensive-language check: " + ("off" if threshold >= 1.0 else f"replies scored above {threshold:.2f} become drafts"))
    out.print("never-say list: " + (", ".join(f"“{escape(t)}”" for t in listed) if listed else "empty"))

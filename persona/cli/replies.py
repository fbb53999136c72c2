"""`persona replies list | show`: what the persona said, how it was rated, what the check found."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.markup import escape

from persona.cli.app import app, out, settings_of
from persona.errors import ConfigError, PersonaError

replies_app = typer.Typer(help="Replies the persona sent: prompt, memories, consistency verdict, ratings.", no_args_is_help=True)
app.add_typer(replies_app, name="replies")

VERDICTS = ("none", "supported", "contradicted", "unsupported", "unchecked", "failed")


def _outcomes(verdict: str | None) -> tuple[str, ...]:
    from persona.replies import FAILED

    if verdict is None:
        return ()
    chosen = tuple(v.strip() for v in verdict.split(",") if v.strip())
    if unknown := [v for v in chosen if v not in VERDICTS]:
        raise ConfigError(f"--verdict {','.join(unknown)}: use one or more of {', '.join(VERDICTS)} (failed = contradicted,unsupported)")
    return tuple(dict.fromkeys(o for v in chosen for o in (FAILED if v == "failed" else (v,))))


@replies_app.command("list")
def replies_list(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="How many, newest first.")] = 20,
    before: Annotated[int | None, typer.Option(help="Only replies older than this reply id (the next page).")] = None,
    as_user: Annotated[int | None, typer.Option("--as", help="Only replies to this Discord user id.")] = None,
    channel: Annotated[int | None, typer.Option(help="Only replies in this channel id.")] = None,
    down: Annotated[bool, typer.Option("--down", help="Only replies someone rated 👎.")] = False,
    up: Annotated[bool, typer.Option("--up", help="Only replies someone rated 👍.")] = False,
    verdict: Annotated[str | None, typer.Option(help="Only these consistency verdicts, comma-separated: " + ", ".join(VERDICTS)
                                                + " (failed = contradicted,unsupported).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object per line.")] = False,
) -> None:
    """The replies the persona sent (the bot, `persona chat`), with the consistency check's verdict and the ratings."""
    from persona.replies import sent_replies
    from persona.storage.store import open_store

    if down and up:
        raise ConfigError("--down and --up exclude each other; pick one")
    outcomes = _outcomes(verdict)
    store = open_store(settings_of(ctx))
    with store.connect() as conn:
        found = sent_replies(conn, limit=limit, before_id=before, asker_id=as_user, channel_id=channel,
                             rating=-1 if down else 1 if up else None, outcomes=outcomes)
    if as_json:
        for reply in found:
            print(json.dumps(reply.as_json(), ensure_ascii=False, default=str))
        return
    if not found:
        out.print("no replies match" if (down or up or verdict or as_user or channel or before) else "no replies yet")
        return
    for r in found:  # three lines each: readable at any terminal width, unlike a ten-column table
        out.print(f"[bold]#{r.id}[/] {r.created_at:%Y-%m-%d %H:%M} · to {r.asker_id or 'owner'} · {r.scope} · "
                  f"{'v' + str(r.adapter_version) if r.adapter_version else 'base'} · {r.latency_ms} ms · "
                  f"👍 {r.thumbs_up} 👎 {r.thumbs_down} · check: {r.outcome}")
        out.print(f"  [dim]asked:[/] {escape(r.asked[:200])}")
        out.print(f"  [dim]reply:[/] {escape(r.completion[:200])}")
    if len(found) == limit:
        out.print(f"[dim]older: persona replies list --before {found[-1].id}[/]")


@replies_app.command("show")
def replies_show(
    ctx: typer.Context,
    reply_id: Annotated[int, typer.Argument(help="The reply id (from `persona replies list`).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """One reply whole: the prompt the model saw, the memories and evidence it used, the check's verdict, its ratings."""
    from persona.replies import sent_reply
    from persona.storage.store import open_store

    store = open_store(settings_of(ctx))
    with store.connect() as conn:
        reply = sent_reply(conn, reply_id)
    if reply is None:
        raise PersonaError(f"no reply {reply_id}: `persona replies list` shows the ids (a forget deletes the replies it involves)")
    if as_json:
        print(json.dumps(reply.as_json(), ensure_ascii=False, default=str))
        return
    out.print(f"[bold]reply {reply.id}[/] · {reply.created_at:%Y-%m-%d %H:%M} · to {reply.asker_id or 'owner'} · {reply.scope} · "
              f"{'adapter v' + str(reply.adapter_version) if reply.adapter_version else 'base model'} · {reply.latency_ms} ms · "
              f"👍 {reply.thumbs_up} 👎 {reply.thumbs_down}")
    for message in reply.prompt:
        out.print(f"[dim]{message['role']}:[/] {escape(message['content'])}")
    out.print(f"[bold]reply:[/] {escape(reply.completion)}")
    out.print(f"memories: {', '.join(f'#{i}' for i in reply.memory_ids) or 'none'}")
    for e in reply.evidence:
        out.print(f"evidence #{e.get('memory_id')} ({float(e.get('score', 0)):.2f}): {escape(str(e.get('text', '')))}")
    v = reply.verdict
    out.print(f"check: {reply.outcome}" + (f" — claim “{escape(v.get('claim', ''))}”" if v and v.get("claim") else "")
              + (f" ↔ the owner said “{escape(v.get('sentence', ''))}” (memories {', '.join(f'#{i}' for i in v.get('memory_ids', []))})"
                 if v and v.get("sentence") else ""))

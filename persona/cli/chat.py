"""`persona chat`: the reply pipeline in a terminal (shared by `persona demo`)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from persona.cli.app import app, err, out, settings_of
from persona.privacy.scopes import Place
from persona.prompts import Line
from persona.runtime.reply import ReplyEngine, ReplyRequest


def chat_loop(engine: ReplyEngine, out: Console, *, show_memories: bool = False) -> None:
    """Read lines until EOF or /quit, answer each as the owner would (the owner asks, in
    the terminal, so every memory is readable)."""
    interactive = sys.stdin.isatty()
    history: list[Line] = []
    while True:
        try:
            text = input("you> ") if interactive else sys.stdin.readline()
        except EOFError:
            break
        if not interactive and not text:
            break
        text = text.strip()
        if not text:
            continue
        if text in ("/quit", "/exit"):
            break
        request = ReplyRequest(text=text, asker_id=engine.owner_id, asker_name="you", place=Place.terminal(), history=history[-12:])
        reply = engine.reply(request)
        engine.log(request, reply)
        if show_memories:
            for m in reply.memories:
                out.print(f"[dim]  recalled #{m.id} ({m.scope}): {escape(m.content.splitlines()[-1][:100])}[/]")
            for e in reply.evidence:
                out.print(f"[dim]  grounded on #{e.memory_id} ({e.score:.2f}): {escape(e.text[:100])}[/]")
            if reply.said_unknown:
                out.print("[dim]  nothing you may read here answers it: said not sure[/]")
            if reply.verdict is not None and reply.verdict.outcome != "none":
                v = reply.verdict
                out.print(f"[dim]  check: {v.outcome}" + (f" ({escape(v.claim[:60])!s} ↔ {escape(v.sentence[:60])})" if v.sentence else "")
                          + (" — regenerated" if reply.regenerated else "") + "[/]")
        out.print(f"[bold]{escape(engine.owner_name)}>[/] {escape(reply.text)}")
        history += [Line("you", text, False), Line(engine.owner_name, reply.text, True)]


@app.command("chat")
def chat(
    ctx: typer.Context,
    show_memories: Annotated[bool, typer.Option("--show-memories",
                                                help="Print the memories each reply recalled (and the sentences grounding pulled it towards).")] = False,
    greedy: Annotated[bool, typer.Option(help="Deterministic replies (no sampling).")] = False,
) -> None:
    """Talk to your persona in the terminal (same memory and adapter as the bot). Ctrl-D or /quit ends."""
    from persona.runtime.engines.base import GenerationSettings
    from persona.storage.store import open_store

    settings = settings_of(ctx)
    generation = GenerationSettings.from_settings(settings, greedy=greedy or None)
    engine = ReplyEngine.from_settings(settings, open_store(settings), generation=generation)
    version = engine.generator.adapter_version
    err.print(f"[dim]{engine.owner_name}'s persona · {'adapter v' + str(version) if version else 'base model (no adapter yet)'} · Ctrl-D to end[/]")
    chat_loop(engine, out, show_memories=show_memories)

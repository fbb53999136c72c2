"""`persona chat`: the reply pipeline in a terminal (shared by `persona demo`)."""

from __future__ import annotations

import sys
from rich.console import Console
from rich.markup import escape

from persona.config import Settings
from persona.embeddings import Embedder, resolve_embed_model
from persona.model import resolve_base_model
from persona.people import stored_owner
from persona.reply import Generator, ReplyEngine, ReplyRequest, Turn
from persona.scopes import Place
from persona.store import Store


def build_engine(settings: Settings, store: Store, *, embedder: Embedder | None = None, max_new_tokens: int = 120) -> ReplyEngine:
    """The base model, the active adapter and memory, as the bot would use them."""
    with store.connect() as conn:
        owner = stored_owner(conn)
    owner_id = settings.owner_id or (owner.id if owner else None)
    owner_name = settings.owner_name or (owner.name if owner else "") or "me"
    generator = Generator(resolve_base_model(settings.base_model), max_new_tokens=max_new_tokens)
    embedder = embedder or Embedder(resolve_embed_model(settings.embed_model))
    engine = ReplyEngine(store, embedder, generator, owner_id=owner_id, owner_name=owner_name, style_notes=settings.style_notes)
    engine.refresh_adapter()
    return engine


def chat_loop(engine: ReplyEngine, out: Console, *, show_memories: bool = False) -> None:
    """Read lines until EOF or /quit, answer each as the owner would (the owner asks, in
    the terminal, so every memory is readable)."""
    interactive = sys.stdin.isatty()
    history: list[Turn] = []
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
        out.print(f"[bold]{escape(engine.owner_name)}>[/] {escape(reply.text)}")
        history += [Turn("you", text, False), Turn(engine.owner_name, reply.text, True)]

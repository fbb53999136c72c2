"""`persona demo`: see demo/run.py."""

from __future__ import annotations

import json
import logging
from typing import Annotated

import typer
from rich.console import Console

from trainer.likeness import EVAL_CONTEXTS


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)


def demo(
    ctx: typer.Context,
    fresh: Annotated[bool, typer.Option("--fresh", help="Delete the demo folder and start over.")] = False,
    seed: Annotated[int, typer.Option(help="Seed of the generated history (same seed, same history).")] = 7,
    language: Annotated[str, typer.Option(help="The history's language: en, de, es or pt (June and her friends write in it).")] = "en",
    max_steps: Annotated[int, typer.Option(min=1, help="Training steps (fewer if the time budget runs out first).")] = 30,
    time_budget: Annotated[float, typer.Option(min=1, help="Training seconds at most (the adapter so far is kept).")] = 200.0,
    prompts: Annotated[int, typer.Option(min=1, max=5, help="Scripted questions to answer side by side.")] = 4,
    eval_samples: Annotated[int, typer.Option(min=0, help="Held-out contexts the evaluation replies to (and, up to 10, fact probes).")] = EVAL_CONTEXTS,
    base_model: Annotated[str,
                          typer.Option(help="A local model folder, Hugging Face id or gemma-3-270m (offline) "
                                                   "instead of the bundled SmolLM2-135M-Instruct.")] = "",
    chat: Annotated[bool, typer.Option("--chat/--no-chat", help="Drop into `persona chat` afterwards (only on a terminal).")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON summary at the end (the walk-through goes to stderr).")] = False,
) -> None:
    """The whole pipeline, offline, on a fictional owner's history: import, memory, LoRA training,
    evaluation, then base model vs persona side by side (and a chat on a terminal).

    Lives in $PERSONA_HOME/demo with its own embedded database; running it again reuses what is there.
    """
    from demo.run import Demo, DemoOptions
    from demo.sample import LANGUAGES

    if language not in LANGUAGES:
        raise typer.BadParameter(f"the demo's history is written in {', '.join(LANGUAGES)}, not {language!r}", param_hint="--language")
    from persona.cli import settings_of

    settings = settings_of(ctx)
    if settings.log_level == "INFO":
        # The walk-through is the output; routine INFO lines would only interleave with it.
        logging.getLogger().setLevel(logging.WARNING)
    out = Console(highlight=False, soft_wrap=True, stderr=as_json)
    options = DemoOptions(seed=seed, base_model=base_model, max_steps=max_steps, time_budget_s=time_budget, eval_samples=eval_samples,
                          prompts=prompts, fresh=fresh, chat=chat and not as_json, language=language)
    result = Demo(settings, options, out).run()
    if as_json:
        print(json.dumps(result.as_json(), ensure_ascii=False))

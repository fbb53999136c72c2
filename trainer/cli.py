"""`persona dataset`, `persona train`, `persona retrain`, `persona adapters`."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

out = Console(highlight=False, soft_wrap=True)
dataset_app = typer.Typer(help="The training set built from your history.", no_args_is_help=True)
adapters_app = typer.Typer(help="Adapter versions: list, activate, roll back.", invoke_without_command=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]


def register(app: typer.Typer) -> None:
    app.add_typer(dataset_app, name="dataset")
    app.add_typer(adapters_app, name="adapters")
    app.command("train")(train)
    app.command("retrain")(retrain)
    app.command("eval")(evaluate)


def _context(ctx: typer.Context) -> tuple[Any, Any]:
    from persona.cli import settings_of
    from persona.storage.store import open_store

    settings = settings_of(ctx)
    return settings, open_store(settings)


@dataset_app.command("build")
def dataset_build(
    ctx: typer.Context,
    stats: Annotated[bool, typer.Option("--stats", help="Also count tokens with the base model's tokenizer.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Build the dataset into $PERSONA_HOME/datasets/latest and print counts and balance."""
    from persona.runtime.model import (
        count_chat_tokens,
        load_tokenizer,
        resolve_base_model,
    )
    from trainer.pipeline import prepared_dataset

    settings, store = _context(ctx)
    count_tokens = None
    if stats:
        tokenizer = load_tokenizer(resolve_base_model(settings.base_model, settings.models_dir))
        count_tokens = lambda messages: count_chat_tokens(tokenizer, messages)  # noqa: E731

    with store.connect() as conn:
        dataset = prepared_dataset(conn, settings, count_tokens=count_tokens)
    folder = dataset.write(settings.datasets_dir / "latest")
    if as_json:
        print(json.dumps(dataset.stats | {"folder": str(folder)}))
        return
    s = dataset.stats
    out.print(f"{s['train_examples']:,} training examples ({s['owner_messages']:,} of your messages) from {s['channels']} channels; "
              f"{s['heldout_examples']:,} held out")
    if "train_tokens" in s:
        out.print(f"tokens: {s['train_tokens']:,} train, {s['heldout_tokens']:,} held out")
    out.print("by source: " + ", ".join(f"{k} {v:,}" for k, v in s["by_source"].items()))
    out.print("tags: " + ", ".join(f"{k} {v:,}" for k, v in s["tags"].items()))
    if s.get("with_recalled_memories"):
        out.print(f"with recalled memories: {s['with_recalled_memories']:,} examples (PERSONA_TRAIN_MEMORY_FRACTION)")
    if s["filtered"]:
        out.print("filtered out: " + ", ".join(f"{v:,} {k.replace('_', ' ')}" for k, v in s["filtered"].items()))
    out.print(f"written to {folder}")


def _run(ctx: typer.Context, incremental: bool, max_steps: int | None, time_budget: float | None, processes: int, eval_samples: int | None,
         as_json: bool, heldout_after: datetime | None = None) -> None:
    from trainer.pipeline import run

    settings, store = _context(ctx)
    if heldout_after is not None:
        settings = settings.model_copy(update={"heldout_after": heldout_after.date()})
    outcome = run(store, settings, incremental=incremental, processes=processes, eval_samples=eval_samples,
                  max_steps=max_steps, time_budget_s=time_budget)
    if as_json:
        print(json.dumps({k: v for k, v in outcome.as_json().items() if k != "metrics"} | {"heldout_loss": outcome.metrics.get("heldout_loss")}))
    else:
        out.print(outcome.line())
        if outcome.report:
            out.print(f"report: {outcome.report}")


MaxSteps = Annotated[int | None, typer.Option(help="Stop after this many optimiser steps (default: PERSONA_TRAIN_EPOCHS epochs).")]
TimeBudget = Annotated[float | None, typer.Option(help="Stop training after this many seconds (the adapter so far is kept).")]
Processes = Annotated[int, typer.Option(min=1, help="Training processes (accelerate launch; GPUs, or CPU with gloo).")]
EvalSamples = Annotated[int | None, typer.Option(min=0, help="Held-out contexts to generate replies for in the evaluation "
                                                                  "(default: PERSONA_EVAL_CONTEXTS, 50).")]
HeldoutAfter = Annotated[datetime | None, typer.Option(formats=["%Y-%m-%d"], help="Also hold out everything from this day on (PERSONA_HELDOUT_AFTER).")]


def train(ctx: typer.Context, max_steps: MaxSteps = None, time_budget: TimeBudget = None, processes: Processes = 1,
          eval_samples: EvalSamples = None, heldout_after: HeldoutAfter = None, as_json: JsonOption = False) -> None:
    """Train a LoRA adapter on your whole history, evaluate it, and activate it if it passes the gate."""
    _run(ctx, False, max_steps, time_budget, processes, eval_samples, as_json, heldout_after)


def retrain(ctx: typer.Context, max_steps: MaxSteps = None, time_budget: TimeBudget = None, processes: Processes = 1,
            eval_samples: EvalSamples = None, heldout_after: HeldoutAfter = None, as_json: JsonOption = False) -> None:
    """Fold in what is new since the active adapter (messages and ratings), with replay of older examples."""
    _run(ctx, True, max_steps, time_budget, processes, eval_samples, as_json, heldout_after)


def evaluate(
    ctx: typer.Context,
    version: Annotated[str | None, typer.Argument(help="Version to evaluate, e.g. v3 (default: the active one).")] = None,
    eval_samples: EvalSamples = None,
    heldout_after: HeldoutAfter = None,
    as_json: JsonOption = False,
) -> None:
    """Evaluate an adapter against the base model on the held-out split; writes a report with plots."""
    from trainer.pipeline import evaluate_version

    settings, store = _context(ctx)
    if heldout_after is not None:
        settings = settings.model_copy(update={"heldout_after": heldout_after.date()})
    number = _version_number(version) if version else None
    version_id, metrics, report = evaluate_version(store, settings, number, eval_samples=eval_samples)
    summary = {"version": version_id, "heldout_loss": metrics["heldout_loss"], "heldout_perplexity": metrics["heldout_perplexity"],
               "embedding_similarity": metrics["embedding_similarity"], "vocabulary_overlap": metrics["vocabulary_overlap"],
               "owner_likeness": metrics.get("owner_likeness"), "real_vs_generated_accuracy": metrics.get("real_vs_generated_accuracy"),
               "report": str(report)}
    if as_json:
        print(json.dumps(summary))
        return
    losses = metrics["heldout_loss"]
    out.print(f"v{version_id}: held-out loss {losses['candidate']:.4f} vs base {losses['base']:.4f} "
              f"(perplexity {metrics['heldout_perplexity']['candidate']} vs {metrics['heldout_perplexity']['base']})")
    out.print(f"report: {report}")


def _version_number(version: str) -> int:
    from persona.errors import ConfigError

    number = version.lstrip("v")
    if not number.isdigit():
        raise ConfigError(f"VERSION must look like v3 or 3, not {version!r}")
    return int(number)


@adapters_app.callback()
def adapters(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """List adapter versions (when no sub-command is given)."""
    if ctx.invoked_subcommand is not None:
        return
    from persona import adapters, drafts

    _, store = _context(ctx)
    with store.connect() as conn:
        versions = adapters.versions(conn)
        approvals = {a.adapter_version: a for a in drafts.approval(conn)}
    if as_json:
        print(json.dumps([{"version": v.id, "status": v.status, "parent": v.parent_id, "base_model": v.base_model,
                           "heldout_loss": v.heldout_loss, "reason": v.status_reason, "created_at": v.created_at.isoformat(),
                           "tainted": v.tainted_reason if v.tainted else None,
                           "drafts": approvals[v.id].as_json() if v.id in approvals else None} for v in versions]))
        return
    if not versions:
        out.print("no adapters yet: run `persona train`")
        return
    if None in approvals:
        out.print(f"drafts of the base model: {approvals[None].describe()}")
    table = Table("version", "status", "parent", "held-out loss", "drafts approved", "created", "why", box=None, pad_edge=False)
    for v in versions:
        loss = f"{v.heldout_loss:.4f}" if v.heldout_loss is not None else "—"
        status = f"[bold green]{v.status}[/]" if v.status == "active" else v.status
        why = v.status_reason or ""
        if v.tainted:
            status += " [bold red]tainted[/]"
            why = f"trained on forgotten data ({v.tainted_reason})" + (f"; {why}" if why else "")
        approved = approvals[v.id].describe() if v.id in approvals else "—"
        table.add_row(v.label, status, f"v{v.parent_id}" if v.parent_id else "—", loss, approved, f"{v.created_at:%Y-%m-%d %H:%M}", why)
    out.print(table)


@adapters_app.command("activate")
def adapters_activate(ctx: typer.Context, version: Annotated[str, typer.Argument(help="Version, e.g. v3 or 3.")]) -> None:
    """Make a version the active adapter (the bot picks it up without a restart)."""
    from persona import adapters

    _, store = _context(ctx)
    with store.connect() as conn:
        result = adapters.activate(conn, _version_number(version))
    out.print(f"{result.label} is active")


@adapters_app.command("gguf")
def adapters_gguf(ctx: typer.Context,
                  version: Annotated[str | None, typer.Argument(help="Version, e.g. v3 or 3; default: the active one.")] = None) -> None:
    """Write a version as a llama.cpp LoRA (GGUF) beside it and print its path: for llama-server's --lora."""
    from pathlib import Path

    from persona import adapters
    from persona.errors import ConfigError
    from persona.runtime.engines.gguf_lora import lora_for
    from persona.runtime.engines.llamacpp import base_gguf
    from persona.runtime.model import resolve_base_model

    settings, store = _context(ctx)
    with store.connect() as conn:
        chosen = adapters.active(conn) if version is None else adapters.get(conn, _version_number(version))
    if chosen is None or not chosen.path:
        raise ConfigError(f"no adapter {version or 'is active'} with weights: see `persona adapters`")
    print(lora_for(Path(chosen.path), base_gguf(resolve_base_model(settings.base_model, settings.models_dir), settings.llama_cpp_model)))


@adapters_app.command("export")
def adapters_export(ctx: typer.Context,
                    version: Annotated[str | None, typer.Argument(help="Version, e.g. v3 or 3; default: the active one.")] = None,
                    ollama: Annotated[Path, typer.Option("--ollama", help="Folder for an Ollama model: Modelfile, base and LoRA GGUF.")] = Path(),
                    ) -> None:
    """Write a version as an Ollama model (then `ollama create persona-vN -f DIR/Modelfile`)."""
    from persona import adapters
    from persona.cli import err
    from persona.errors import ConfigError
    from persona.runtime.engines.gguf_lora import lora_for
    from persona.runtime.engines.llamacpp import base_gguf
    from persona.runtime.engines.ollama_export import chat_format, export
    from persona.runtime.model import load_tokenizer, resolve_base_model

    if ollama == Path():
        raise ConfigError("say where: --ollama DIR (a folder for the Modelfile and the GGUF files)")
    settings, store = _context(ctx)
    with store.connect() as conn:
        chosen = adapters.active(conn) if version is None else adapters.get(conn, _version_number(version))
    if chosen is None or not chosen.path:
        raise ConfigError(f"no adapter {version or 'is active'} with weights: see `persona adapters`")
    spec = resolve_base_model(settings.base_model, settings.models_dir)
    base = base_gguf(spec, settings.llama_cpp_model)
    chat = chat_format(getattr(load_tokenizer(spec), "chat_template", None))
    written = export(ollama.expanduser().resolve(), base_gguf=base, lora_gguf=lora_for(Path(chosen.path), base), chat=chat,
                     temperature=settings.temperature, top_p=settings.top_p, repeat_penalty=settings.repetition_penalty,
                     num_ctx=2048)  # the reply engine's 1,200-token prompts and the longest reply fit
    name = adapters.served_name(chosen.id)
    print(written)
    err.print(f"[dim]then: ollama create {name} -f {written}  (PERSONA_ENGINE=openai finds it by that name)[/]")


@adapters_app.command("rollback")
def adapters_rollback(ctx: typer.Context) -> None:
    """Re-activate the adapter that was active before the current one."""
    from persona import adapters

    _, store = _context(ctx)
    with store.connect() as conn:
        result = adapters.rollback(conn)
    out.print(f"rolled back: {result.label} is active")

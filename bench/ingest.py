"""Benchmark: importing a Discord data package (parse + scrub + load), one JSON line.

Generates a synthetic package (current layout) of --messages messages across
--channels channels of skewed sizes, then in the same run, against the same embedded
PostgreSQL 18:

- persona's import of the whole package (`persona ingest discord-package`, a child
  process, so its peak memory is measured on its own);
- persona's import of a --slice-message slice (first channels only), for the memory
  comparison (peak RSS should not grow with the input);
- a naive baseline on that slice: the same parse and scrub, then one autocommitted
  `INSERT` per message.

    python bench/ingest.py                       # 1,000,000 messages, ~500 channels
    python bench/ingest.py --messages 200000     # quicker
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from _common import fresh_database, wait_with_peak_rss  # noqa: E402

OWNER = 80351110224678912
WORDS = ["lol", "yeah", "ok", "sure", "maybe", "tomorrow", "tonight", "game", "rust", "python", "coffee", "work", "meeting", "sleep", "cat", "dog", "pizza",
         "train", "bug", "fix", "deploy", "weekend", "movie", "music", "gym", "run", "lunch", "dinner", "honestly", "actually", "basically", "kinda",
         "literally", "pretty", "much", "never", "always", "again"]
EMOJI = ["😂", "🎉", "❤️", "👍", "🔥", "😭", ""]


def channel_sizes(total: int, channels: int, rng: random.Random) -> list[int]:
    """Skewed (Zipf-like) sizes summing to `total`."""
    weights = [1 / (rank + 1) ** 0.8 for rank in range(channels)]
    rng.shuffle(weights)
    scale = total / sum(weights)
    sizes = [max(1, int(w * scale)) for w in weights]
    sizes[0] += total - sum(sizes)
    return sizes


def message_text(rng: random.Random, i: int) -> str:
    words = rng.choices(WORDS, k=rng.randint(2, 18))
    text = " ".join(words) + rng.choice(EMOJI)
    roll = rng.random()
    if roll < 0.004:
        text += f" mail me at user{i}@example.com"
    elif roll < 0.008:
        text += " call +44 20 7946 0958"
    elif roll < 0.02:
        text += " meet at 10:30, v1.2.3 won 3-2"
    elif roll < 0.03:
        text += f" <@{OWNER + 1}> check this"
    return text


def write_package(root: Path, total: int, channels: int, seed: int = 7) -> list[tuple[int, int]]:
    """Write the package; return (channel_id, message count) per channel."""
    rng = random.Random(seed)
    (root / "Account").mkdir(parents=True)
    (root / "Account" / "user.json").write_text(json.dumps({"id": str(OWNER), "username": "bench"}))
    messages_dir = root / "Messages"
    messages_dir.mkdir()
    index: dict[str, str] = {}
    layout = []
    message_id = 1_000_000_000_000_000_000
    for n, size in enumerate(channel_sizes(total, channels, rng)):
        channel_id = 900_000_000_000_000_000 + n
        kind = rng.choices(["DM", "GUILD_TEXT", "GROUP_DM", "PUBLIC_THREAD"], weights=[4, 5, 1, 1])[0]
        meta: dict[str, object] = {"id": str(channel_id), "type": kind}
        if kind == "DM":
            meta["recipients"] = [str(OWNER), str(700_000_000_000_000_000 + n)]
            index[str(channel_id)] = f"Direct Message with friend{n}#0"
        elif kind == "GROUP_DM":
            meta["recipients"] = [str(OWNER), "1", "2"]
            index[str(channel_id)] = f"group {n}"
        else:
            meta["name"] = f"channel-{n}"
            meta["guild"] = {"id": str(600_000_000_000_000_000 + n % 40), "name": f"server {n % 40}"}
            index[str(channel_id)] = f"channel-{n} in server {n % 40}"
        folder = messages_dir / f"c{channel_id}"
        folder.mkdir()
        (folder / "channel.json").write_text(json.dumps(meta))
        start = 1_600_000_000 + n * 1000
        rows = []
        for i in range(size):
            message_id += rng.randint(1, 1 << 22)
            ts = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(start + i * 37))
            rows.append({"ID": message_id, "Timestamp": ts, "Contents": message_text(rng, i), "Attachments": ""})
        (folder / "messages.json").write_text(json.dumps(rows, ensure_ascii=False))
        layout.append((channel_id, size))
    (messages_dir / "index.json").write_text(json.dumps(index))
    return layout


def slice_package(source: Path, target: Path, layout: list[tuple[int, int]], limit: int) -> int:
    """Copy the first channels of `source` until `limit` messages; return the count."""
    (target / "Account").mkdir(parents=True)
    (target / "Account" / "user.json").write_text((source / "Account" / "user.json").read_text())
    (target / "Messages").mkdir()
    taken = 0
    for channel_id, _size in layout:
        if taken >= limit:
            break
        src, dst = source / "Messages" / f"c{channel_id}", target / "Messages" / f"c{channel_id}"
        dst.mkdir()
        (dst / "channel.json").write_text((src / "channel.json").read_text())
        rows = json.loads((src / "messages.json").read_text())[: limit - taken]
        (dst / "messages.json").write_text(json.dumps(rows, ensure_ascii=False))
        taken += len(rows)
    return taken


def persona_import(url: str, package: Path) -> tuple[float, dict, float]:
    """(seconds, summary, peak RSS MB of the child) for `persona ingest discord-package`."""
    exe = Path(sys.executable).parent / "persona"
    env = {**os.environ, "DATABASE_URL": url, "PERSONA_LOG_LEVEL": "WARNING"}
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        child = subprocess.Popen([str(exe), "ingest", "discord-package", str(package), "--json"], env=env, stdout=out, stderr=err)
        peak_mb = wait_with_peak_rss(child)
        elapsed = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        if child.returncode != 0:
            raise SystemExit(f"import failed: {err.read().strip()}")
        return elapsed, json.loads(out.read()), peak_mb


def naive_import(url: str, package: Path) -> tuple[float, int]:
    """Same parse and scrub, then one autocommitted INSERT per row."""
    import psycopg

    from persona.privacy.scrub import Scrubber

    scrubber = Scrubber()
    started = time.perf_counter()
    count = 0
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO people (id, name, is_owner) VALUES (%s, 'bench', true) ON CONFLICT DO NOTHING", (OWNER,))
        for folder in sorted((package / "Messages").iterdir()):
            meta = json.loads((folder / "channel.json").read_text())
            channel_id = int(meta["id"])
            conn.execute(
                "INSERT INTO channels (id, kind, scope) VALUES (%s, 'guild_text', %s) ON CONFLICT DO NOTHING",
                (channel_id, f"guild:{channel_id}"),
            )
            for row in json.loads((folder / "messages.json").read_text()):
                conn.execute(
                    "INSERT INTO messages (id, channel_id, author_id, source, scope, created_at, content) "
                    "VALUES (%s, %s, %s, 'package', %s, %s, %s) ON CONFLICT (id) DO NOTHING",
                    (row["ID"], channel_id, OWNER, f"guild:{channel_id}", row["Timestamp"] + "+00", scrubber.scrub(row["Contents"])),
                )
                count += 1
    return time.perf_counter() - started, count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--channels", type=int, default=500)
    parser.add_argument("--slice", type=int, default=50_000, help="messages in the baseline slice")
    args = parser.parse_args()

    from psycopg.conninfo import make_conninfo

    from persona.storage.embedded import start_embedded

    with tempfile.TemporaryDirectory(prefix="persona-bench-") as tmp:
        root = Path(tmp)
        started = time.perf_counter()
        layout = write_package(root / "package", args.messages, args.channels)
        generate_s = time.perf_counter() - started
        slice_count = slice_package(root / "package", root / "slice", layout, args.slice)
        admin = make_conninfo(start_embedded(root / "pg"), dbname="postgres")

        slice_s, slice_summary, slice_rss = persona_import(fresh_database(admin, "bench_slice"), root / "slice")
        full_s, full_summary, full_rss = persona_import(fresh_database(admin, "bench_full"), root / "package")
        again_s, again_summary, _ = persona_import(make_conninfo(admin, dbname="bench_full"), root / "package")
        naive_s, naive_count = naive_import(fresh_database(admin, "bench_naive"), root / "slice")

        figures = {
            "bench": "ingest",
            "machine": f"{platform.machine()} {os.cpu_count()} cores",
            "messages": args.messages,
            "channels": len(layout),
            "generate_s": round(generate_s, 1),
            "persona_s": round(full_s, 2),
            "persona_msgs_per_s": round(full_summary["new"] / full_s),
            "persona_new": full_summary["new"],
            "persona_peak_rss_mb": round(full_rss, 1),
            "reimport_s": round(again_s, 2),
            "reimport_new": again_summary["new"],
            "slice_messages": slice_count,
            "slice_persona_s": round(slice_s, 2),
            "slice_persona_msgs_per_s": round(slice_summary["new"] / slice_s),
            "slice_peak_rss_mb": round(slice_rss, 1),
            "slice_naive_s": round(naive_s, 2),
            "slice_naive_msgs_per_s": round(naive_count / naive_s),
            "speedup_vs_naive": round((full_summary["new"] / full_s) / (naive_count / naive_s), 1),
            "speedup_vs_naive_same_slice": round((slice_summary["new"] / slice_s) / (naive_count / naive_s), 1),
            "scrubbed": full_summary["scrubbed"],
        }
        print(json.dumps(figures))


if __name__ == "__main__":
    main()

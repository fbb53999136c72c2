"""Benchmark: PII scrubbing quality and speed, one JSON line.

Quality on the test corpus (tests/data): planted items removed, ordinary chat lines
changed (false positives). Speed on --lines lines drawn from both (1% planted):
persona's scrubber (substring pre-checks decide which patterns run) against the naive
way, every pattern on every line, in the same run.

    python bench/scrub.py
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import sys
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def naive_scrub(text: str) -> str:
    """Every pattern, every line, no pre-checks: the baseline."""
    from persona.privacy import scrub as p

    text = p._PEM.sub(p.PRIVATE_KEY, text)
    text = p._SIGNED_QUERY.sub(r"\1", text)
    text = p._TOKENS.sub(p.SECRET, text)
    text = p._AWS_SECRET.sub(rf"\1{p.SECRET}", text)
    found: Counter[str] = Counter()
    text = p._ASSIGNMENT.sub(lambda m: p._assigned_secret(m, found), text)
    text = p._EMAIL.sub(p.EMAIL, text)
    text = p._IPV6.sub(lambda m: p.IP if p._is_ipv6(m.group(0)) else m.group(0), text)
    text = p._IBAN.sub(lambda m: p.IBAN if p.iban_ok(m.group(0)) else m.group(0), text)
    text = p._SSN.sub(p.SSN, text)
    for pattern, valid, named in p._NATIONAL_IDS:
        if named is None or named.search(text):
            text = pattern.sub(lambda m, valid=valid: p.NATIONAL_ID if p._CHECKS[valid](m.group(0)) else m.group(0), text)
    text = p._CARD.sub(lambda m: p.CARD if p._is_card(m.group(0)) else m.group(0), text)
    text = p._IPV4.sub(p.IP, text)
    text = p._PHONE.sub(lambda m: p.PHONE if p._is_phone(m.group(0)) else m.group(0), text)
    return p._national_phones(text, found)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=200_000)
    args = parser.parse_args()

    from persona.privacy.scrub import Scrubber
    from tests.pii_corpus import ordinary_chat, planted

    items, chat = planted(), ordinary_chat()
    removed = sum(1 for item in items if item.value not in Scrubber().scrub(item.line))
    false_positives = sum(1 for line in chat if Scrubber().scrub(line) != line)
    per_kind: dict[str, list[int]] = {}
    for item in items:
        tally = per_kind.setdefault(item.kind, [0, 0])
        tally[0] += item.value not in Scrubber().scrub(item.line)
        tally[1] += 1

    rng = random.Random(3)
    corpus = [rng.choice(items).line if rng.random() < 0.01 else rng.choice(chat) for _ in range(args.lines)]
    scrubber = Scrubber()
    started = time.perf_counter()
    ours = [scrubber.scrub(line) for line in corpus]
    ours_s = time.perf_counter() - started
    started = time.perf_counter()
    theirs = [naive_scrub(line) for line in corpus]
    naive_s = time.perf_counter() - started
    # The previous version: the patterns only, without libphonenumber's pass for national formats.
    from persona.privacy import scrub as module

    kept, module._NINE_DIGITS = module._NINE_DIGITS, re.compile(r"(?!)")
    started = time.perf_counter()
    patterns_only = [scrubber.scrub(line) for line in corpus]
    patterns_only_s = time.perf_counter() - started
    patterns_only_removed = sum(1 for item in items if item.value not in Scrubber().scrub(item.line))
    module._NINE_DIGITS = kept
    print(json.dumps({
        "bench": "scrub",
        "machine": f"{platform.machine()} {os.cpu_count()} cores",
        "planted": len(items),
        "planted_removed": removed,
        "removed_per_kind": {kind: f"{done}/{total}" for kind, (done, total) in sorted(per_kind.items())},
        "ordinary_lines": len(chat),
        "false_positive_lines": false_positives,
        "lines": args.lines,
        "persona_lines_per_s": round(args.lines / ours_s),
        "naive_lines_per_s": round(args.lines / naive_s),
        "speedup": round(naive_s / ours_s, 1),
        "same_output": ours == theirs,
        "without_national_phone_pass": {"planted_removed": patterns_only_removed, "lines_per_s": round(args.lines / patterns_only_s),
                                        "lines_changed_differently": sum(a != b for a, b in zip(ours, patterns_only, strict=True))},
        "national_phone_pass_cost": round(ours_s / patterns_only_s, 2),
    }))


if __name__ == "__main__":
    main()

"""Stacked bar charts as inline SVG, drawn on the server: no chart library, no script,
nothing for the Content-Security-Policy to allow. Input is already aggregated by SQL."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup, escape

PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac")


@dataclass(frozen=True)
class Series:
    name: str
    colour: str


def _month(month: Any) -> str:
    return f"{month:%Y-%m}"


def stacked_bars(rows: Iterable[tuple[Any, str, int]], *, title: str, width: int = 560, height: int = 180, label: Callable[[Any], str] = _month,
                 empty: str = "no messages yet") -> Markup:
    """(bar, series, count) rows → an SVG of one bar per `bar` (a month unless `label` says
    how to name it), in sorted order, stacked by series, with a legend."""
    by_month: dict[Any, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    totals: dict[str, int] = defaultdict(int)
    for month, name, count in rows:
        by_month[month][name] += count
        totals[name] += count
    if not by_month:
        return Markup(f'<p class="muted">{escape(title)}: {escape(empty)}</p>')  # noqa: S704 - every value is escaped
    series = [Series(name, PALETTE[i % len(PALETTE)]) for i, name in enumerate(sorted(totals, key=lambda n: -totals[n]))]
    months = sorted(by_month)
    peak = max(sum(v.values()) for v in by_month.values())
    left, bottom, top = 48, 28, 10
    plot_w, plot_h = width - left - 8, height - bottom - top
    step = plot_w / len(months)
    bar_w = min(max(1.0, step * 0.8), 28.0)
    parts = [f'<svg class="chart" role="img" viewBox="0 0 {width} {height + 44}" width="100%" aria-label="{escape(title)}">',
             f"<title>{escape(title)}</title>",
             f'<text x="{left}" y="{top - 1}" font-size="10" fill="#555">{peak:,}</text>',
             f'<line x1="{left}" y1="{top + plot_h}" x2="{width - 8}" y2="{top + plot_h}" stroke="#999"/>']
    label_every = max(1, math.ceil(48 / step))  # a YYYY-MM label is ~45 px wide at this size
    for i, month in enumerate(months):
        x = left + i * step
        y = top + plot_h
        for s in series:
            n = by_month[month].get(s.name, 0)
            if not n:
                continue
            h = plot_h * n / peak
            y -= h
            parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" fill="{s.colour}">'
                         f"<title>{escape(label(month))} · {escape(s.name)}: {n:,}</title></rect>")
        if i % label_every == 0:
            parts.append(f'<text x="{x:.1f}" y="{top + plot_h + 14}" font-size="10" fill="#555">{escape(label(month))}</text>')
    x, row = left, 0
    for s in series:
        if x + 24 + 7 * len(f"{s.name} ({totals[s.name]:,})") > width and x > left:
            x, row = left, row + 1
        y = height + 8 + 16 * row
        parts.append(f'<rect x="{x}" y="{y}" width="10" height="10" fill="{s.colour}"/>'
                     f'<text x="{x + 14}" y="{y + 9}" font-size="11">{escape(s.name)} ({totals[s.name]:,})</text>')
        x += 24 + 7 * len(f"{s.name} ({totals[s.name]:,})")
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - numbers, and names passed through escape() above

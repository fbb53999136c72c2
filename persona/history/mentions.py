"""Make Discord's markup readable: `<@123>` becomes `@Alex`, `<#456>` becomes `#general`.

Raw ids mean nothing to a language model and long digit runs look like personal data
to the scrubber, so markup is rendered before scrubbing and storage.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime

_MARKUP = re.compile(r"<(@!?|@&|#|a?:\w+:|t:|/[\w -]+:)(\d+)(?::[tTdDfFR])?>")


def render_mentions(text: str, people: Mapping[int, str], channels: Mapping[int, str] | None = None) -> str:
    """Replace user, role, channel, emoji, timestamp and command markup with readable text."""
    if "<" not in text:
        return text
    channel_names = channels or {}

    def replace(match: re.Match[str]) -> str:
        kind, number = match.group(1), int(match.group(2))
        if kind in ("@", "@!"):
            return f"@{people.get(number, 'someone')}"
        if kind == "@&":
            return "@role"
        if kind == "#":
            return f"#{channel_names.get(number, 'channel')}"
        if kind == "t:":
            try:
                return datetime.fromtimestamp(number, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")
            except (OverflowError, OSError, ValueError):
                return match.group(0)
        if kind.startswith("/"):
            return kind.rstrip(":")  # slash-command mention </name sub:id> → /name sub
        return kind.split(":")[1].join("::")  # custom emoji <:name:id> → :name:

    return _MARKUP.sub(replace, text)

"""What the owner asks to forget, parsed once for the CLI, the bot and the dashboard: a
time range, with one rule for time zones (a moment without an offset is UTC; one with an
offset keeps it and is converted to UTC)."""

from __future__ import annotations

from datetime import UTC, datetime

from persona.errors import PersonaError

FORMAT_HINT = "dates such as 2021-06-01, 2021-06-01T18:00 or 2021-06-01T18:00+02:00 (UTC unless an offset is given)"


def moment(text: str | datetime) -> datetime:
    """`text` (ISO 8601) as an aware UTC datetime."""
    try:
        parsed = text if isinstance(text, datetime) else datetime.fromisoformat(text.strip())
    except ValueError:
        raise PersonaError(f"{text!r} is not a date: use {FORMAT_HINT}") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def time_range(start: str | datetime, end: str | datetime) -> tuple[datetime, datetime]:
    """[start, end) in UTC; the end must come after the start."""
    begin, until = moment(start), moment(end)
    if until <= begin:
        raise PersonaError(f"the end ({until:%Y-%m-%d %H:%M} UTC) must come after the start ({begin:%Y-%m-%d %H:%M} UTC)")
    return begin, until

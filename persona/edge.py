"""Checks of what people type, made where it enters (the dashboard's forms and filters,
the API's bodies), so that a bad value is one clear 400 rather than an error deep inside.

Ids: ASCII digits with an optional minus (an unknown other side is stored with a negative
id), within PostgreSQL's bigint — `int()` alone takes `²`, `٣` and `1_000`, and a 30-digit
number passes it only to fail in the database. Text: whole characters only — JSON can
spell half of a UTF-16 pair (`"\\ud800"`), which no text is made of and neither UTF-8 nor
PostgreSQL can store.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator

from persona.errors import PersonaError

_ID = re.compile(r"-?[0-9]{1,19}")
BIGINT = 2**63
LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def parse_id(value: str, what: str) -> int:
    text = value.strip()
    if not _ID.fullmatch(text) or not -BIGINT < int(text) < BIGINT:
        raise PersonaError(f"{what} must be an id (digits), not {shown(text)}")
    return int(text)


def shown(value: str, limit: int = 40) -> str:
    """A value quoted in an error line: short, and printable whatever it holds."""
    cut = value if len(value) <= limit else value[:limit] + "…"
    return repr(cut.encode("utf-8", "backslashreplace").decode("utf-8"))


def whole_characters(value: str) -> str:
    if LONE_SURROGATE.search(value):
        raise ValueError("holds a lone UTF-16 surrogate (half of an emoji or other character): send whole characters")
    return value


WholeText = Annotated[str, AfterValidator(whole_characters)]  # a pydantic field of text a person sent

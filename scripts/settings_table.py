"""Prints the settings reference of docs/configuration.md (a Markdown table) from the one
settings class: every field, its environment variable, default and description.

    .venv/bin/python scripts/settings_table.py
"""

from __future__ import annotations

from datetime import timedelta

from pydantic_core import PydanticUndefined

from persona.config import Settings, env_name


def _default(value: object) -> str:
    if value is None or value is PydanticUndefined or value == "" or value == frozenset():
        return "—"
    if isinstance(value, timedelta):  # as it is written in .env: 24h, 90m
        seconds = int(value.total_seconds())
        return f"`{seconds // 3600}h`" if seconds % 3600 == 0 else f"`{seconds // 60}m`"
    return f"`{value}`"


def table() -> str:
    rows = ["| variable | default | meaning |", "| --- | --- | --- |"]
    for field, info in Settings.model_fields.items():
        description = (info.description or "").replace("|", "\\|")
        rows.append(f"| `{env_name(field)}` | {_default(info.default)} | {description} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(table())

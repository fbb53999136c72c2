"""Prints the settings reference of docs/configuration.md (a Markdown table) from the one
settings class: every field, its environment variable, default and description.

    .venv/bin/python scripts/settings_table.py
"""

from __future__ import annotations

from pydantic_core import PydanticUndefined

from persona.config import Settings, env_name


def _default(value: object) -> str:
    if value is None or value is PydanticUndefined or value == "" or value == frozenset():
        return "—"
    return f"`{value}`"


def table() -> str:
    rows = ["| variable | default | meaning |", "| --- | --- | --- |"]
    for field, info in Settings.model_fields.items():
        description = (info.description or "").replace("|", "\\|")
        rows.append(f"| `{env_name(field)}` | {_default(info.default)} | {description} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(table())

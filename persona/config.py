"""Settings: one pydantic-settings class, read from the environment and `.env`.

Every field is documented in `.env.example`. Environment variable names are
`PERSONA_<FIELD>` except the two that other tools already name:
`DISCORD_TOKEN` and `DATABASE_URL`.
"""

from __future__ import annotations

import logging
import re
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AliasChoices, BeforeValidator, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from persona.errors import ConfigError

log = logging.getLogger(__name__)

ENV_PREFIX = "PERSONA_"
# Comma-separated Discord ids in the environment ("123,456"), a set in the program.
# NoDecode: pydantic-settings would otherwise expect JSON for a set-typed variable.
IdSet = Annotated[frozenset[int], NoDecode]
# Choices declared once, here; the code that acts on them reads them with typing.get_args.
EngineName = Literal["transformers", "llama.cpp", "openai"]
Precision = Literal["fp32", "bf16", "int8"]
ConsistencyPolicy = Literal["off", "flag", "hedge", "regenerate"]
IdentityPolicy = Literal["regenerate", "drop"]
DisclosureMode = Literal["first", "always", "off"]
SendMode = Literal["auto", "draft", "off"]
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _duration(value: Any) -> Any:
    """`90m`, `24h`, `2d` (or a timedelta) as a timedelta; anything else is left to pydantic's own parsing."""
    if isinstance(value, str) and (match := _DURATION.match(value)):
        return timedelta(seconds=float(match.group(1)) * _UNIT_SECONDS[match.group(2)])
    return value


Duration = Annotated[timedelta, BeforeValidator(_duration)]


class Settings(BaseSettings):
    """All of persona's configuration. Construct with `load_settings()` in programs."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
        validate_default=True,
        allow_inf_nan=False,  # `inf` is no learning rate, epoch count or margin
    )

    # --- Discord -----------------------------------------------------------------
    discord_token: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("DISCORD_TOKEN", "discord_token"),
        description="Bot token from the Discord developer portal (secret).",
    )
    owner_id: int | None = Field(
        default=None,
        description="Discord user id of the owner, the person the bot speaks as.",
    )

    # --- Storage -----------------------------------------------------------------
    database_url: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("DATABASE_URL", "database_url"),
        description="PostgreSQL (with pgvector >= 0.8) URL; unset: the embedded server.",
    )
    home: Path = Field(
        default=Path(".persona"),
        description="Data folder: embedded database, adapters, reports.",
    )

    whatsapp_name: str = Field(
        default="",
        description="Your name as WhatsApp exports show it (for `persona ingest whatsapp`).",
    )

    # --- Models ------------------------------------------------------------------
    base_model: str = Field(
        default="",
        description="Hugging Face id, local folder or .gguf file; `gemma-3-270m`: the offline Gemma 3 270M; empty: the bundled SmolLM2-135M-Instruct.",
    )
    embed_model: str = Field(
        default="",
        description="sentence-transformers id or folder; `multilingual-e5-small`: the bundled multilingual model; "
                    "empty: the model memory was built with, else e5 for an owner who writes mostly in other languages, MiniLM otherwise.",
    )

    allowed_channels: IdSet = Field(default=frozenset(), description="Comma-separated channel ids the bot answers in; empty: everywhere it can read.")
    dev_guild_id: int | None = Field(default=None, description="Sync slash commands to this server only (instant; for development).")
    discord_delivery: Literal["typing", "stream"] = Field(
        default="typing", description="typing: show 'typing…' until the reply is ready; stream: send the first sentence at once and edit "
        "the message as the rest is generated (not for factual questions about the owner while the consistency check may replace the answer).")
    disclosure: DisclosureMode = Field(
        default="first", description="Say that a reply comes from an AI: first (the first reply to each person in each channel), always "
        "(every reply), off. A small line of Discord subtext above the reply (the EU AI Act's Art. 50).")
    disclosure_text: str = Field(
        default="🤖 AI persona of {owner}, trained on their messages", min_length=1, max_length=200,
        description="The disclosure's words; {owner} is replaced by the owner's name.")
    send_mode: SendMode = Field(
        default="draft", description="What the persona does where the owner set no mode (`persona mode set`): draft (the reply goes to the "
        "owner's DMs to send, edit or discard; nobody sees it before), auto (sent at once, in the owner's name), off (no reply).")
    draft_ttl: Duration = Field(
        default=timedelta(hours=24), gt=timedelta(0), le=timedelta(days=14),
        description="How long a draft waits for the owner's decision before it expires unsent: 90m, 24h, 2d.")
    max_sends_per_hour: int = Field(
        default=30, ge=0, le=10_000, description="Automatic replies in an hour, all places together; past it, replies become drafts.")
    max_sends_per_hour_per_channel: int = Field(
        default=10, ge=0, le=10_000, description="Automatic replies in an hour in one channel or DM; past it, replies there become drafts.")
    guard_offensive_threshold: float = Field(
        default=0.9, ge=0.0, le=1.0, description="An automatic reply whose offensive-language score (alt-profanity-check, English) is "
        "above this becomes a draft with the reason; 1.0 turns the check off. The never-say list (`persona guard add`) always applies.")

    # --- Generation backend ---------------------------------------------------------
    engine: EngineName = Field(
        default="transformers", description="Where and how replies are generated: transformers (in this process, exact; GPU or CPU), "
        "llama.cpp (in this process, llama-cpp-python from `make llama-cpp`: several times faster decoding on a CPU; needs the base model as "
        "GGUF; greedy replies can differ in late words), or openai (an OpenAI-compatible server: vLLM with --enable-lora, llama.cpp's "
        "llama-server, another `persona serve`).")
    generator: Literal["local", "openai"] | None = Field(
        default=None, description="Deprecated (read when PERSONA_ENGINE is not set): local or openai; use PERSONA_ENGINE.")
    local_engine: Literal["transformers", "llama.cpp"] | None = Field(
        default=None, description="Deprecated (read when PERSONA_ENGINE is not set): the engine of PERSONA_GENERATOR=local; use PERSONA_ENGINE.")
    llama_cpp_model: str = Field(default="", description="PERSONA_ENGINE=llama.cpp: a GGUF of the base model; empty: the base "
                                 "model's own GGUF (the bundled SmolLM2, gemma-3-270m).")
    llama_cpp_weights: Literal["as-is", "f32"] = Field(
        default="as-is", description="PERSONA_ENGINE=llama.cpp: the GGUF's weights as they are (fastest), or f32 (de-quantised once "
        "into PERSONA_HOME/models: the very weights transformers computes with, so greedy replies are word for word transformers').")
    local_precision: Precision = Field(
        default="fp32", description="PERSONA_ENGINE=transformers on a CPU: fp32 (exact), bf16 (faster where the CPU has bf16 instructions), "
        "int8 (dynamic quantisation: fastest; greedy replies differ slightly from fp32).")
    prefix_cache_mb: int = Field(
        default=512, ge=0, le=65536, description="In-process engines: memory for the prompt prefixes kept per place (channel, DM, API "
        "caller), so the next reply there reads only what is new; least recently used places dropped first, all dropped when the "
        "adapter changes; 0 = off (every prompt read from the start).")
    openai_base_url: str = Field(default="", description="The server's API root, e.g. http://127.0.0.1:8000/v1 (PERSONA_ENGINE=openai).")
    openai_api_key: SecretStr | None = Field(default=None, description="Its API key, if it wants one (secret: never logged).")
    openai_model: str = Field(default="", description="The base model's name on the server; empty: the first one it lists.")
    openai_adapters_dir: str = Field(default="", description="Where the server sees PERSONA_HOME/adapters (a container mount); empty: the same path.")
    openai_timeout_s: float = Field(default=60.0, gt=0, le=600, description="Longest wait for the server to answer one generation.")

    # --- Persona ------------------------------------------------------------------
    owner_name: str = Field(default="", description="How the bot names you in its prompt; empty: your name from the imported data.")
    style_notes: str = Field(default="", description="Extra notes on your voice for the system prompt (e.g. 'lowercase, dry humour').")
    languages: str = Field(default="", description="Languages you and your friends write in, as ISO 639-1 codes (e.g. 'de,en'): "
                           "each message's language is detected among these when it is stored; one code: every message is taken "
                           "to be in it; empty: en, es, pt, de, fr, ru, it, nl, pl, tr.")
    owner_facts: str = Field(default="", description="Facts about you a reply may state although your history never says them "
                             "(e.g. 'I live in Lisbon. My sister is Ana.'); identity claims in replies are checked against these, your "
                             "names and your memory.")

    # --- Replies ------------------------------------------------------------------
    reply_max_tokens: int = Field(default=120, ge=1, le=4096, description="Longest reply in tokens (also used by evaluation sampling).")
    temperature: float = Field(default=0.8, gt=0, le=5, description="Sampling temperature of replies (evaluation samples with it too).")
    top_p: float = Field(default=0.9, gt=0, le=1, description="Nucleus sampling: the smallest set of tokens whose probability reaches this.")
    repetition_penalty: float = Field(default=1.1, ge=1, le=3, description="Penalty on repeating tokens already in the prompt or reply.")
    grounding_boost: float = Field(default=3.0, ge=0, le=20,
                                   description="Logit added to the words of the owner's remembered sentences that answer the question (0: off).")
    grounding_copy_weight: float = Field(default=0.5, ge=0, le=1,
                                         description="Probability mixed in for the word that continues such a sentence (copying a fact whole).")
    grounding_threshold: float | None = Field(
        default=None, ge=0, le=1,
        description="Similarity a remembered sentence needs to the question to count as evidence; "
                    "empty: the embedder's own (MiniLM 0.45, multilingual-e5-small 0.86).",
    )
    grounding_max_evidence: int = Field(default=1, ge=1, le=10, description="Most remembered sentences a reply is pulled towards.")
    consistency: ConsistencyPolicy = Field(
        default="regenerate", description="What happens to a reply whose claims about the owner memory contradicts or does not support: "
        "off (no check), flag (sent, verdict logged), hedge ('not sure' instead), regenerate (again from the owner's own words, else 'not sure').")
    identity_check: IdentityPolicy = Field(
        default="regenerate", description="A reply that says who you are (a name, age, home, work, a relation or pet) that neither "
        "your settings nor your memory back: regenerate (a second reply, else the reply without that clause) or drop (only the "
        "clause taken out). Nothing left: the bot holds it as a draft for you; never sent as it was.")
    say_unknown: bool = Field(default=True,
                              description="Answer a factual question about the owner that memory cannot answer with a 'not sure' in their voice instead of "
                                           "generating.")

    # --- API (`persona serve`) ---------------------------------------------------
    serve_host: str = Field(default="127.0.0.1", description="Address `persona serve` listens on; 127.0.0.1 keeps it on this machine.")
    serve_port: int = Field(default=8400, ge=1, le=65535, description="Port of `persona serve`.")
    serve_max_waiting: int = Field(default=16, ge=1, le=1000,
                                   description="Requests `persona serve` holds while another generates; beyond that it answers 503 (retry later).")
    serve_max_message_chars: int = Field(default=4000, ge=1,
                                         description="Longest message `persona serve` and the playground accept, in characters (Discord's own "
                                                     "limit is 4,000); longer ones get 400 before any work.")
    serve_max_prompt_chars: int = Field(default=16000, ge=1,
                                        description="Longest conversation one request may send, all messages together, in characters; "
                                                    "longer ones get 400 before any work.")
    serve_key_concurrency: int = Field(default=1, ge=1, le=100,
                                       description="Requests one API key may have in progress at once; more get 429 (one key cannot "
                                                   "crowd out the others).")
    serve_key_per_minute: int = Field(default=30, ge=1,
                                      description="Requests one API key may make in any minute; more get 429 with Retry-After.")

    # --- Dashboard (`persona web`) -------------------------------------------------
    web_host: str = Field(default="127.0.0.1", description="Address `persona web` listens on; any other than loopback needs `persona web set-password` first.")
    web_port: int = Field(default=8410, ge=1, le=65535, description="Port of `persona web`.")
    web_password_file: Path | None = Field(default=None,
                                           description="A file whose first line is the dashboard's password (a Docker secret, "
                                                       "/run/secrets/…): `persona web` sets it at start; empty: `persona web set-password`.")
    web_max_upload_mb: float = Field(default=1024.0, gt=0, description="Largest request `persona web` accepts, in MB (an uploaded "
                                     "data package or export); larger imports go through `persona ingest`.")
    web_session_hours: float = Field(default=12.0, gt=0, le=24 * 30, description="How long a dashboard login lasts without use.")
    web_session_max_hours: float = Field(default=24.0 * 7, gt=0, le=24 * 365,
                                         description="How long a dashboard login lasts at most, however much it is used.")
    web_trusted_proxies: str = Field(default="",
                                     description="Addresses of reverse proxies in front of `persona web` whose X-Forwarded-For and "
                                                 "X-Forwarded-Proto are believed (comma-separated IPs or networks; empty: none, the "
                                                 "peer's own address counts).")

    # --- Health and metrics ---------------------------------------------------------
    metrics_port: int = Field(default=0, ge=0, le=65535,
                              description="Port of `persona run`'s /health and /metrics (0: none; `persona serve` and `persona web` "
                                          "serve both on their own port).")
    metrics_host: str = Field(default="127.0.0.1", description="Address `persona run`'s metrics port listens on.")
    metrics_token: SecretStr | None = Field(default=None,
                                            description="Bearer token /metrics asks for (Prometheus's `authorization` setting); empty: "
                                                        "anyone who reaches the port reads the counts (secret: never logged).")

    # --- Training -------------------------------------------------------------------
    lora_rank: int = Field(default=16, ge=1, le=512, description="LoRA rank.")
    lora_alpha: int = Field(default=32, ge=1, description="LoRA alpha (scaling = alpha / rank).")
    lora_dropout: float = Field(default=0.05, ge=0.0, lt=1.0, description="LoRA dropout.")
    lora_targets: str = Field(default="all-linear", description="Modules to adapt: all-linear, or comma-separated names (q_proj,v_proj).")
    learning_rate: float = Field(default=2e-4, gt=0, description="Peak learning rate (cosine schedule with warm-up).")
    train_epochs: float = Field(default=2.0, gt=0, description="Epochs over the training set (unless --max-steps).")
    batch_size: int = Field(default=8, ge=1, description="Examples per device per step.")
    grad_accumulation: int = Field(default=1, ge=1, description="Gradient accumulation steps.")
    eval_steps: int = Field(default=50, ge=1, description="Evaluate on the held-out split and save a checkpoint every this many steps.")
    train_examples: Literal["windows", "turns"] = Field(
        default="windows",
        description="How conversations become training examples: windows (up to 24 turns each, loss on every owner turn) or turns (one example "
                    "per owner turn, the messages a reply is given before it as context, loss on that turn only).")
    max_seq_len: int = Field(default=512, ge=32, description="Longest training example in tokens (longer ones are trimmed from the start).")
    heldout_fraction: float = Field(default=0.05, gt=0, lt=0.5, description="Latest share of each channel held out for evaluation (fixed once chosen).")
    heldout_after: date | None = Field(default=None,
                                       description="Also hold out everything said on or after this day (YYYY-MM-DD), e.g. since the bot went live; empty: "
                                                    "none.")
    max_examples_per_channel: int = Field(default=2000, ge=1, description="Cap per channel so no single place dominates.")
    max_examples_per_source: int = Field(default=50000, ge=1, description="Cap per provenance (package, dce, whatsapp, ...).")
    promotion_margin: float = Field(default=0.02, ge=0,
                                    description="A candidate is promoted unless its held-out loss is worse than the active one's by more than this fraction.")
    promote_on_likeness: bool = Field(default=False,
                                      description="Also require the candidate's replies to be at least as owner-like as the base model's (evaluation's "
                                                   "owner-likeness).")
    promote_on_fact_use: bool = Field(default=False,
                                      description="Also require the candidate to state at least as many remembered facts as the base model (evaluation's fact "
                                                   "probes).")
    eval_contexts: int = Field(default=50, ge=0, le=5000,
                               description="Held-out contexts each evaluation generates replies for (persona train/retrain/eval, the nightly "
                                           "retrain): enough for the report's intervals; fewer when the history has fewer (0: loss only).")
    eval_fact_probes: int = Field(default=10, ge=0, le=200,
                                  description="Questions the owner answered, asked again with recall in each evaluation (0: no fact-use table).")
    replay_ratio: float = Field(default=1.0, ge=0, description="Older examples replayed per new example in incremental retraining.")
    train_memory_fraction: float = Field(default=0.0, ge=0, le=1,
                                         description="Share of conversational training examples that carry recalled memories (experimental; 0: none).")
    train_drill_fraction: float = Field(default=0.0, ge=0, le=1,
                                        description="Share of answered questions in the training set that also become recall drills (experimental; 0: none).")
    trusted_users: IdSet = Field(default=frozenset(), description="Comma-separated user ids whose feedback is trained on besides the owner's.")
    load_in_4bit: bool = Field(default=True, description="QLoRA: load the base model in 4 bits when CUDA and bitsandbytes are present.")

    # --- Scheduler ---------------------------------------------------------------
    retrain_cron: str = Field(
        default="0 3 * * *",
        description="When the nightly incremental retrain runs (crontab: min hour day month weekday).",
    )
    timezone: str = Field(default="UTC", description="IANA time zone of retrain_cron.")

    # --- Policy ------------------------------------------------------------------
    train_on_api_content: bool = Field(
        default=False,
        description="Allow training on messages obtained through Discord's API (backfill, live).",
    )

    # --- Operations --------------------------------------------------------------
    log_level: str = Field(default="INFO", description="DEBUG, INFO, WARNING or ERROR.")

    @model_validator(mode="after")
    def _engine_from_deprecated_settings(self) -> Settings:
        """PERSONA_GENERATOR and PERSONA_LOCAL_ENGINE chose the engine before PERSONA_ENGINE did:
        still read when PERSONA_ENGINE is not set, with a one-line warning."""
        if "engine" in self.model_fields_set or (self.generator is None and self.local_engine is None):
            return self
        self.engine = "openai" if self.generator == "openai" else self.local_engine or "transformers"
        log.warning("PERSONA_GENERATOR and PERSONA_LOCAL_ENGINE are deprecated: set PERSONA_ENGINE=%s instead", self.engine)
        return self

    @field_validator("owner_id", mode="before")
    @classmethod
    def _owner_id_is_snowflake(cls, value: Any) -> Any:
        if value in (None, ""):
            return None
        text = str(value).strip()
        if not text.isdigit() or not 0 < int(text) < 2**63:
            raise ValueError("must be a Discord user id (digits only, e.g. 80351110224678912)")
        return int(text)

    @field_validator("trusted_users", "allowed_channels", mode="before")
    @classmethod
    def _comma_separated_ids(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        parts = [p.strip() for p in value.split(",") if p.strip()]
        if any(not p.isdigit() for p in parts):
            raise ValueError("must be comma-separated Discord ids, e.g. 123,456")
        return frozenset(int(p) for p in parts)

    @field_validator("languages")
    @classmethod
    def _known_languages(cls, value: str) -> str:
        from persona.language_codes import TEXT_SEARCH

        codes = [c.strip().lower() for c in value.split(",") if c.strip()]
        unknown = [c for c in codes if c not in TEXT_SEARCH]
        if unknown:
            raise ValueError(f"{', '.join(unknown)} is not a language persona knows: use ISO 639-1 codes among {', '.join(sorted(TEXT_SEARCH))}")
        return ",".join(dict.fromkeys(codes))

    @field_validator("heldout_after", "grounding_threshold", mode="before")
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("home", mode="before")
    @classmethod
    def _empty_home_is_default(cls, value: Any) -> Any:
        """An empty PERSONA_HOME would mean the current folder: treat it as unset."""
        if isinstance(value, str) and not value.strip():
            return Path(".persona")
        return value

    @field_validator("discord_token", "database_url", "openai_api_key", "metrics_token", "web_password_file", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("database_url")
    @classmethod
    def _database_url_is_postgres(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        url = value.get_secret_value()
        if "://" in url and not url.startswith(("postgresql://", "postgres://")):
            raise ValueError("must start with postgresql:// (e.g. postgresql://user:pass@host:5432/persona)")
        return value

    @field_validator("retrain_cron")
    @classmethod
    def _cron_is_valid(cls, value: str) -> str:
        from apscheduler.triggers.cron import CronTrigger

        try:
            CronTrigger.from_crontab(value)  # the parser the scheduler itself uses
        except ValueError:
            raise ValueError("must be a crontab expression with five fields, e.g. '0 3 * * *'") from None
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone_exists(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("must be an IANA time zone such as 'UTC' or 'Europe/Berlin'") from None
        return value

    @field_validator("log_level")
    @classmethod
    def _log_level_known(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR")
        return level

    # --- Derived paths -------------------------------------------------------------
    @property
    def pg_data_dir(self) -> Path:
        """Where the embedded PostgreSQL keeps its data."""
        return self.home.expanduser().resolve() / "pg"

    @property
    def adapters_dir(self) -> Path:
        return self.home.expanduser().resolve() / "adapters"

    @property
    def models_dir(self) -> Path:
        """Base models persona assembles itself (the offline Gemma 3 270M)."""
        return self.home.expanduser().resolve() / "models"

    @property
    def datasets_dir(self) -> Path:
        return self.home.expanduser().resolve() / "datasets"

    @property
    def metrics_bearer(self) -> str | None:
        return self.metrics_token.get_secret_value() if self.metrics_token is not None else None

    @property
    def secrets(self) -> list[str]:
        """Secret values that must never reach a log line."""
        values = []
        if self.discord_token is not None:
            values.append(self.discord_token.get_secret_value())
        if self.openai_api_key is not None:
            values.append(self.openai_api_key.get_secret_value())
        if self.metrics_token is not None:
            values.append(self.metrics_token.get_secret_value())
        if self.database_url is not None:
            password = _password_of(self.database_url.get_secret_value())
            if password:
                values.append(password)
        return [v for v in values if v]

    def require(self, *fields: str) -> None:
        """Raise ConfigError naming the first of `fields` that is unset."""
        for name in fields:
            if getattr(self, name) in (None, ""):
                raise ConfigError(f"{env_name(name)} is not set: add it to .env or the environment (see .env.example)")


def env_name(field: str) -> str:
    """The environment variable that sets `field`."""
    info = Settings.model_fields[field]
    alias = info.validation_alias
    if isinstance(alias, AliasChoices):
        return str(alias.choices[0])
    return f"{ENV_PREFIX}{field.upper()}"


def _password_of(url: str) -> str | None:
    from urllib.parse import urlsplit

    try:
        return urlsplit(url).password
    except ValueError:
        return None


def load_settings(**overrides: Any) -> Settings:
    """Read settings, turning validation errors into one ConfigError line."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = _field_of(first.get("loc", ()))
        message = first.get("msg", "invalid value").removeprefix("Value error, ")
        raise ConfigError(f"{field}: {message}") from None


def _field_of(loc: tuple[Any, ...]) -> str:
    if not loc:
        return "settings"
    name = str(loc[0])
    if name in Settings.model_fields:
        return env_name(name)
    for field, info in Settings.model_fields.items():
        alias = info.validation_alias
        if isinstance(alias, AliasChoices) and name in alias.choices:
            return env_name(field)
    return name.upper()


def default_of(field: str) -> Any:
    """A setting's default, for option objects that mirror settings (declared once, here)."""
    return Settings.model_fields[field].default

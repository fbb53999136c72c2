"""`persona run`: start the Discord bot."""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated, Any

import typer

from persona.errors import first_line

log = logging.getLogger(__name__)


def register(app: typer.Typer) -> None:
    app.command("run")(run)
    app.command("backfill")(backfill_command)


def backfill_command(ctx: typer.Context) -> None:
    """Store the history of every channel the bot can read (resumable; provenance `backfill`)."""
    from persona.cli import out, settings_of
    from persona.storage.store import open_store

    settings = settings_of(ctx)
    settings.require("discord_token", "owner_id")
    store = open_store(settings)
    counts = asyncio.run(_backfill(store, settings))
    out.print(f"{counts['messages']:,} messages stored from {counts['channels']} channels "
              f"({counts['skipped_channels']} unreadable channels skipped)")
    if not settings.train_on_api_content:
        out.print("these are API-obtained: they feed memory, not training, unless PERSONA_TRAIN_ON_API_CONTENT=true (see README, policy)")


async def _backfill(store: Any, settings: Any) -> dict[str, int]:
    import discord

    from bot.backfill import backfill

    intents = discord.Intents.default()
    intents.message_content = True
    client = discord.Client(intents=intents)
    result: dict[str, int] = {}

    @client.event
    async def on_ready() -> None:
        try:
            result.update(await backfill(client, store, owner_id=settings.owner_id,
                                         progress=lambda channel, n: log.info("#%s: %d messages", getattr(channel, "name", channel.id), n)))
        finally:
            await client.close()

    async with client:
        await start_client(client, settings.discord_token.get_secret_value())
    return result


def run(ctx: typer.Context, sync_commands: Annotated[bool, typer.Option(
        "--sync-commands", help="Sync the slash commands with Discord even if they have not changed since the last sync.")] = False) -> None:
    """Start the bot: it answers mentions, replies to it and DMs as you, with your memory and active adapter."""
    from persona.cli import settings_of
    from persona.runtime.reply import ReplyEngine
    from persona.storage.store import open_store

    settings = settings_of(ctx)
    settings.require("discord_token", "owner_id")
    from persona import presence

    store = open_store(settings).pooled()  # a reply, a capture, a rating: each a checkout, not a new connection
    try:
        # Its own connection: the dashboard reads "bot connected" from a lock held on it (persona/presence.py).
        with store.connect(autocommit=True) as presence_conn:
            engine = ReplyEngine.from_settings(settings, store)
            if settings.metrics_port:
                from persona import observability

                observability.serve_in_background(store, engine=engine, host=settings.metrics_host, port=settings.metrics_port,
                                                  token=settings.metrics_bearer)
            asyncio.run(_serve(engine, store, settings, presence.Announcer(presence_conn), force_sync=sync_commands))
    finally:
        store.close()


async def _serve(engine: Any, store: Any, settings: Any, announcer: Any = None, *, force_sync: bool = False) -> None:
    from bot.client import PersonaBot
    from bot.services import Services

    def retrain(trigger: str) -> str:
        from trainer.pipeline import run as run_training

        return run_training(store, settings, incremental=True, trigger=trigger, quiet=True).line()

    if settings.send_mode != "auto":  # say it where the owner looks first: otherwise a quiet channel looks like a broken bot
        log.info("where no mode is set, replies are %s (PERSONA_SEND_MODE): %s; `persona mode list` shows the places with their own",
                 settings.send_mode, "drafts sent to your DMs first" if settings.send_mode == "draft" else "not made")
    bot = PersonaBot(Services.from_settings(settings, engine, store, retrain=retrain), dev_guild_id=settings.dev_guild_id, presence=announcer,
                     synced_commands=settings.home.expanduser() / "discord-commands.json", force_sync=force_sync)
    async with bot:
        await start_client(bot, settings.discord_token.get_secret_value())


async def start_client(client: Any, token: str) -> None:
    """Log in and run until closed; what goes wrong on the way in is one line."""
    import aiohttp
    import discord

    from persona.errors import ConfigError, PersonaError

    try:
        await client.start(token)
    except discord.LoginFailure:
        raise ConfigError("DISCORD_TOKEN was refused by Discord: copy the bot token again from the developer portal") from None
    except discord.PrivilegedIntentsRequired:
        raise ConfigError("enable the Message Content intent for the bot in the developer portal (Bot → Privileged Gateway Intents)") from None
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        raise PersonaError(f"cannot reach Discord ({_reason(exc)}): check the network connection, then start the bot again") from None


def _reason(exc: BaseException) -> str:
    return first_line(exc, limit=160)

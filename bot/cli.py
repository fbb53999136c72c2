"""`persona run`: start the Discord bot."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import typer

log = logging.getLogger(__name__)


def register(app: typer.Typer) -> None:
    app.command("run")(run)
    app.command("backfill")(backfill_command)


def backfill_command(ctx: typer.Context) -> None:
    """Store the history of every channel the bot can read (resumable; provenance `backfill`)."""
    from persona.cli import out, settings_of
    from persona.store import open_store

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
        try:
            await client.start(settings.discord_token.get_secret_value())
        except discord.LoginFailure:
            from persona.errors import ConfigError

            raise ConfigError("DISCORD_TOKEN was refused by Discord: copy the bot token again from the developer portal") from None
    return result


def run(ctx: typer.Context) -> None:
    """Start the bot: it answers mentions, replies to it and DMs as you, with your memory and active adapter."""
    from persona.cli import embedder_for, settings_of
    from persona.model import resolve_base_model
    from persona.reply import Generator, ReplyEngine
    from persona.store import open_store

    settings = settings_of(ctx)
    settings.require("discord_token", "owner_id")
    store = open_store(settings)
    with store.connect() as conn:
        owner = conn.execute("SELECT coalesce(nullif(display_name, ''), name) FROM people WHERE id = %s", (settings.owner_id,)).fetchone()
    engine = ReplyEngine(store, embedder_for(settings), Generator(resolve_base_model(settings.base_model)), owner_id=settings.owner_id,
                         owner_name=settings.owner_name or (owner[0] if owner else "") or "me", style_notes=settings.style_notes)
    engine.refresh_adapter()
    asyncio.run(_serve(engine, store, settings))


async def _serve(engine: Any, store: Any, settings: Any) -> None:
    import discord

    from bot.client import PersonaBot

    def retrain(trigger: str) -> str:
        from trainer.pipeline import run as run_training

        return run_training(store, settings, incremental=True, trigger=trigger, quiet=True).line()

    bot = PersonaBot(engine, store, owner_user_id=settings.owner_id, trusted_ids=settings.trusted_user_ids, retrain=retrain,
                     schedule=(settings.retrain_cron, settings.timezone), dev_guild_id=settings.dev_guild_id,
                     allowed_channels=settings.allowed_channel_ids)

    async def follow_active_adapter() -> None:
        # A retrain (CLI, or another process) may promote a new adapter: swap it in without a restart.
        while not bot.is_closed():
            await asyncio.sleep(60)
            try:
                await asyncio.to_thread(engine.refresh_adapter)
            except Exception:  # noqa: BLE001 - keep serving with the adapter we have
                log.exception("could not switch to the newly active adapter")

    async def grow_memory() -> None:
        # Conversations that have paused are chunked and embedded into memory.
        from persona import memory

        while not bot.is_closed():
            await asyncio.sleep(300)
            try:
                await asyncio.to_thread(_refresh_memory, store, engine, memory)
            except Exception:  # noqa: BLE001 - memory catches up on the next round
                log.exception("memory refresh failed")

    async with bot:
        watcher = asyncio.create_task(follow_active_adapter())
        grower = asyncio.create_task(grow_memory())
        try:
            await bot.start(settings.discord_token.get_secret_value())
        except discord.LoginFailure:
            from persona.errors import ConfigError

            raise ConfigError("DISCORD_TOKEN was refused by Discord: copy the bot token again from the developer portal") from None
        except discord.PrivilegedIntentsRequired:
            from persona.errors import ConfigError

            raise ConfigError("enable the Message Content intent for the bot in the developer portal (Bot → Privileged Gateway Intents)") from None
        finally:
            watcher.cancel()
            grower.cancel()


def _refresh_memory(store: Any, engine: Any, memory: Any) -> None:
    with store.connect() as conn:
        memory.refresh(conn, engine.embedder)

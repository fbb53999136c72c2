"""`persona serve` (the OpenAI-compatible API) and `persona keys create | list | revoke`."""

from __future__ import annotations

import ipaddress
import json
from typing import Annotated

import typer

from persona.cli.app import app, err, out, settings_of
from persona.errors import ConfigError, PersonaError

keys_app = typer.Typer(help="Keys for `persona serve`: each answers as one person in one place would be answered.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


@keys_app.command("create")
def keys_create(
    ctx: typer.Context,
    as_user: Annotated[int | None, typer.Option("--as", help="Who the key speaks for (a Discord user id); default: the owner (reads everything).")] = None,
    channel: Annotated[int | None, typer.Option(help="Where they ask: a channel id (default: a DM with the bot).")] = None,
    guild: Annotated[int | None, typer.Option(help="The server of --channel, or a server without a channel.")] = None,
    name: Annotated[str, typer.Option(help="How the persona names the asker in its prompt, and a label for `persona keys list`.")] = "",
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object (with the key).")] = False,
) -> None:
    """Make an API key for an audience; the key is printed once and only its hash is stored."""
    from persona import api_keys
    from persona.history.places import place_of_ids
    from persona.privacy.scopes import Place
    from persona.storage.store import open_store

    if as_user is None and (channel is not None or guild is not None):
        raise ConfigError("the owner's key reads everything, everywhere: leave out --channel/--guild, or give --as USER_ID")
    from persona.history.people import is_opted_out

    store = open_store(settings_of(ctx))
    with store.connect() as conn:
        if as_user is not None and is_opted_out(conn, as_user):
            raise PersonaError(f"user {as_user} opted out: nothing is answered for them (`persona optin {as_user}` if they asked to come back)")
        place = Place.terminal() if as_user is None else place_of_ids(conn, channel, guild)
        key, token = api_keys.create(conn, asker_id=as_user, place=place, name=name)
        conn.commit()
    if as_json:
        print(json.dumps({"id": key.id, "key": token, "audience": key.describe(), "asker_id": key.asker_id, "place": key.place.kind,
                          "channel_id": key.place.channel_id, "guild_id": key.place.guild_id}))
        return
    out.print(f"key {key.id} for {key.describe()}:")
    print(token)
    err.print(f"[dim]shown once: only its hash is stored. Revoke with `persona keys revoke {key.id}`.[/]")


@keys_app.command("list")
def keys_list(
    ctx: typer.Context,
    include_revoked: Annotated[bool, typer.Option("--all", help="Revoked keys too.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list.")] = False,
) -> None:
    """The keys issued (never the keys themselves): who each speaks for, where, when last used."""
    from persona import api_keys
    from persona.storage.store import open_store

    store = open_store(settings_of(ctx))
    with store.connect() as conn:
        found = api_keys.listed(conn, include_revoked=include_revoked)
    if as_json:
        print(json.dumps([{"id": k.id, "name": k.name, "audience": k.describe(), "created_at": k.created_at.isoformat(),
                           "last_used_at": k.last_used_at.isoformat() if k.last_used_at else None,
                           "revoked_at": k.revoked_at.isoformat() if k.revoked_at else None} for k in found]))
        return
    for k in found:
        used = f"last used {k.last_used_at:%Y-%m-%d %H:%M}" if k.last_used_at else "never used"
        out.print(f"{k.id}  {k.name or '-'}  {k.describe()}  · made {k.created_at:%Y-%m-%d} · {used}"
                  + (f" · revoked {k.revoked_at:%Y-%m-%d}" if k.revoked_at else ""), markup=False)
    if not found:
        out.print("no keys: `persona keys create` makes one")


@keys_app.command("revoke")
def keys_revoke(ctx: typer.Context, key_id: Annotated[int, typer.Argument(help="The key's id (`persona keys list`).")]) -> None:
    """Stop accepting a key at once (requests with it get 401)."""
    from persona import api_keys
    from persona.storage.store import open_store

    store = open_store(settings_of(ctx))
    with store.connect() as conn:
        revoked = api_keys.revoke(conn, key_id)
        conn.commit()
    if not revoked:
        raise PersonaError(f"no live key {key_id}: `persona keys list --all` shows the keys issued")
    out.print(f"key {key_id} revoked")


@app.command("serve")
def serve(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="Address to listen on (default PERSONA_SERVE_HOST, 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default PERSONA_SERVE_PORT, 8400).")] = None,
) -> None:
    """An OpenAI-compatible API of the persona (GET /v1/models, POST /v1/chat/completions, streaming or not)."""
    from persona.api.app import create_app
    from persona.api.limits import KeyLimits, RequestBounds
    from persona.runtime.engines.registry import is_local
    from persona.runtime.reply import ReplyEngine
    from persona.storage.store import open_store

    settings = settings_of(ctx)
    host = host or settings.serve_host
    port = port or settings.serve_port
    if not 0 < port < 65536:
        raise ConfigError(f"--port {port}: use 1-65535")
    if not is_loopback(host):
        err.print(f"[yellow]warning:[/] listening on {host}: anyone who can reach it and holds a key is answered; "
                  "put a TLS proxy in front (keys travel in a header)")
    engine = ReplyEngine.from_settings(settings, open_store(settings).pooled())  # a connection per request would cost more than a refusal
    application = create_app(engine, max_waiting=settings.serve_max_waiting,
                             bounds=RequestBounds(settings.serve_max_message_chars, settings.serve_max_prompt_chars),
                             keys=KeyLimits(settings.serve_key_concurrency, settings.serve_key_per_minute),
                             model_slots=1 if is_local(settings) else settings.serve_max_waiting, metrics_token=settings.metrics_bearer)
    version = engine.generator.adapter_version
    err.print(f"[dim]{engine.owner_name}'s persona · {'adapter v' + str(version) if version else 'base model (no adapter yet)'} · "
              f"http://{host}:{port}/v1 · Ctrl-C stops[/]")
    run_http(application, host, port, settings.log_level)


GRACEFUL_SHUTDOWN_S = 3


def run_http(application: object, host: str, port: int, log_level: str, trusted_proxies: str = "") -> None:
    """Serve an ASGI app with uvicorn until Ctrl-C (`persona serve`, `persona web`). No access
    log: request lines can carry what must not be logged (the dashboard's one-time login link).
    X-Forwarded-For/-Proto are believed only from `trusted_proxies` (uvicorn by default
    believes them from loopback, so any local client could choose its own address)."""
    import uvicorn

    # On SIGTERM/Ctrl-C, requests still running after a few seconds are cancelled (a reply stops within a
    # token, persona/runtime/cancellation.py) instead of holding the shutdown for as long as they take.
    server = uvicorn.Server(uvicorn.Config(application, host=host, port=port, log_level=log_level.lower(), access_log=False,
                                           timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S, proxy_headers=bool(trusted_proxies.strip()),
                                           forwarded_allow_ips=trusted_proxies.strip() or None))
    server.run()
    if not server.started:
        raise PersonaError(f"could not listen on {host}:{port} (in use, or not an address of this machine): pick another with --port/--host")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False

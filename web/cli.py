"""`persona web` (the dashboard) and `persona web set-password`."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

web_app = typer.Typer(help="The owner's dashboard in a browser (owner-only; binds to 127.0.0.1 by default).", invoke_without_command=True)


def register(app: typer.Typer) -> None:
    app.add_typer(web_app, name="web")


@web_app.callback()
def web(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="Address to listen on (default PERSONA_WEB_HOST, 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default PERSONA_WEB_PORT, 8410).")] = None,
) -> None:
    """Start the dashboard; prints a one-time login link (or log in with the password from `persona web set-password`)."""
    if ctx.invoked_subcommand is not None:
        return
    from persona.cli import err, settings_of
    from persona.cli.serve import is_loopback, run_http
    from persona.errors import ConfigError
    from persona.storage.store import open_store
    from web import password
    from web.app import create_app
    from web.context import Dashboard

    settings = settings_of(ctx)
    host = host or settings.web_host
    port = port or settings.web_port
    if not 0 < port < 65536:
        raise ConfigError(f"--port {port}: use 1-65535")
    store = open_store(settings)
    with store.connect() as conn:
        if settings.web_password_file is not None:  # a container's secret: the password follows the file
            secret = password.read_file(settings.web_password_file)
            if not password.is_set(conn) or not password.verify(conn, secret):
                password.set_password(conn, secret)
        has_password = password.is_set(conn)
    if not is_loopback(host):
        if not has_password:
            raise ConfigError(f"refusing to listen on {host} without a password: run `persona web set-password` first "
                              "(the one-time link alone is for this machine)")
        err.print(f"[yellow]warning:[/] listening on {host}: put a TLS proxy in front (the password and the session cookie travel in the clear)")
    pooled = store.pooled()
    dashboard = Dashboard.from_settings(settings, pooled, secure_cookies=not is_loopback(host))
    shown = f"[{host}]" if ":" in host else host
    err.print(f"[dim]persona dashboard · http://{shown}:{port}/ · Ctrl-C stops[/]")
    # The link goes to stdout alone, on its own line, so a script (or a test) can read it.
    print(f"login (once): http://{shown}:{port}/login?token={dashboard.link.token}", flush=True)
    try:
        run_http(create_app(dashboard), host, port, settings.log_level, trusted_proxies=settings.web_trusted_proxies)
    finally:
        pooled.close()


@web_app.command("login-link")
def login_link(ctx: typer.Context) -> None:
    """A fresh one-time login link for the running dashboard (good for 15 minutes; works even while failed logins lock others out)."""
    from persona.cli import err, settings_of
    from persona.storage.store import open_store
    from web import login_links

    settings = settings_of(ctx)
    with open_store(settings).connect() as conn:
        token = login_links.make(conn)
    shown = f"[{settings.web_host}]" if ":" in settings.web_host else settings.web_host
    print(f"http://{shown}:{settings.web_port}/login?token={token}", flush=True)
    err.print(f"[dim]one login, within {login_links.TTL_MINUTES} minutes (behind a proxy: use its address with the same path)[/]")


@web_app.command("set-password")
def set_password(
    ctx: typer.Context,
    stdin: Annotated[bool, typer.Option("--stdin", help="Read the password from standard input (one line) instead of asking.")] = False,
    clear: Annotated[bool, typer.Option("--clear", help="Remove the password: only the one-time link logs in again.")] = False,
) -> None:
    """Set the dashboard's password (stored as an argon2id hash)."""
    from persona.cli import out, settings_of
    from persona.errors import ConfigError
    from persona.storage.store import open_store
    from web import password

    store = open_store(settings_of(ctx))
    if clear:
        with store.connect() as conn:
            removed = password.clear_password(conn)
        out.print("password removed" if removed else "no password was set")
        return
    if stdin:
        secret = sys.stdin.readline().rstrip("\r\n")
    elif sys.stdin.isatty():
        secret = typer.prompt("New dashboard password", hide_input=True, confirmation_prompt=True)
    else:
        raise ConfigError("no terminal to ask for the password: pipe it in with --stdin")
    with store.connect() as conn:
        password.set_password(conn, secret)
    out.print("dashboard password set; existing logins stay valid until they expire or `persona web` restarts")


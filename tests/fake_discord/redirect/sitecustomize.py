"""Points discord.py in a child process (`persona run` under test) at the fake Discord.

Only on PYTHONPATH in tests that start the bot as its own process, and only active when
FAKE_DISCORD_URL is set: the in-process equivalent is `FakeDiscord.patch`.
"""

import os

_url = os.environ.get("FAKE_DISCORD_URL")
if _url:
    import discord.gateway
    import discord.http
    import yarl

    discord.http.Route.BASE = f"{_url}/api/v10"
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(_url.replace("http://", "ws://") + "/gateway")

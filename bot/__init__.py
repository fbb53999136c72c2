"""Discord glue: the discord.py client, cogs and the nightly scheduler (built on persona/)."""

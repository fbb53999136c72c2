"""persona: a self-hosted Discord bot that talks like its owner.

This is the shared core (settings, database, privacy, memory, models, the reply
pipeline). `bot/`, `ingest/` and `trainer/` import from here; nothing here imports them.
"""

__version__ = "0.1.0"

"""`persona web`: the owner's dashboard — a thin FastAPI + Jinja2 layer over the same core
functions the CLI and the bot call (no SQL here; recall, forget, activate and reply are
the core's)."""

"""`persona serve`: an OpenAI-compatible HTTP API of the persona (FastAPI).

`app` builds the application over a `ReplyEngine` (the same reply pipeline as the bot);
`openai_format` holds the request and response shapes of the OpenAI chat API.
"""

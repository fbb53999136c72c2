"""A stand-in for Ollama's OpenAI-compatible API (`ollama serve` on :11434/v1), run as its own
process: `python -m tests.fake_ollama PORT MODEL[,MODEL…]`.

What persona relies on, as Ollama answers it: `GET /v1/models` lists the models made with
`ollama create`/`pull` by `name:tag`; `POST /v1/chat/completions` answers with the model it was
asked for (the reply says which, so a test can tell) and 404 for a model it does not have;
every other path — vLLM's `/v1/load_lora_adapter` among them — is Go's plain-text
"404 page not found".
"""

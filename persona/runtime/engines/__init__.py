"""Generation engines: the shared interface (`base`), one module per engine
(`transformers_engine`, `llamacpp`, `openai_compatible`) and the registry that picks one
by name (`registry`). Deliberately empty: importing a submodule must not import them all."""

# The two commands of the README:
#   make demo   installs everything into .venv and runs the main job on the embedded defaults
#   make test   installs everything into .venv (and Debian's chromium and docker-compose for the tests that ask them) and runs the whole test suite
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install browser demo test lint bench clean vllm llama-cpp llama-cpp-portable llama-server

install:
	@bash scripts/install.sh

demo: install
	$(BIN)/persona demo $(DEMO_ARGS)

browser:
	@bash scripts/install_test_tools.sh

test: install browser
	$(BIN)/python -m pytest -q

# ruff with the rules in pyproject.toml; CI (.ci/run) runs it before the tests
lint: install
	$(BIN)/ruff check .

# llama.cpp engine (PERSONA_LOCAL_ENGINE=llama.cpp); `make install` tries it too and goes on without it
llama-cpp:
	@bash scripts/install_llama_cpp.sh

# llama.cpp built for the portable x86-64 baseline, as another kind of machine gets it: then `make test`
llama-cpp-portable:
	@bash scripts/install_llama_cpp.sh --portable

# Optional: llama.cpp's llama-server in .llama-server (opt-in test; PERSONA_GENERATOR=openai against it)
llama-server:
	@bash scripts/install_llama_server.sh

# Optional: vLLM (CPU) in .venv-vllm for the opt-in vLLM test and bench (not part of `make test`'s install)
vllm:
	@bash scripts/install_vllm.sh

clean:
	rm -rf $(VENV) .venv-vllm .llama-server .pytest_cache

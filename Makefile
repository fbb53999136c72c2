# The two commands of the README:
#   make demo   installs everything into .venv and runs the main job on the embedded defaults
#   make test   installs everything into .venv and runs the whole test suite
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install demo test bench clean

install:
	@bash scripts/install.sh

demo: install
	$(BIN)/persona demo $(DEMO_ARGS)

test: install
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) .pytest_cache

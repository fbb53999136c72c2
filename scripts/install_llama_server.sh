#!/usr/bin/env bash
# Optional: llama.cpp's own OpenAI-compatible server, `llama-server`, built from the llama.cpp
# that llama-cpp-python 0.3.36 vendors (the same engine), into .llama-server/ — for the
# opt-in test and for serving persona's adapters with it (PERSONA_ENGINE=openai; see
# README → Serving at scale). Not part of `make install`: ~10 minutes on 2 cores.
# AMX kernels off, as in scripts/install_llama_cpp.sh; your own CMAKE_ARGS are added last.
set -euo pipefail
cd "$(dirname "$0")/.."
PREFIX="${PERSONA_LLAMA_SERVER_DIR:-.llama-server}"
VERSION="0.3.36"
if [ -x "$PREFIX/bin/llama-server" ]; then
    echo "persona: llama-server is built in $PREFIX"
    exit 0
fi
command -v cmake >/dev/null 2>&1 || { echo "error: llama-server needs cmake (apt-get install cmake)" >&2; exit 1; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
python_bin="${PYTHON:-.venv/bin/python}"
"$python_bin" -m pip download --quiet --disable-pip-version-check --no-deps --no-binary :all: -d "$work" "llama-cpp-python==$VERSION"
tar xzf "$work/llama_cpp_python-$VERSION.tar.gz" -C "$work"
no_amx="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
echo "persona: building llama-server (llama.cpp of llama-cpp-python $VERSION; about 10 minutes on 2 cores)"
cmake -S "$work/llama_cpp_python-$VERSION/vendor/llama.cpp" -B "$work/build" -DCMAKE_BUILD_TYPE=Release -DLLAMA_BUILD_SERVER=ON \
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DBUILD_SHARED_LIBS=OFF \
    -DCMAKE_C_FLAGS="$no_amx" -DCMAKE_CXX_FLAGS="$no_amx" ${CMAKE_ARGS:-} >"$work/cmake.log" 2>&1 \
    || { tail -20 "$work/cmake.log" >&2; echo "error: cmake could not configure llama-server" >&2; exit 1; }
cmake --build "$work/build" --target llama-server -j "$(nproc)" >"$work/build.log" 2>&1 \
    || { tail -20 "$work/build.log" >&2; echo "error: llama-server did not build" >&2; exit 1; }
mkdir -p "$PREFIX/bin"
cp "$work/build/bin/llama-server" "$PREFIX/bin/llama-server"
echo "persona: llama-server built into $PREFIX/bin"

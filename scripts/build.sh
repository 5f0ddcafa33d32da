#!/usr/bin/env bash
# Configures and builds the chunkflow program alone (Release; no tests, benchmarks or CUDA
# kernels, which the program does not link) into build/ (or $CHUNKFLOW_BUILD_DIR), as a unity
# build: each library's files compile in batches of 16, so the heavy headers (CLI11,
# nlohmann/json, yaml-cpp, Boost.Graph) are compiled once per batch rather than once per file
# (docs/BENCHMARKS.md, "First build"). Extra arguments go to cmake's configure step. The test
# suite (scripts/test.sh) configures the same folder with the tests and CUDA kernels too.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${CHUNKFLOW_BUILD_DIR:-$root/build}
"$root/scripts/install-deps.sh"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCHUNKFLOW_TESTS=OFF \
  -DCHUNKFLOW_CUDA=OFF -DCMAKE_UNITY_BUILD=ON -DCMAKE_UNITY_BUILD_BATCH_SIZE=16 "$@" >/dev/null
cmake --build "$build" -j"$(nproc)" --target chunkflow

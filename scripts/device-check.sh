#!/usr/bin/env bash
# The GPU check, run on a machine with an NVIDIA GPU (e.g. an H200): builds the CUDA backend
# for sm_90, runs every CUDA test (CPU reference against CUDA kernel at stated tolerances) and
# the kernel benchmarks, and writes logs and JSON under $OUT (default: ./device-out).
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${OUT:-$root/device-out}
mkdir -p "$out"
{
  date -u
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1
  nvcc --version | tail -2
} > "$out/machine.txt" 2>&1

"$root/scripts/install-deps.sh" --test > "$out/install.log" 2>&1
build="$root/build-device"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCHUNKFLOW_CUDA=ON \
  -DCMAKE_CUDA_ARCHITECTURES=90 > "$out/configure.log" 2>&1 || { echo "configure failed"; exit 1; }
cmake --build "$build" -j"$(nproc)" --target kernels_cuda_test kernels_bench > "$out/build.log" 2>&1 \
  || { echo "build failed"; tail -30 "$out/build.log"; exit 1; }

status=0
"$build/tests/kernels/kernels_cuda_test" --gtest_output=json:"$out/kernels_cuda_test.json" \
  > "$out/kernels_cuda_test.log" 2>&1 || status=1
"$build/tests/bench/kernels_bench" --benchmark_min_time=0.2 --benchmark_format=json \
  > "$out/kernels_bench.json" 2> "$out/kernels_bench.log" || status=1
grep -E "PASSED|FAILED|SKIPPED" "$out/kernels_cuda_test.log" | tail -20
exit $status

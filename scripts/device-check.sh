#!/usr/bin/env bash
# The GPU check of the CUDA backend, in one run that fits in 8 minutes on one H100 or H200.
#
#   scripts/device-check.sh --bundle   here, on the build machine: builds the CUDA targets for
#                                      sm_90 (build-device/, reused when present) and packs the
#                                      programs with the shared libraries the GPU machine lacks
#                                      into device-bundle/ (git-ignored; carried to the device)
#   scripts/device-check.sh            on the GPU machine (OUT=dir, default ./device-out): with
#                                      device-bundle/ present it runs those programs (else it
#                                      builds, where the build's libraries are installed)
#
# What runs, each under its own time limit: the cuda-labelled tests (every kernel against its
# CPU reference; the executor's gradient contract in fp32 mode, CPU against GPU losses, device
# memory against the pool and the driver; K/V offload in pinned host memory; the GPU
# calibration's own tests); the kernel benchmarks (attention forward + backward at 4K, 8K, 16K
# tokens, head dim 128, GQA 8:1, and GEMMs, TFLOP/s); `chunkflow calibrate --backend cuda`;
# then for qwen2.5-0.5b with ChunkSize 4096 and 8192 at pp 1 and pp 2 (two stages on one GPU):
# simulate with the calibrated GPU file, run on the GPU, compare; then the 4096 / pp 1 job with
# K/V offload (its step, peak and copies), and with kv_offload: auto (what run chose).
# $OUT/summary.txt first (the figures), then
# logs.tar.gz (every log, trace and JSON). docs/GPU.md records what ran.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bundle="$root/device-bundle"
build="$root/build-device"

if [ "${1:-}" = "--bundle" ]; then
  set -e
  # The test command's Release options (unity batches of 16), so a build cache serves both.
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCHUNKFLOW_CUDA=ON \
    -DCMAKE_CUDA_ARCHITECTURES=90 -DCHUNKFLOW_TESTS=ON -DCHUNKFLOW_BENCHMARKS=ON \
    -DCMAKE_UNITY_BUILD=ON -DCMAKE_UNITY_BUILD_BATCH_SIZE=16 >/dev/null
  targets="chunkflow kernels_cuda_test executor_cuda_test calibrate_cuda_test cuda_kernels_bench"
  # shellcheck disable=SC2086
  cmake --build "$build" -j"$(nproc)" --target $targets
  rm -rf "$bundle"; mkdir -p "$bundle/bin" "$bundle/lib"
  for t in $targets; do
    find "$build" -type f -name "$t" -perm -u+x -exec cp {} "$bundle/bin/" \;
  done
  # The libraries the GPU machine's image lacks: everything but the C runtime, the C++ runtime
  # (its own is newer) and CUDA's (the driver's machine has its own CUDA 13 libraries).
  for f in "$bundle"/bin/*; do ldd "$f"; done | awk '$3 ~ /^\// {print $3}' | sort -u |
    grep -Ev '/(libc|libm|libdl|librt|libpthread|libstdc\+\+|libgcc_s|ld-linux[^/]*)\.so|/(libcudart|libcublas|libcublasLt|libnccl)\.so' |
    while read -r lib; do cp -L "$lib" "$bundle/lib/"; done
  du -sh "$bundle"; ls "$bundle/bin"
  exit 0
fi

out=${OUT:-$root/device-out}
mkdir -p "$out"
logs="$out/logs"
mkdir -p "$logs"
summary="$out/summary.txt"
note() { echo "$*" | tee -a "$summary"; }
: > "$summary"
note "chunkflow device check $(date -u +%Y-%m-%dT%H:%M:%SZ)"
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader 2>&1 |
  sed 's/^/gpu        /' | tee -a "$summary"

# CUDA 13's libraries where this machine has them: the toolkit, or Python's nvidia-* wheels.
cuda_libs=/usr/local/cuda/lib64
for d in $(python3 - <<'PY' 2>/dev/null
import importlib.util, os
for name in ("nvidia.nccl", "nvidia.cublas", "nvidia.cuda_runtime"):
    spec = importlib.util.find_spec(name)
    if spec and spec.submodule_search_locations:
        for p in spec.submodule_search_locations:
            print(os.path.join(p, "lib"))
PY
); do cuda_libs="$cuda_libs:$d"; done
if [ -d "$bundle/bin" ]; then
  bin="$bundle/bin"
  export LD_LIBRARY_PATH="$bundle/lib:$cuda_libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
else
  note "no device-bundle/: building here"
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCHUNKFLOW_CUDA=ON \
    -DCMAKE_CUDA_ARCHITECTURES=90 > "$logs/configure.log" 2>&1 &&
    cmake --build "$build" -j"$(nproc)" --target chunkflow kernels_cuda_test executor_cuda_test \
      calibrate_cuda_test cuda_kernels_bench > "$logs/build.log" 2>&1 ||
    { note "build failed: $(tail -3 "$logs/build.log")"; tar -C "$out" -czf "$out/logs.tar.gz" logs; exit 1; }
  bin="$out/bin"; mkdir -p "$bin"
  find "$build" -type f -perm -u+x \( -name chunkflow -o -name '*cuda*test' -o -name cuda_kernels_bench \) \
    -exec cp {} "$bin/" \;
  export LD_LIBRARY_PATH="$cuda_libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
cf="$bin/chunkflow"
export CHUNKFLOW_TEST_PROGRAM="$cf"
cd "$root"
status=0
ldd "$cf" | grep -E "not found" | sed 's/^/missing    /' | tee -a "$summary"

# 1. The cuda tests.
for t in kernels_cuda_test executor_cuda_test calibrate_cuda_test; do
  timeout 150 "$bin/$t" --gtest_output=json:"$logs/$t.json" > "$logs/$t.log" 2>&1
  rc=$?
  [ $rc -eq 0 ] || status=1
  note "test       $t: exit $rc; $(grep -cE '^\[       OK \]' "$logs/$t.log") passed, $(grep -E '^\[  FAILED  \] [A-Za-z]' "$logs/$t.log" | sort -u | wc -l) failed, $(grep -cE '^\[  SKIPPED \] [A-Za-z]' "$logs/$t.log") skipped"
  grep -E '^\[  FAILED  \] [A-Za-z]' "$logs/$t.log" | sort -u | head -8 | sed 's/^/           /' | tee -a "$summary"
done

# 2. Kernel throughput.
timeout 100 "$bin/cuda_kernels_bench" --benchmark_min_time=0.2 --benchmark_format=console \
  --benchmark_out="$logs/cuda_kernels_bench.json" --benchmark_out_format=json \
  > "$logs/cuda_kernels_bench.log" 2>&1 || status=1
grep -E "TFLOP|tflops|skipped" "$logs/cuda_kernels_bench.log" | head -24 | sed 's/^/bench      /' |
  tee -a "$summary"

# 3. Calibration of this GPU, in the hardware file the simulator reads.
gpu_file="$logs/gpu-calibrated.yaml"
timeout 150 "$cf" calibrate --backend cuda --model qwen2.5-0.5b --repetitions 3 --warmup 1 \
  -o "$gpu_file" > "$logs/calibrate.txt" 2>&1 || {
  status=1; note "calibrate  failed: $(tail -2 "$logs/calibrate.txt")"
  case "$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null)" in
    *H200*) gpu_file=h200-141g ;;
    *) gpu_file=h100-sxm-80g ;;
  esac
}
note "calibrate  -> ${gpu_file##*/}: $(head -1 "$logs/calibrate.txt")"

# 4. simulate -> run -> compare: qwen2.5-0.5b, ChunkSize 4K and 8K, pp 1 and 2 on one GPU.
# One long-tailed batch: a 16K sequence split into dependent chunks and short ones packed.
note "loop       config            predicted s   measured s   error    peak MiB (run)"
for chunk in 4096 8192; do
  for pp in 1 2; do
    name="c${chunk}-pp${pp}"
    job="$logs/$name.yaml"
    cat > "$job" <<YAML
model: qwen2.5-0.5b
cluster: {gpu: $gpu_file, gpus: $pp, gpus_per_node: 8}
dataset: {lengths: [16384, 6000, 3000, 2100, 1500, 900, 700, 400, 300, 200], max_length: 16384}
training: {steps: 3}
parallel: {tp: 1, pp: $pp, dp: 1, recompute: none, schedule: 1f1b}
strategy: {kind: chunkflow, chunk_size: $chunk, k: 1, packer: balanced}
memory_model: executor
YAML
    timeout 60 "$cf" simulate "$job" --json --trace "$logs/$name.pred.json" > "$logs/$name.simulate.json" 2>&1 || status=1
    timeout 120 "$cf" run "$job" --backend cuda --math bf16 --json --trace "$logs/$name.meas.json" \
      > "$logs/$name.run.json" 2> "$logs/$name.run.err" || status=1
    timeout 60 "$cf" compare "$logs/$name.pred.json" "$logs/$name.meas.json" --json \
      > "$logs/$name.compare.json" 2>&1 || status=1
    python3 - "$logs" "$name" <<'PY' | tee -a "$summary"
import json, sys
logs, name = sys.argv[1], sys.argv[2]
def load(suffix):
    try:
        return json.load(open(f"{logs}/{name}.{suffix}.json"))
    except Exception as e:
        return {"error": str(e)}
sim, run = load("simulate"), load("run")
pred = sim.get("step_time_s")
meas = run.get("step_time_s")
peak = max((s.get("peak_memory_bytes", 0) for s in run.get("stages", [])), default=0) / 2**20
if pred and meas:
    print(f"loop       {name:<17} {pred:>11.4f}   {meas:>10.4f}   {100 * (pred - meas) / meas:+6.1f}%  {peak:>9.0f}")
else:
    def why(suffix, parsed):
        if "error" not in parsed:
            return "ok"
        try:  # the command's own message, else the parse error
            lines = open(f"{logs}/{name}.{suffix}").read().strip().splitlines()
            return lines[-1] if lines else parsed["error"]
        except OSError:
            return parsed["error"]
    print(f"loop       {name:<17} simulate: {why('simulate.json', sim)}; run: {why('run.err', run)}")
PY
  done
done
# 5. K/V offload on the GPU: the c4096-pp1 job again with the split sequence's K/V in pinned host
# memory, copied on the copy queue; its step, device peak and copies against the run above.
job="$logs/c4096-pp1-offload.yaml"
sed 's/packer: balanced}/packer: balanced, kv_offload: all}/' "$logs/c4096-pp1.yaml" > "$job"
timeout 60 "$cf" simulate "$job" --json > "$logs/offload.simulate.json" 2>&1 || status=1
timeout 120 "$cf" run "$job" --backend cuda --math bf16 --json > "$logs/offload.run.json" \
  2> "$logs/offload.run.err" || status=1
python3 - "$logs" <<'PY' | tee -a "$summary"
import json, sys
logs = sys.argv[1]
try:
    on = json.load(open(f"{logs}/c4096-pp1.run.json"))
    off = json.load(open(f"{logs}/offload.run.json"))
    sim = json.load(open(f"{logs}/offload.simulate.json"))
except Exception as e:
    print(f"offload    failed: {e}")
    sys.exit(0)
mib = 2**20
peak = lambda r: max(s["peak_memory_bytes"] for s in r["stages"]) / mib
st = max(off["stages"], key=lambda s: s.get("host_copy_bytes", 0))
rate = st["host_copy_bytes"] / st["host_copy_s"] / 1e9 if st.get("host_copy_s") else 0
print(f"offload    step {off['step_time_s']:.4f} s (store on the GPU {on['step_time_s']:.4f} s), "
      f"peak {peak(off):.0f} MiB (on the GPU {peak(on):.0f}; predicted {max(s['peak_memory_bytes'] for s in sim['stages']) / mib:.0f}), "
      f"host pool {st.get('host_peak_bytes', 0) / mib:.0f} MiB, {st['host_copy_bytes'] / mib:.0f} MiB copied "
      f"in {st.get('host_copy_s', 0):.4f} s ({rate:.1f} GB/s)")
PY
# 6. kv_offload: auto on the GPU: run decides against the device's free memory before
# allocating (the 0.5B job fits, so its K/V stays on the GPU: "auto: none").
job="$logs/c4096-pp1-auto.yaml"
sed 's/packer: balanced}/packer: balanced, kv_offload: auto}/' "$logs/c4096-pp1.yaml" > "$job"
timeout 120 "$cf" run "$job" --backend cuda --math bf16 --json > "$logs/auto.run.json" \
  2> "$logs/auto.run.err" || status=1
python3 - "$logs/auto.run.json" <<'PY' 2>&1 | tee -a "$summary"
import json, sys
try:
    run = json.load(open(sys.argv[1]))
    print(f"auto       run chose {run['kv_offload']}, step {run['step_time_s']:.4f} s")
except Exception as e:
    print(f"auto       failed: {e}")
PY
note "status     $status"
tar -C "$out" -czf "$out/logs.tar.gz" logs && rm -rf "$logs"
exit $status

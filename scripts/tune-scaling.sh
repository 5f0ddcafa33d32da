#!/bin/bash
# What a search costs: `chunkflow tune` wall and CPU time against the GPU count (32 → 4,096)
# and the global batch (256 → 4,096), for the ChunkSize × K search at the job's layout and for
# the joint search (--parallel). Qwen2.5-72B, bytescale-byted up to 256K, H100s, one sampled
# step; prints one line per point: axis value, search, candidates, simulated, wall s, CPU s,
# peak resident memory. A third axis grows the candidates (K up to 8 → 64) at 256 GPUs. Each
# run is cut at TUNE_TIMEOUT seconds (default 600; "timeout" in place of the counts), and the
# joint search is run up to JOINT_MAX_GPUS GPUs (default 1024; larger clusters only search
# ChunkSize × K).
# Usage: scripts/tune-scaling.sh [BUILD_DIR] (default build/; run scripts/tune.sh or
# scripts/test.sh first). Figures: docs/BENCHMARKS.md, "What a search costs".
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="${1:-$root/build}/bin/chunkflow"
[ -x "$bin" ] || { echo "tune-scaling.sh: no chunkflow at $bin" >&2; exit 2; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

job() {  # gpus global_batch
  local gpus=$1 gbs=$2 dp=$(( $1 / 64 ))
  [ "$dp" -ge 1 ] || dp=1
  local pp=$(( $1 / (8 * dp) ))
  cat > "$work/job.yaml" <<JOB
model: qwen2.5-72b
cluster: {gpu: h100-sxm-80g, gpus: $gpus, gpus_per_node: 8}
dataset: {distribution: bytescale-byted, max_length: 262144, seed: 7}
training: {global_batch: $gbs, steps: 1}
parallel: {tp: 8, pp: $pp, dp: $dp, sp: true, recompute: selective, schedule: 1f1b}
strategy: {kind: chunkflow, chunk_size: 16384, k: 2, packer: balanced}
cost_model: {kind: analytical}
JOB
}

timeout_s="${TUNE_TIMEOUT:-600}"
joint_max="${JOINT_MAX_GPUS:-1024}"

run() {  # label value search flags...
  local label=$1 value=$2 search=$3; shift 3
  local out
  out=$( { /usr/bin/time -f "TIME %e %U %M" timeout "$timeout_s" "$bin" tune "$work/job.yaml" \
             --quiet "$@" 2>&1; } || true)
  local counts times
  counts=$(echo "$out" | grep -m1 '^result' |
           sed -E 's/result +([0-9]+) candidates: simulated ([0-9]+).*/\1 \2/')
  [ -n "$counts" ] || counts="timeout -"
  times=$(echo "$out" | grep '^TIME' | awk '{printf "%s %s %.0f", $2, $3, $4 / 1024}')
  printf '%-10s %6s  %-6s %10s %9s %7s %7s %6s\n' "$label" "$value" "$search" $counts $times
}

printf '%-10s %6s  %-6s %10s %9s %7s %7s %6s\n' axis value search candidates simulated \
  wall_s cpu_s MiB
for gpus in 32 64 128 256 512 1024 2048 4096; do
  job "$gpus" 256
  run gpus "$gpus" ck
  [ "$gpus" -le "$joint_max" ] && run gpus "$gpus" joint --parallel
done
for gbs in 256 512 1024 2048 4096; do
  job 256 "$gbs"
  run batch "$gbs" ck
  run batch "$gbs" joint --parallel
done
job 256 256
for k in 8 16 32 64; do
  run k_max "$k" ck --k-max "$k"
  run k_max "$k" joint --parallel --k-max "$k"
done

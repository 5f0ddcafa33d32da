#!/bin/bash
# What a search costs: `chunkflow tune` wall and CPU time against the GPU count (32 → 4,096)
# and the global batch (256 → 4,096), for the ChunkSize × K search at the job's layout and for
# the joint search (--parallel). Qwen2.5-72B, bytescale-byted up to 256K, H100s, one sampled
# step; prints one line per point: axis value, search, candidates, simulated, wall s, CPU s.
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

run() {  # label value flags...
  local label=$1 value=$2; shift 2
  local search=ck
  [ $# -gt 0 ] && search=joint
  local out
  out=$( { /usr/bin/time -f "TIME %e %U" "$bin" tune "$work/job.yaml" --quiet "$@" 2>&1; } )
  local counts times
  counts=$(echo "$out" | grep -m1 '^result' | sed -E 's/result +([0-9]+) candidates: simulated ([0-9]+).*/\1 \2/')
  times=$(echo "$out" | grep '^TIME' | cut -d' ' -f2-)
  printf '%-8s %6s  %-8s %s %s\n' "$label" "$value" "$search" "$counts" "$times"
}

echo "axis     value   search   candidates simulated wall_s cpu_s"
for gpus in 32 64 128 256 512 1024 2048 4096; do
  job "$gpus" 256; run gpus "$gpus"; run gpus "$gpus" --parallel
done
for gbs in 256 512 1024 2048 4096; do
  job 256 "$gbs"; run batch "$gbs"; run batch "$gbs" --parallel
done

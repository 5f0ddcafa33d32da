#!/usr/bin/env bash
# Million-token contexts (docs/BEYOND.md): Qwen2.5-7B on one node of 8 H100s and Qwen2.5-72B on
# 8 nodes (64 H100s), one sequence of 1M, 2M and 4M tokens per step, simulated with the K/V
# on the GPU and offloaded to host memory; then the 7B / 4M job tuned over ChunkSize, K, TP,
# CP and PP with and without offload; a batch of eight long sequences where kv_offload: auto
# offloads only the longest. Prints markdown tables.
# Usage: scripts/million-tokens.sh [--build-dir DIR]
set -euo pipefail
source "$(dirname "$0")/lib/measure.sh"
measure_init "[--build-dir DIR]" -- "$@"
cat >"$work/read.py" <<'PY'
import json
import sys

d = json.load(sys.stdin)
gib = 2**30
worst = max(d["stages"], key=lambda s: s["peak_memory_bytes"])
store = worst["peak_memory_breakdown"]["state_store"]
traffic = max((s.get("host_traffic_bytes", 0) for s in d["stages"]), default=0)
stall = max((s.get("offload_stall_s", 0) for s in d["stages"]), default=0)
fits = "yes" if d["feasible"] else "**no**"
print("| %.1f GiB (store %.1f) | %s | %.0f GiB | %.0f GiB | %.3g s | %.1f s | %.0f |" % (
    worst["peak_memory_bytes"] / gib, store / gib, fits, d.get("host_bytes_per_node", 0) / gib,
    traffic / gib, stall, d["step_time_s"], d["tokens_per_s"]))
PY
echo "| model, GPUs, layout | tokens | kv_offload | peak per GPU (K/V store) | fits | host memory per node | host link traffic (busiest stage) | stall | step time | tokens/s |"
echo "|---|---|---|---|---|---|---|---|---|---|"
for spec in "qwen2.5-7b:8:4:2:1:32768:2" "qwen2.5-72b:64:8:8:1:16384:2"; do
  IFS=: read -r model gpus tp pp cp chunk k <<<"$spec"
  for tokens in 1048576 2097152 4194304; do
    for offload in none all; do
      cat >"$work/job.yaml" <<YAML
model: $model
cluster: {gpu: h100-sxm-80g, gpus: $gpus, gpus_per_node: 8}
dataset: {lengths: [$tokens], max_length: $tokens}
training: {global_batch: 1, steps: 1}
parallel: {tp: $tp, cp: $cp, pp: $pp, dp: 1, sp: true, recompute: full, schedule: 1f1b}
strategy: {kind: chunkflow, chunk_size: $chunk, k: $k, packer: balanced, kv_offload: $offload}
cost_model: {kind: analytical}
YAML
      printf '| %s, %s × H100, tp%s pp%s, C %s K %s, full recompute | %sM | %s ' "$model" "$gpus" \
        "$tp" "$pp" "$chunk" "$k" "$((tokens / 1048576))" "$offload"
      "$chunkflow" simulate "$work/job.yaml" --json | python3 "$work/read.py"
    done
  done
done
echo
echo "A batch of eight long sequences (2M, 1M, 768K, 512K, 256K, 128K, 64K, 32K tokens), qwen2.5-7b on"
echo "8 × H100 (tp 4, pp 2, C 32768, K 2, full recompute): auto offloads the longest first."
echo
echo "| kv_offload | what is offloaded | peak per GPU (K/V store) | fits | host memory per node | host link traffic (busiest stage) | stall | step time | tokens/s |"
echo "|---|---|---|---|---|---|---|---|---|"
for offload in none all auto; do
  cat >"$work/mixed.yaml" <<YAML
model: qwen2.5-7b
cluster: {gpu: h100-sxm-80g, gpus: 8, gpus_per_node: 8}
dataset: {lengths: [2097152, 1048576, 786432, 524288, 262144, 131072, 65536, 32768], max_length: 2097152}
training: {global_batch: 8, steps: 1}
parallel: {tp: 4, pp: 2, dp: 1, sp: true, recompute: full, schedule: 1f1b}
strategy: {kind: chunkflow, chunk_size: 32768, k: 2, packer: balanced, kv_offload: $offload}
cost_model: {kind: analytical}
YAML
  "$chunkflow" simulate "$work/mixed.yaml" --json >"$work/mixed.json"
  printf '| %s | %s ' "$offload" "$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d.get("kv_offload", "none"))' "$work/mixed.json")"
  python3 "$work/read.py" <"$work/mixed.json"
done
echo
echo "Tuned: qwen2.5-7b, one 4M-token sequence, 8 × H100 (chunkflow tune --tp all --pp all --cp all"
echo "--recompute all --chunk-sizes 8192,16384,32768,65536 --k 1,2,4):"
echo
for offload in none all; do
  cat >"$work/tune.yaml" <<YAML
model: qwen2.5-7b
cluster: {gpu: h100-sxm-80g, gpus: 8, gpus_per_node: 8}
dataset: {lengths: [4194304], max_length: 4194304}
training: {global_batch: 1, steps: 1}
parallel: {tp: 4, pp: 2, dp: 1, sp: true, recompute: full, schedule: 1f1b}
strategy: {kind: chunkflow, chunk_size: 32768, k: 1, packer: balanced, kv_offload: $offload}
cost_model: {kind: analytical}
YAML
  echo "kv_offload $offload:"
  "$chunkflow" tune "$work/tune.yaml" --tp all --pp all --cp all --recompute all \
    --chunk-sizes 8192,16384,32768,65536 --k 1,2,4 --no-baseline -q --top 3 |
    sed -n '/^result/,/^$/p;/^rank/,/^$/p' | sed 's/^/    /'
done

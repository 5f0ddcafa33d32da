#!/usr/bin/env bash
# Cost-aware chunk construction against token balancing (docs/BEYOND.md): every ChunkFlow job
# of examples/ (Qwen2.5 7B–72B at 32K and 256K on the published long-tailed length
# distributions) simulated with strategy.packer balanced | cost × strategy.split tokens | cost;
# then the CPU executor (`chunkflow run`, 3 steps, runs alternated) on a small job whose one
# long sequence is split, with split tokens and cost. Prints markdown tables.
# Usage: scripts/cost-chunking.sh [--build-dir DIR] [--runs N]
set -euo pipefail
source "$(dirname "$0")/lib/measure.sh"
runs=3
measure_init "[--build-dir DIR] [--runs N]" runs -- "$@"
# Reads `chunkflow simulate --json` or `plan --json` on stdin and prints what the tables need.
cat >"$work/read.py" <<'PY'
import json
import sys

d = json.load(sys.stdin)
if sys.argv[1] == "metrics":
    peak = max(s["peak_memory_bytes"] for s in d["stages"]) / 2**30
    print("%.3f %.2f %.1f" % (d["step_time_s"], 100 * d["bubble_ratio"], peak))
else:
    print(", ".join(str(c["tokens"]) for c in d["chunks"] if c.get("kind") == "dependent"))
PY
metrics() {  # JOB → "step_s bubble% peak_GiB"
  "$chunkflow" simulate "$1" --json | python3 "$work/read.py" metrics
}
echo "| job | packer, split | step time (s) | vs tokens | bubble | peak memory (GiB) |"
echo "|---|---|---|---|---|---|"
for job in examples/qwen2.5-{7b,14b,32b,72b}-{32k,256k}.yaml; do
  base=""
  for variant in "balanced tokens" "cost tokens" "balanced cost" "cost cost"; do
    read -r packer split <<<"$variant"
    sed "s/packer: balanced}/packer: $packer, split: $split}/" "$job" >"$work/job.yaml"
    grep -q "split: $split" "$work/job.yaml" || { echo "$job: no strategy line to vary" >&2; exit 1; }
    read -r step bubble peak <<<"$(metrics "$work/job.yaml")"
    [ -z "$base" ] && base=$step
    printf '| %s | %s, %s | %s | %+.2f%% | %s%% | %s |\n' "$(basename "$job" .yaml)" "$packer" \
      "$split" "$step" "$(echo "($step / $base - 1) * 100" | bc -l)" "$bubble" "$peak"
  done
done
echo
echo "CPU executor: tiny-6 (6 layers, hidden 64), pp 2, ChunkSize 1024, K 1, a 3500-token"
echo "sequence and six short ones, 3 steps per run, $runs runs each (alternated):"
echo
echo "| split | pieces of the 3500-token sequence | measured step (s): median, min (runs) |"
echo "|---|---|---|"
for split in tokens cost; do
  cat >"$work/exec-$split.yaml" <<YAML
model: tests/executor/data/tiny-6.yaml
cluster: {gpu: h100-sxm-80g, gpus: 2, gpus_per_node: 2}
dataset: {lengths: [3500, 700, 500, 300, 200, 120, 64], max_length: 4096}
training: {global_batch: 7, steps: 3}
parallel: {tp: 1, pp: 2, dp: 1}
strategy: {kind: chunkflow, chunk_size: 1024, k: 1, packer: balanced, split: $split}
cost_model: {kind: analytical}
YAML
  : >"$work/times-$split"
done
for ((r = 0; r < runs; r++)); do
  for split in tokens cost; do
    "$chunkflow" run "$work/exec-$split.yaml" | sed -n 's/^step time *\([0-9.]*\) s.*/\1/p' >>"$work/times-$split"
  done
done
for split in tokens cost; do
  pieces=$("$chunkflow" plan "$work/exec-$split.yaml" --json | python3 "$work/read.py" pieces)
  mean=$(sort -n "$work/times-$split" | awk '{v[NR] = $1} END {printf "%.3f, %.3f", (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2), v[1]}')
  echo "| $split | $pieces | $mean ($(paste -sd, "$work/times-$split")) |"
done

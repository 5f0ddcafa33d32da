#!/usr/bin/env bash
# The HTML report benchmark (docs/BENCHMARKS.md): the 72B / 256K / pp 8 `simulate` report of
# examples/ (alone, and with its baseline) — its size, the time chunkflow takes to write it,
# and the time headless chromium takes to render it: the wall time of a full screenshot minus
# that of an empty page (median of 5), and the page's own time to the end of its script
# (data-ready-ms). Usage: scripts/report-bench.sh [--build-dir DIR] (default build/).
set -euo pipefail
source "$(dirname "$0")/lib/measure.sh"
measure_init "[--build-dir DIR]" -- "$@"
browser=(chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1280,1600)
# Median wall seconds of 5 screenshots of URL.
render_s() {
  for _ in 1 2 3 4 5; do
    local t0 t1
    t0=$(date +%s.%N)
    "${browser[@]}" --screenshot="$work/shot.png" "$1" 2>/dev/null >/dev/null
    t1=$(date +%s.%N)
    echo "$t1 - $t0" | bc
  done | sort -n | sed -n 3p
}
echo '<!DOCTYPE html><html><body></body></html>' >"$work/empty.html"
empty=$(render_s "file://$work/empty.html")
for case in alone:"" baseline:"--baseline examples/qwen2.5-72b-256k-baseline.yaml"; do
  name=${case%%:*}
  extra=${case#*:}
  html="$work/$name.html"
  t0=$(date +%s.%N)
  # shellcheck disable=SC2086
  "$chunkflow" simulate examples/qwen2.5-72b-256k.yaml $extra --html "$html" >/dev/null
  t1=$(date +%s.%N)
  render=$(render_s "file://$html")
  ready=$("${browser[@]}" --dump-dom "file://$html" 2>/dev/null | grep -o 'data-ready-ms="[0-9]*"' | head -1)
  printf '%-9s size %.2f MB, written in %.2f s, rendered in %.2f s (screenshot %.2f s − empty page %.2f s), script done at %s ms\n' \
    "$name" "$(echo "$(stat -c %s "$html") / 1000000" | bc -l)" "$(echo "$t1 - $t0" | bc)" \
    "$(echo "$render - $empty" | bc)" "$render" "$empty" "${ready//[^0-9]/}"
done

#!/usr/bin/env bash
# The README's pictures of the HTML reports (docs/images/report-*.png): simulate's, tune's and
# sweep's reports on jobs of examples/, rendered by headless chromium (installed when missing)
# at a fixed window size. Usage: scripts/report-pictures.sh [--build-dir DIR] (default build/, built if missing).
set -euo pipefail
source "$(dirname "$0")/lib/measure.sh"
measure_init "[--build-dir DIR]" -- "$@"
if ! command -v chromium >/dev/null; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium
fi
[ -x "$chunkflow" ] || CHUNKFLOW_BUILD_DIR="$build" "$root/scripts/build.sh"
"$chunkflow" simulate examples/qwen2.5-72b-256k.yaml \
  --baseline examples/qwen2.5-72b-256k-baseline.yaml --html "$work/simulate.html" >/dev/null
"$chunkflow" tune --chunk-sizes 4096,8192,16384,32768 --k 1,2,4,8 --html "$work/tune.html" -q >/dev/null
"$chunkflow" sweep examples/sweep-gpus.yaml --html "$work/sweep.html" -q >/dev/null
mkdir -p docs/images
# name, window width, height: the top of each page, its first figures included.
for shot in simulate:1280:1500 tune:1280:1700 sweep:1280:1150; do
  IFS=: read -r name width height <<<"$shot"
  chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size="$width,$height" \
    --screenshot="$root/docs/images/report-$name.png" "file://$work/$name.html" 2>/dev/null
  echo "docs/images/report-$name.png ($(stat -c %s "docs/images/report-$name.png") bytes)"
done

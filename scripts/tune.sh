#!/usr/bin/env bash
# The main job: installs what is missing, builds, then runs `chunkflow tune` on the embedded
# default job (Qwen2.5-7B, 256K context, LMSYS-Chat-1M lengths, 32 × H100). Arguments are
# passed to `chunkflow tune` (e.g. a job file, --json, --top 10).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/build.sh" >&2
exec "${CHUNKFLOW_BUILD_DIR:-$root/build}/bin/chunkflow" tune "$@"

#!/usr/bin/env bash
# Fuzzing (docs/TESTING.md): builds the libFuzzer targets of tests/fuzz with clang, ASan and
# UBSan into build-fuzz, then runs each for N seconds from its seed corpus (tests/fuzz/corpus/
# NAME, read only; what the run adds goes to build-fuzz/corpus/NAME). Prints per target the
# executions, the corpus size and any crash; exits 1 when a target crashed, leaked, timed out
# or ran out of memory (its input is kept in build-fuzz/artifacts/NAME/).
#   scripts/fuzz.sh [--seconds N] [--parallel P] [--target NAME]... [--no-build] [--build-dir DIR]
# --seconds: per target (default 30). --parallel: targets run at once (default: the cores).
# --target: only these (job, dataset, model_yaml, hf_config, calibration_table, chrome_trace, profile).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build="$root/build-fuzz"
seconds=30
parallel=$(nproc)
do_build=1
targets=()
while (($#)); do
  case "$1" in
    --seconds) seconds="$2"; shift 2 ;;
    --parallel) parallel="$2"; shift 2 ;;
    --target) targets+=("$2"); shift 2 ;;
    --no-build) do_build=0; shift ;;
    --build-dir) mkdir -p "$2"; build=$(cd "$2" && pwd); shift 2 ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "fuzz.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
if ((${#targets[@]} == 0)); then
  targets=(job dataset model_yaml hf_config calibration_table chrome_trace profile)
fi

if ((do_build)); then
  # The libraries at -O1 -g1 as in the sanitizer build of scripts/test.sh; a unity build, since
  # the build is most of this phase's time on 2 cores.
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=Debug \
    "-DCMAKE_CXX_FLAGS_DEBUG=-O1 -g1" -DCHUNKFLOW_FUZZ=ON -DCHUNKFLOW_TESTS=OFF \
    -DCHUNKFLOW_MPI=OFF -DCHUNKFLOW_CUDA=OFF -DCMAKE_UNITY_BUILD=ON \
    -DCMAKE_UNITY_BUILD_BATCH_SIZE=16 >/dev/null
  cmake --build "$build" -j"$(nproc)" --target "${targets[@]/#/fuzz_}"
fi

dictionary() {
  case "$1" in
    job|model_yaml) echo "$root/tests/fuzz/yaml.dict" ;;
    dataset) echo "$root/tests/fuzz/yaml.dict" ;;  # JSONL keys are in it too
    *) echo "$root/tests/fuzz/json.dict" ;;
  esac
}

# One target: libFuzzer's own stop after `seconds`, inputs slower than 10 s are findings (a
# hang), and the default memory limit (2 GB) stands. Runs from the source root, where a job's
# relative paths (tests/models/data/...) resolve.
run_target() {
  local name=$1 log="$build/logs/$1.log"
  mkdir -p "$build/corpus/$name" "$build/artifacts/$name" "$build/logs"
  (cd "$root" && UBSAN_OPTIONS=print_stacktrace=1 "$build/tests/fuzz/fuzz_$name" -max_total_time="$seconds" -timeout=10 \
     -print_final_stats=1 -dict="$(dictionary "$name")" \
     -artifact_prefix="$build/artifacts/$name/" \
     "$build/corpus/$name" "$root/tests/fuzz/corpus/$name") >"$log" 2>&1
}

# "NAME: E executions (R/s), corpus C inputs (B bytes), no crash" from libFuzzer's log.
report() {
  local name=$1 rc=$2 log="$build/logs/$1.log"
  local execs rate corpus
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  corpus=$(grep -o 'corp: [0-9]*/[0-9]*[a-zA-Z]*' "$log" | tail -1 | sed 's/corp: //')
  local verdict="no crash"
  if ((rc != 0)); then
    verdict="FOUND: $(grep -m1 -o 'ERROR: [^ ].*\|==[0-9]*== ERROR.*\|CHECK failed.*\|Test unit written to .*' \
                        "$log" | head -1) (log: $log)"
  fi
  printf '%-18s %10s executions (%s/s), corpus %s inputs/bytes, %s\n' \
    "$name:" "${execs:-?}" "${rate:-?}" "${corpus:-?}" "$verdict"
  if ((rc != 0)); then  # the report and its stack, for a log nobody can open (CI)
    grep -v '^#[0-9]* *\(NEW\|REDUCE\|pulse\|RELOAD\)' "$log" | tail -40 | sed 's/^/    /'
  fi
}

failed=0
pids=()
names=()
finish() {  # waits for the oldest running target and reports it
  local rc=0
  wait "${pids[0]}" || rc=$?
  report "${names[0]}" "$rc"
  ((rc == 0)) || failed=1
  pids=("${pids[@]:1}")
  names=("${names[@]:1}")
}
echo "fuzzing ${#targets[@]} targets, ${seconds} s each, ${parallel} at a time"
for name in "${targets[@]}"; do
  ((${#pids[@]} < parallel)) || finish
  run_target "$name" &
  pids+=($!)
  names+=("$name")
done
while ((${#pids[@]})); do finish; done
exit "$failed"

#!/usr/bin/env bash
# The whole test suite: installs what is missing, checks the sources are clang-format clean,
# builds (Release, CUDA code compiled where nvcc exists), runs every ctest (unit, property,
# golden, end-to-end, MPI, the HTML reports rendered in headless chromium, benchmarks as quick
# tests), the validation matrix, then builds and runs the unit tests of the libraries (core,
# models, traces, sim, kernels, executor) and the program's end-to-end tests again under
# ASan + UBSan, the in-process executor's threaded
# tests under ThreadSanitizer, and last fuzzes each reader of outside input for a few seconds
# (scripts/fuzz.sh, docs/TESTING.md).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
jobs=$(nproc)
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1

"$root/scripts/install-deps.sh" --test
start=$(date +%s)
phase_start=$start
# Seconds since the previous phase ended, for the summary line.
phase() { local now; now=$(date +%s); phases+="$1 $((now - phase_start)) s, "; phase_start=$now; }
phases=""

echo "== format (clang-format with .clang-format; fix with: clang-format -i FILE)"
unformatted=$(cd "$root" && git ls-files '*.h' '*.cc' '*.cu' '*.cuh' |
              xargs clang-format --dry-run 2>&1 | sed -n 's/^\([^:]*\):[0-9]*:[0-9]*: warning:.*/\1/p' | sort -u)
if [ -n "$unformatted" ]; then
  echo "not clang-format clean:"; echo "$unformatted"; exit 1
fi
phase "format"

echo "== Release build and full suite"
# The libraries, the program and the test binaries as a unity build (batches of 16 files: each
# library's heavy headers, and GoogleTest's, compiled once per batch, not once per file;
# docs/BENCHMARKS.md). A test binary holds one folder's tests where it can
# (tests/*/CMakeLists.txt), so that its files share one batch.
cmake -S "$root" -B "$root/build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCHUNKFLOW_TESTS=ON \
  -DCHUNKFLOW_BENCHMARKS=ON -DCHUNKFLOW_CUDA=AUTO -DCMAKE_UNITY_BUILD=ON \
  -DCMAKE_UNITY_BUILD_BATCH_SIZE=16 >/dev/null
cmake --build "$root/build" -j"$jobs"
ctest --test-dir "$root/build" -j"$jobs" --output-on-failure --timeout 600 -LE validation
phase "release build and tests"

# The validation matrix measures this machine (docs/VALIDATION.md). It must run to the end;
# a missed prediction target is reported in its verdict line, not failed (no
# --require-targets), since timing on a shared machine is not a property of the code. Any
# non-zero exit (a runtime failure or bad input) fails the suite.
echo "== validation matrix (calibrate, then chunkflow validate)"
# Three executor runs per configuration (the script's default is 5): the suite checks that the
# matrix runs and reports; docs/VALIDATION.md's figures come from full runs by hand.
"$root/scripts/validate.sh" --no-build --build-dir "$root/build" --runs 3
phase "validation"

echo "== ASan + UBSan build: library unit tests, and the program under the end-to-end tests"
# Libraries at -O1 -g1 (line tables for the reports: several times faster to compile than
# -O2 -g) and the tests' own code at -O0 (CMakeLists.txt cf_test), both as unity builds like the
# Release one. Then the end-to-end tests —
# the Release build's binaries: their own code is only a harness — run this build's chunkflow
# (CHUNKFLOW_TEST_PROGRAM, tests/support/subprocess.h), all but the MPI ones, the three
# that each start with `chunkflow calibrate --quick` (50–60 s apiece here, two thirds of the
# end-to-end tests' time; the library's Calibrate.QuickCalibrationFillsTheTable, above, runs
# the same calibration under the sanitizers), and the profile closed loop (15 s of torch
# training; ProfileLoop's other test and CalibrateFromProfile read real and hand-made profiles
# through the sanitized program), and the browser's renders of the reports (30 s of chromium;
# ReportCommand writes the same reports with the sanitized program).
cmake -S "$root" -B "$root/build-asan" -G Ninja -DCMAKE_BUILD_TYPE=Debug "-DCMAKE_CXX_FLAGS_DEBUG=-O1 -g1" \
  -DCHUNKFLOW_SANITIZE=ON -DCHUNKFLOW_CUDA=OFF -DCHUNKFLOW_BENCHMARKS=OFF -DCMAKE_UNITY_BUILD=ON \
  -DCMAKE_UNITY_BUILD_BATCH_SIZE=16 \
  "-DCHUNKFLOW_TEST_DIRS=core;models;traces;sim;kernels;executor" >/dev/null
cmake --build "$root/build-asan" -j"$jobs" --target unit_tests chunkflow
export ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1
# Left to the Release build: Training.LossFallsOver50Steps, 50 steps of the code the contract
# tests already run under the sanitizers (70 s here); and the contract matrix's cases at ChunkSize
# 48 and 80 (26 of its 89, a third of its time under ASan): the same pp, K, packer and CP layouts
# run here at ChunkSize 29 and 30, the sizes that split most sequences, beside every uneven,
# interleaved, tied, DP, GPipe and baseline case.
ctest --test-dir "$root/build-asan" -j"$jobs" --output-on-failure --timeout 900 -L unit -LE "mpi|e2e" \
  -E "^Training\.LossFallsOver50Steps$|ContractTest\..*/(pp[124]_c(48|80)_|cp[12]_pp[12]_c48_)"
CHUNKFLOW_TEST_PROGRAM="$root/build-asan/bin/chunkflow" \
  ctest --test-dir "$root/build" -j"$jobs" --output-on-failure --timeout 900 -L e2e -LE mpi \
  -E "^(CalibrateCommand.QuickTableLoadsAndPricesAJob|ValidateCommand.InvalidTableNamesFileAndKey|TuneCliTest.CalibratedCostModelPrunesSafely|ProfileLoop.CalibratedFromAProfileTheSimulatorPredictsItsStepWithinTenPercent|BrowserReport\..*)$"
unset ASAN_OPTIONS UBSAN_OPTIONS
phase "sanitizer build and tests"

echo "== ThreadSanitizer build, the in-process executor's threads"
# The in-process transport's mailbox and rendezvous collectives under the threads of
# run_in_process: the libraries and the test binaries as unity builds at -O1 -g1 (the tests' own
# code at -O0), without MPI (Open MPI is not instrumented). The cases: every collective and
# message kind once — dp = 2, cp = 2 with interleaving, tied embeddings over
# pp = 4, the rendezvous and CP collectives, the backend seam's dp = 2 and interleaved runs, the
# host staging of device transports (its collectives over the in-process ones) —
# not the whole contract matrix (TSan runs it 15–20× slower than Release: 10 minutes here).
# setarch -R: GCC 12's TSan cannot map its shadow under a kernel's full 32-bit mmap
# randomisation.
cmake -S "$root" -B "$root/build-tsan" -G Ninja -DCMAKE_BUILD_TYPE=Debug "-DCMAKE_CXX_FLAGS_DEBUG=-O1 -g1" \
  -DCHUNKFLOW_SANITIZE=thread -DCHUNKFLOW_MPI=OFF -DCHUNKFLOW_CUDA=OFF -DCHUNKFLOW_BENCHMARKS=OFF \
  -DCMAKE_UNITY_BUILD=ON -DCMAKE_UNITY_BUILD_BATCH_SIZE=16 -DCHUNKFLOW_TEST_DIRS=executor >/dev/null
cmake --build "$root/build-tsan" -j"$jobs" --target executor_test
TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" setarch "$(uname -m)" -R \
  ctest --test-dir "$root/build-tsan" -j"$jobs" --output-on-failure --timeout 600 -L unit \
  -R "ContractTest.*/(pp2_dp2_c40_k1|cp2_pp2_vpp2_interleaved_c32_k2|tied_pp4_c31_k1)( |$)|^(Rendezvous|CpCollectives|CpRun)\.|BackendSeamTest.*/(group_k1_pp2_dp2|interleaved_pp2_vpp2_k2)( |$)|^StagedTransport\."
phase "thread sanitizer build and tests"

echo "== fuzz (libFuzzer targets of tests/fuzz with clang, ASan + UBSan, from their seed corpora)"
# A few seconds per target: the seeds, the hostile inputs among them and what the fuzzer
# reaches from them quickly; longer campaigns are run by hand (docs/TESTING.md).
"$root/scripts/fuzz.sh" --seconds 6
phase "fuzz"
echo "== suite finished in $(( $(date +%s) - start )) s (${phases%, })"

// Tuner benchmarks (docs/BENCHMARKS.md, "Tuner"): the ChunkSize × K search and the joint
// search with TP, PP and recompute on the embedded default job (Qwen2.5-7B, 256K context,
// LMSYS-Chat-1M, 32 × H100), on 2 threads; reports candidates settled and simulated per second.
#include <benchmark/benchmark.h>

#include <string>

#include "core/check.h"
#include "core/resources.h"
#include "tuner/tuner.h"

namespace cf {
namespace {

Job default_job() {
  const std::string_view* text = embedded_file("examples/default-tune.yaml");
  CF_CHECK(text != nullptr) << "examples/default-tune.yaml is not embedded";
  StatusOr<Job> job = parse_job(std::string(*text), "<embedded:examples/default-tune.yaml>");
  CF_CHECK(job.ok()) << job.status().message();
  return *job;
}

void run_search(benchmark::State& state, const SpaceFlags& flags, bool exhaustive) {
  const Job job = default_job();
  StatusOr<SearchSpace> space = read_search_space(job, flags);
  CF_CHECK(space.ok()) << space.status().message();
  TuneOptions options;
  options.threads = static_cast<int>(state.range(0));
  options.exhaustive = exhaustive;
  int64_t candidates = 0, simulated = 0;
  for (auto _ : state) {
    StatusOr<TuneResult> result = tune(job, *space, options);
    CF_CHECK(result.ok()) << result.status().message();
    candidates += result->chunkflow.candidates + result->baseline.candidates;
    simulated += result->chunkflow.evaluated + result->baseline.evaluated;
    benchmark::DoNotOptimize(result->best());
  }
  state.counters["configs/s"] = benchmark::Counter(double(candidates), benchmark::Counter::kIsRate);
  state.counters["simulated/s"] =
      benchmark::Counter(double(simulated), benchmark::Counter::kIsRate);
  state.counters["simulated"] = double(simulated) / double(state.iterations());
}

// The default job's own space: 17 ChunkSizes × K 1..64 × 2 packers at tp4 pp4 dp2.
void BM_TuneChunkSizeK(benchmark::State& state) { run_search(state, {}, false); }
// The same with every TP, PP and recompute policy (27 layouts).
void BM_TuneJoint(benchmark::State& state) {
  SpaceFlags flags;
  flags.parallel = true;
  run_search(state, flags, false);
}
// Without pruning: every candidate simulated.
void BM_TuneChunkSizeKExhaustive(benchmark::State& state) { run_search(state, {}, true); }

BENCHMARK(BM_TuneChunkSizeK)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_TuneJoint)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(1);
BENCHMARK(BM_TuneChunkSizeKExhaustive)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace cf

BENCHMARK_MAIN();

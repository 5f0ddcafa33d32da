// Executor speed (Google Benchmark): training steps of the tiny model on the CPU backend in
// tokens/s, and ChunkFlow against the Megatron-style baseline on one long-tailed batch with a
// 2-stage pipeline (in-process, one thread per stage). Iteration time is the executor's own
// measured step time (manual time): weight initialisation and the plan are outside it.
#include <benchmark/benchmark.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>

#include "core/check.h"
#include "executor/executor.h"
#include "traces/distribution.h"

namespace cf {
namespace {

Job job_from(const std::string& text) {
  StatusOr<Job> job = parse_job(text, "<executor_bench>");
  CF_CHECK(job.ok()) << job.status().message();
  return *job;
}

// A long-tailed global batch: 32 draws from chatqa2-long-sft scaled so the longest is 1024
// tokens (its shape kept: a few long sequences, many short ones).
std::vector<int64_t> long_tailed_batch() {
  StatusOr<LengthDistribution> dist = load_distribution("chatqa2-long-sft");
  CF_CHECK(dist.ok()) << dist.status().message();
  LengthSampler sampler(*dist, dist->max_length, 7);
  std::vector<int64_t> lengths = sampler.draw_batch(32);
  const double top = static_cast<double>(*std::max_element(lengths.begin(), lengths.end()));
  for (int64_t& l : lengths) l = std::max<int64_t>(1, std::llround(l * 1024.0 / top));
  return lengths;
}

std::string job_text(const std::vector<int64_t>& lengths, int pp, const std::string& strategy) {
  return fmt::format(
      "model: tiny\ncluster: {{gpu: h100-sxm-80g, gpus: {0}, gpus_per_node: {0}}}\n"
      "dataset: {{lengths: [{1}], max_length: 1024}}\ntraining: {{steps: 2}}\n"
      "parallel: {{tp: 1, pp: {0}, dp: 1}}\nstrategy: {2}\n",
      pp, fmt::join(lengths, ", "), strategy);
}

// Runs the job's 2 steps per iteration; reports the executor's own mean step time.
void run_job(benchmark::State& state, const Job& job) {
  ExecutorOptions options;
  options.record_trace = false;
  double tokens = 0, seconds = 0;
  int64_t activation_peak = 0;
  for (auto _ : state) {
    StatusOr<RunReport> report = run_in_process(job, options);
    CF_CHECK(report.ok()) << report.status().message();
    double step_s = 0;
    for (const StepReport& s : report->steps) {
      step_s += s.step_time_s;
      tokens += static_cast<double>(s.tokens);
    }
    seconds += step_s;
    state.SetIterationTime(step_s / static_cast<double>(report->steps.size()));
    for (const StageMemoryReport& st : report->stages) {
      activation_peak = std::max(activation_peak, st.category_peaks.activations);
    }
  }
  state.counters["tokens_per_s"] = tokens / seconds;
  state.counters["activation_peak_MiB"] = static_cast<double>(activation_peak) / 1048576.0;
}

// The tiny model on 1024 tokens (8 × 128, no splitting), pp = 1 or 2.
void BM_TinyStep(benchmark::State& state) {
  const int pp = static_cast<int>(state.range(0));
  run_job(state, job_from(job_text(std::vector<int64_t>(8, 128), pp,
                                   "{kind: chunkflow, chunk_size: 256, k: 1}")));
}
BENCHMARK(BM_TinyStep)->Arg(1)->Arg(2)->UseManualTime()->Unit(benchmark::kMillisecond);

// ChunkFlow (ChunkSize 256; K = 1, or K = 4 = N of the 1024-token sequence, no recompute)
// against the baseline (whole sequences packed up to 1024 tokens per micro-batch).
void BM_LongTailedChunkFlow(benchmark::State& state) {
  run_job(state, job_from(job_text(
                     long_tailed_batch(), 2,
                     fmt::format("{{kind: chunkflow, chunk_size: 256, k: {}}}", state.range(0)))));
}
BENCHMARK(BM_LongTailedChunkFlow)->Arg(1)->Arg(4)->UseManualTime()->Unit(benchmark::kMillisecond);

void BM_LongTailedBaseline(benchmark::State& state) {
  run_job(state,
          job_from(job_text(long_tailed_batch(), 2, "{kind: baseline, micro_batching: pack}")));
}
BENCHMARK(BM_LongTailedBaseline)->UseManualTime()->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace cf

BENCHMARK_MAIN();

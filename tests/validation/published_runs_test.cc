// The published runs of ../shared/data/published-runs.md replayed as jobs
// (tests/validation/published/*.yaml): the analytical model's step time against the measured
// one. Targets (docs/VALIDATION.md): every run within 10%, the mean absolute error within 6%,
// and no run that ran predicted not to fit. The table is printed for the log and the docs.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "sim/plan/job.h"
#include "sim/simulator.h"

namespace cf {
namespace {

struct PublishedRun {
  const char* name;
  const char* job;     // under tests/validation/published/
  double measured_s;   // the source's step time
  const char* source;  // where the figure comes from
};

// Measured step times, as published (all of these runs completed on the stated GPUs).
const PublishedRun kRuns[] = {
    {"A1 Llama 3 8B SFT, 8 H100, DP 8", "a1-llama3-8b-sft.yaml", 1.32,
     "NVIDIA/dgxc-benchmarking v25.02"},
    {"A2 Llama 3 70B SFT, 32 H100, TP 4 PP 4 VP 5", "a2-llama3-70b-sft.yaml", 3.36,
     "NVIDIA/dgxc-benchmarking v25.02"},
    {"A3 Llama 3.1 8B pre-train, 8 H100, CP 2 DP 4", "a3-llama3.1-8b-pretrain-cp2.yaml", 12.91,
     "NVIDIA/dgxc-benchmarking v24.11.1"},
    {"B1 GPT 22B, 8 A100, TP 8, full recompute", "b1-gpt-22b-full.yaml", 1.42,
     "arXiv:2205.05198 Table 5"},
    {"B1 GPT 22B, 8 A100, TP 8, SP + selective", "b1-gpt-22b-selective.yaml", 1.10,
     "arXiv:2205.05198 Table 5"},
    {"B2 GPT 175B, 64 A100, TP 8 PP 8 VP 3, full", "b2-gpt-175b-full.yaml", 18.13,
     "arXiv:2205.05198 Table 5"},
    {"B2 GPT 175B, 64 A100, TP 8 PP 8 VP 3, SP + selective", "b2-gpt-175b-selective.yaml", 13.75,
     "arXiv:2205.05198 Table 5"},
};

TEST(PublishedRuns, PredictedStepTimesWithinTargets) {
  double sum_abs_error = 0;
  std::string table =
      "| run | measured s | predicted s | error | peak memory (GiB) | fits |\n"
      "|---|---|---|---|---|---|\n";
  for (const PublishedRun& run : kRuns) {
    SCOPED_TRACE(run.name);
    StatusOr<Job> job = load_job(std::string("tests/validation/published/") + run.job);
    ASSERT_TRUE(job.ok()) << job.status().message();
    StatusOr<SimResult> result = simulate_job(*job, SimOptions{});
    ASSERT_TRUE(result.ok()) << result.status().message();
    const SimMetrics& m = result->metrics;
    const double error = m.step_time_s / run.measured_s - 1;
    sum_abs_error += std::abs(error);
    int64_t peak = 0;
    for (const StageMetrics& st : m.stages) peak = std::max(peak, st.peak_memory_bytes);
    table += fmt::format("| {} | {:.2f} | {:.2f} | {:+.1f}% | {:.1f} | {} |\n", run.name,
                         run.measured_s, m.step_time_s, 100 * error,
                         static_cast<double>(peak) / (1 << 30), m.feasible ? "yes" : "no");
    EXPECT_LE(std::abs(error), 0.10) << "predicted " << m.step_time_s << " s against "
                                     << run.measured_s << " s measured (" << run.source << ")";
    EXPECT_TRUE(m.feasible) << "the run completed, but the model says: " << m.infeasible_reason;
  }
  const double mean = sum_abs_error / std::size(kRuns);
  table +=
      fmt::format("\nmean absolute error {:.1f}% over {} runs\n", 100 * mean, std::size(kRuns));
  std::printf("%s", table.c_str());
  EXPECT_LE(mean, 0.06);
}

}  // namespace
}  // namespace cf

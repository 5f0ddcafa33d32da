// Worst-case feasibility and overlap at the level of the simulator: a job whose sampled
// batches hold only short sequences is judged for the longest sequence its data can produce,
// and the overlap switches take exactly the communication they hide off the step.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "sim/plan/job.h"
#include "sim/simulator.h"
#include "tests/support/subprocess.h"

namespace cf {
namespace {

using test::TempDir;

// 999 short sequences of 64..127 tokens and one of `longest`: eight sampled sequences (seed 3)
// miss the long one.
std::string lengths_file(int64_t longest) {
  std::string text;
  for (int i = 0; i < 999; ++i) text += std::to_string(64 + (i * 37) % 64) + "\n";
  return text + std::to_string(longest) + "\n";
}

StatusOr<Job> qwen_job(const TempDir& dir, int64_t longest, int64_t max_length,
                       const std::string& extra = "") {
  const std::string lengths = dir.write("lengths.txt", lengths_file(longest));
  return parse_job(
      "model: qwen2.5-7b\n"
      "cluster: {gpu: h100-sxm-80g, gpus: 8, gpus_per_node: 8}\n"
      "dataset: {distribution: " +
          lengths + ", max_length: " + std::to_string(max_length) +
          ", seed: 3}\n"
          "training: {global_batch: 8, steps: 1}\n"
          "parallel: {tp: 1, pp: 1, dp: 8, recompute: none}\n"
          "strategy: {kind: baseline, micro_batching: per_sequence}\n"
          "cost_model: {kind: analytical}\n" +
          extra,
      "job.yaml");
}

TEST(WorstCase, LongestSequenceAndItsBatch) {
  TempDir dir;
  StatusOr<Job> job = qwen_job(dir, 50001, 65536);
  ASSERT_TRUE(job.ok()) << job.status().message();
  EXPECT_EQ(longest_sequence(*job), 50001);
  const std::vector<int64_t> sampled = job_global_batch(*job, 0);
  ASSERT_LT(*std::max_element(sampled.begin(), sampled.end()), 128);
  const std::vector<int64_t> worst = worst_case_batch(*job, sampled);
  ASSERT_EQ(worst.size(), sampled.size());
  // Exactly one sequence differs: the sampled longest, now 50001.
  int differ = 0;
  for (size_t i = 0; i < worst.size(); ++i) differ += worst[i] != sampled[i];
  EXPECT_EQ(differ, 1);
  EXPECT_EQ(*std::max_element(worst.begin(), worst.end()), 50001);
  // max_length clamps what the data can produce; a batch already that long has no worse case.
  StatusOr<Job> clamped = qwen_job(dir, 50001, 4099);
  ASSERT_TRUE(clamped.ok()) << clamped.status().message();
  EXPECT_EQ(longest_sequence(*clamped), 4099);
  EXPECT_TRUE(worst_case_batch(*clamped, {5, 4099, 7}).empty());
}

TEST(WorstCase, SampledFitsButTheLongestSequenceDoesNot) {
  TempDir dir;
  StatusOr<Job> job = qwen_job(dir, 60000, 65536);
  ASSERT_TRUE(job.ok()) << job.status().message();
  StatusOr<SimResult> result = simulate_job(*job, SimOptions{});
  ASSERT_TRUE(result.ok()) << result.status().message();
  const SimMetrics& m = result->metrics;
  EXPECT_EQ(m.worst_case_length, 60000);
  EXPECT_FALSE(m.worst_case_feasible);
  EXPECT_FALSE(m.feasible);
  EXPECT_NE(m.infeasible_reason.find("worst case (a 60000-token sequence"), std::string::npos)
      << m.infeasible_reason;
  // The sampled step itself fits: its peak plus the reserve is within the GPU.
  EXPECT_LE(m.stages[0].peak_memory_bytes + m.reserved_bytes, m.memory_capacity_bytes);
  EXPECT_GT(m.worst_case_peak_bytes, m.stages[0].peak_memory_bytes);

  // A longest sequence that fits leaves the job feasible and reports its peak.
  StatusOr<Job> small = qwen_job(dir, 3001, 65536);
  ASSERT_TRUE(small.ok());
  StatusOr<SimResult> fits = simulate_job(*small, SimOptions{});
  ASSERT_TRUE(fits.ok());
  EXPECT_TRUE(fits->metrics.feasible) << fits->metrics.infeasible_reason;
  EXPECT_EQ(fits->metrics.worst_case_length, 3001);
  EXPECT_GT(fits->metrics.worst_case_peak_bytes, fits->metrics.stages[0].peak_memory_bytes);
}

// overlap.grad_reduce hides the reduce-scatter behind the last backward: the step shrinks by
// exactly what the exposed reduction shrinks by (pp = 1), and never below zero exposure;
// overlap.param_gather takes the all-gather out of the optimizer step.
TEST(Overlap, GradReduceAndParamGatherShortenTheStepByWhatTheyHide) {
  TempDir dir;
  StatusOr<Job> plain = qwen_job(dir, 127, 4096);
  StatusOr<Job> overlapped =
      qwen_job(dir, 127, 4096, "overlap: {grad_reduce: true, param_gather: true}\n");
  ASSERT_TRUE(plain.ok() && overlapped.ok());
  StatusOr<SimResult> a = simulate_job(*plain, SimOptions{});
  StatusOr<SimResult> b = simulate_job(*overlapped, SimOptions{});
  ASSERT_TRUE(a.ok() && b.ok());
  const StageMetrics& sa = a->metrics.stages[0];
  const StageMetrics& sb = b->metrics.stages[0];
  EXPECT_GT(sa.dp_reduce_s, 0);
  EXPECT_GE(sb.dp_reduce_s, 0);
  EXPECT_LT(sb.dp_reduce_s, sa.dp_reduce_s);
  EXPECT_LT(sb.optimizer_s, sa.optimizer_s);
  EXPECT_NEAR(a->metrics.step_time_s - b->metrics.step_time_s,
              (sa.dp_reduce_s - sb.dp_reduce_s) + (sa.optimizer_s - sb.optimizer_s), 1e-8);
  EXPECT_DOUBLE_EQ(a->metrics.pipeline_time_s, b->metrics.pipeline_time_s);
}

}  // namespace
}  // namespace cf

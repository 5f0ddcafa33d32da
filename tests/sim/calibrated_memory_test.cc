// The calibrated path's memory accounting (sim/memory_calibrated.h) against the executor's
// measuring allocator: for ChunkFlow (K = 1, 2, N; odd ChunkSizes), the baseline, pp 1/2/4,
// DP, interleaving, GPipe and tied embeddings, the replayed peak of every stage equals the measured
// peak to the byte, and model states match the executor's parameter buffers.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <vector>

#include "executor/executor.h"
#include "executor/params.h"
#include "sim/memory_calibrated.h"
#include "sim/memory_model.h"
#include "sim/memory_timeline.h"
#include "sim/plan/plan_builder.h"
#include "tests/executor/executor_fixture.h"

namespace cf {
namespace {

// Peak bytes of each stage replayed with the executor's accounting, max over DP ranks and
// steps; the op order is the stream order (times only need to increase).
std::vector<int64_t> replayed_peaks(const Job& job) {
  std::vector<int64_t> peaks(static_cast<size_t>(job.parallel.pp), 0);
  for (int step = 0; step < job.training.steps; ++step) {
    StatusOr<Plan> plan = build_plan(job, step);
    EXPECT_TRUE(plan.ok()) << plan.status().message();
    if (!plan.ok()) return peaks;
    const MemoryModel memory(job.model, job.parallel, plan->layers_per_model_chunk(),
                             MemoryModelKind::kExecutor);
    StatusOr<PlanIndex> index = PlanIndex::build(*plan, WireFormat{job.model.hidden, 4, 1});
    EXPECT_TRUE(index.ok()) << index.status().message();
    if (!index.ok()) return peaks;
    std::vector<int64_t> start(static_cast<size_t>(index->size())), end(start.size());
    for (size_t i = 0; i < start.size(); ++i) {
      start[i] = static_cast<int64_t>(2 * i);
      end[i] = start[i] + 1;
    }
    for (int r = 0; r < plan->dp; ++r) {
      for (int s = 0; s < plan->pp; ++s) {
        const StageMemoryReplay replay =
            replay_stage_memory(memory, *index, r, s, start, end, nullptr);
        EXPECT_EQ(replay.end_dynamic_bytes, 0);
        EXPECT_GE(replay.min_category_bytes, 0);
        peaks[static_cast<size_t>(s)] =
            std::max(peaks[static_cast<size_t>(s)], replay.peak.total());
      }
    }
  }
  return peaks;
}

void expect_exact(const test::TinyJob& spec) {
  const Job job = test::tiny_job(spec);
  ExecutorOptions options;
  options.record_trace = false;
  StatusOr<RunReport> run = run_in_process(job, options);
  ASSERT_TRUE(run.ok()) << run.status().message() << "\n" << test::tiny_job_yaml(spec);
  const std::vector<int64_t> predicted = replayed_peaks(job);
  for (const StageMemoryReport& st : run->stages) {
    EXPECT_GT(st.peak_bytes, 0);
    EXPECT_EQ(predicted[static_cast<size_t>(st.stage)], st.peak_bytes)
        << "stage " << st.stage << " of\n"
        << test::tiny_job_yaml(spec);
  }
}

struct Case {
  std::string strategy;
  int pp = 1, dp = 1, vpp = 1;
  std::string schedule = "1f1b";
};

class CalibratedMemoryTest : public ::testing::TestWithParam<Case> {};

TEST_P(CalibratedMemoryTest, ReplayedPeakEqualsMeasuredPeak) {
  const Case& c = GetParam();
  for (const uint64_t seed : {3u, 11u}) {
    test::TinyJob spec;
    spec.lengths = test::scaled_batch("chatqa2-long-sft", 6, 181, seed);
    spec.lengths.push_back(1);
    spec.strategy = c.strategy;
    spec.pp = c.pp;
    spec.dp = c.dp;
    spec.vpp = c.vpp;
    spec.schedule = c.schedule;
    spec.steps = 2;
    expect_exact(spec);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Plans, CalibratedMemoryTest,
    ::testing::Values(Case{"{kind: chunkflow, chunk_size: 29, k: 1}", 1},
                      Case{"{kind: chunkflow, chunk_size: 48, k: 2}", 2},
                      Case{"{kind: chunkflow, chunk_size: 80, k: 8}", 4},
                      Case{"{kind: chunkflow, chunk_size: 37, k: 1, packer: ffd}", 2, 2},
                      Case{"{kind: chunkflow, chunk_size: 64, k: 2}", 2, 1, 1, "gpipe"},
                      Case{"{kind: baseline, micro_batching: pack}", 2},
                      Case{"{kind: baseline, micro_batching: per_sequence}", 1, 2}));

// Interleaved 1F1B needs a chunk count Megatron's rule admits: the contract test's batch.
TEST(CalibratedMemory, InterleavedVirtualStages) {
  test::TinyJob spec;
  spec.lengths = test::scaled_batch("longbench", 10, 150, 3);
  spec.pp = 2;
  spec.vpp = 2;
  spec.schedule = "interleaved";
  spec.strategy = "{kind: chunkflow, chunk_size: 32, k: 2}";
  expect_exact(spec);
}

TEST(CalibratedMemory, TiedEmbeddingsAcrossStages) {
  for (const int pp : {1, 2}) {
    test::TinyJob spec;
    spec.model = "tests/executor/data/tiny-tied.yaml";
    spec.lengths = {97, 5, 33, 1, 12};
    spec.pp = pp;
    spec.strategy = "{kind: chunkflow, chunk_size: 29, k: 1}";
    expect_exact(spec);
  }
}

TEST(CalibratedMemory, ModelStatesAreTheExecutorsFp32Buffers) {
  const Job job = test::tiny_job(test::TinyJob{{5}, 4});
  for (int stage = 0; stage < 4; ++stage) {
    const ParamLayout layout(job.model, 4, 1, stage);
    const MemoryBreakdown b = executor_model_states(job.model, 4, 1, stage);
    EXPECT_EQ(b.weights, 4 * layout.total());
    EXPECT_EQ(b.gradients, 4 * layout.total());
    EXPECT_EQ(b.optimizer, 8 * layout.total());  // AdamW m and v
  }
}

// The default (Megatron) accounting is untouched by the executor's: same plan, different
// bytes, and the executor's never below (fp32 against bf16 weights).
TEST(CalibratedMemory, AccountingsDiffer) {
  const Job job = test::tiny_job(test::TinyJob{{97, 5, 33}, 2});
  const MemoryModel megatron(job.model, job.parallel, 2);
  const MemoryModel executor(job.model, job.parallel, 2, MemoryModelKind::kExecutor);
  EXPECT_EQ(megatron.kind(), MemoryModelKind::kMegatron);
  EXPECT_EQ(megatron.model_states(0).weights, 2 * stage_local_parameters(job.model, 1, 2, 1, 0));
  EXPECT_EQ(executor.model_states(0).weights, 4 * stage_local_parameters(job.model, 1, 2, 1, 0));
}

}  // namespace
}  // namespace cf

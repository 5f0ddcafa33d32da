// The simulator end to end with the unit cost model: the paper's test vectors (DESIGN §4.3)
// exactly, a hand-made cyclic plan reported as a deadlock, plan/job mismatches as bad input.
#include "sim/simulator.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "sim/cost_unit.h"
#include "tests/sim/simulator_test_util.h"

namespace cf {
namespace {

using test::plan_of;
using test::tiny_job;

constexpr int64_t kUnit = UnitCostModel::kUnitNsPerToken;

SimMetrics run_unit(const Job& job) {
  const UnitCostModel unit;
  StatusOr<SimResult> result = simulate(job, plan_of(job), unit);
  CF_CHECK(result.ok()) << result.status().message();
  return result->metrics;
}

int64_t units(double seconds) { return std::llround(seconds * 1e9) / kUnit; }

// Four equal micro-batches of 2 tokens on pp = 4: makespan (m + p − 1)(F + B) = 7 · (2 + 4)
// = 42, busy 4 · 4 · 6 = 96 → 1 − 96/168 = 3/7 = 42.86%.
TEST(SimulatorPaperVectors, FourEqualMicroBatches) {
  const Job job =
      tiny_job(1, 4, 1, "", "{kind: baseline, micro_batching: per_sequence}", "2, 2, 2, 2");
  const SimMetrics m = run_unit(job);
  EXPECT_EQ(units(m.pipeline_time_s), 42);
  EXPECT_EQ(units(m.step_time_s), 42);  // unit model: no DP reduction, no optimizer
  double busy = 0;
  for (const StageMetrics& st : m.stages) busy += st.busy_s;
  EXPECT_EQ(units(busy), 96);
  EXPECT_NEAR(m.bubble_ratio, 3.0 / 7.0, 1e-15);
  EXPECT_EQ(std::llround(m.bubble_ratio * 10000), 4286);
}

// (4U, 2U, U, U), one sequence per micro-batch: makespan 56, 1 − 96/224 = 4/7 = 57.14%.
TEST(SimulatorPaperVectors, BaselinePerSequence) {
  const Job job =
      tiny_job(1, 4, 1, "", "{kind: baseline, micro_batching: per_sequence}", "4, 2, 1, 1");
  const SimMetrics m = run_unit(job);
  EXPECT_EQ(units(m.pipeline_time_s), 56);
  EXPECT_NEAR(m.bubble_ratio, 4.0 / 7.0, 1e-15);
  EXPECT_EQ(std::llround(m.bubble_ratio * 10000), 5714);
}

// ChunkSize 2U, K = 2: chunks 2U, U+U, the 4U sequence's halves: makespan 46,
// 1 − 96/184 = 11/23 = 47.83%.
TEST(SimulatorPaperVectors, ChunkFlowChunkSize2UK2) {
  const Job job = tiny_job(1, 4, 1, "", "{kind: chunkflow, chunk_size: 2, k: 2}", "4, 2, 1, 1");
  const SimMetrics m = run_unit(job);
  EXPECT_EQ(m.chunks, 4);
  EXPECT_EQ(units(m.pipeline_time_s), 46);
  EXPECT_NEAR(m.bubble_ratio, 11.0 / 23.0, 1e-15);
  EXPECT_EQ(std::llround(m.bubble_ratio * 10000), 4783);
  EXPECT_EQ(m.recompute_share, 0.0);
}

// K = 1: the first half becomes F* and its R (2U per stage) is recompute: share 8/104.
TEST(SimulatorPaperVectors, ChunkFlowK1CountsTheRecompute) {
  const Job job = tiny_job(1, 4, 1, "", "{kind: chunkflow, chunk_size: 2, k: 1}", "4, 2, 1, 1");
  const SimMetrics m = run_unit(job);
  EXPECT_NEAR(m.recompute_share, 8.0 / 104.0, 1e-15);
}

// A cyclic plan: stage 1 runs F1 first, but stage 0 sends F1 only after B0, which needs
// stage 1's B0, queued behind F1. Reported with both stages and their ops, never a hang.
TEST(SimulatorDeadlock, CyclicPlanNamesStageAndOp) {
  const Job job = tiny_job(1, 2, 1, "", "{kind: baseline, micro_batching: per_sequence}", "1, 1");
  Plan plan = plan_of(job);
  ASSERT_EQ(plan.chunks.size(), 2u);
  auto op = [](int id, Pass pass, int chunk) { return Op{id, pass, chunk, 0}; };
  plan.ranks[0].stages[0].ops = {op(0, Pass::kForward, 0), op(1, Pass::kBackward, 0),
                                 op(2, Pass::kForward, 1), op(3, Pass::kBackward, 1)};
  plan.ranks[0].stages[1].ops = {op(4, Pass::kForward, 1), op(5, Pass::kForward, 0),
                                 op(6, Pass::kBackward, 0), op(7, Pass::kBackward, 1)};
  const UnitCostModel unit;
  StatusOr<SimResult> result = simulate(job, plan, unit);
  ASSERT_FALSE(result.ok());
  const std::string& message = result.status().message();
  EXPECT_NE(message.find("deadlock"), std::string::npos) << message;
  EXPECT_NE(message.find("dp rank 0 stage 0 waits at op 1 (B0) for op 6 (B0) on dp rank 0 "
                         "stage 1 (not run)"),
            std::string::npos)
      << message;
  EXPECT_NE(message.find("dp rank 0 stage 1 waits at op 4 (F1) for op 2 (F1) on dp rank 0 "
                         "stage 0 (not run)"),
            std::string::npos)
      << message;
}

TEST(SimulatorInput, PlanForAnotherPipelineIsRejected) {
  const Job job = tiny_job(1, 2, 1, "", "{kind: chunkflow, chunk_size: 2, k: 1}", "3, 1");
  const Job other = tiny_job(1, 4, 1, "", "{kind: chunkflow, chunk_size: 2, k: 1}", "3, 1");
  const UnitCostModel unit;
  StatusOr<SimResult> result = simulate(job, plan_of(other), unit);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), StatusCode::kInvalidInput);
  EXPECT_NE(result.status().message().find("pp 4 vs parallel.pp 2"), std::string::npos);
}

TEST(SimulatorInput, MissingProducerIsRejected) {
  const Job job = tiny_job(1, 2, 1, "", "{kind: baseline, micro_batching: per_sequence}", "1, 1");
  Plan plan = plan_of(job);
  // Drop stage 0's forward of chunk 1: stage 1's F1 has nothing to receive.
  auto& ops = plan.ranks[0].stages[0].ops;
  std::erase_if(ops, [](const Op& op) { return op.chunk == 1 && op.pass == Pass::kForward; });
  const UnitCostModel unit;
  StatusOr<SimResult> result = simulate(job, plan, unit);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), StatusCode::kInvalidInput);
  EXPECT_NE(result.status().message().find("needs the forward of chunk 1 on stage 0"),
            std::string::npos)
      << result.status().message();
}

// simulate_job builds the plan and the cost model itself; same numbers as by hand.
TEST(SimulateJob, MatchesTheManualPath) {
  const Job job = tiny_job(1, 4, 1, "", "{kind: chunkflow, chunk_size: 2, k: 2}", "4, 2, 1, 1");
  StatusOr<SimResult> result = simulate_job(job, SimOptions{true, true});
  ASSERT_TRUE(result.ok()) << result.status().message();
  EXPECT_EQ(units(result->metrics.pipeline_time_s), 46);
  ASSERT_TRUE(result->trace.has_value());
  // Every op, and each of the 4 chunks crossing 3 boundaries forward and 3 back: a send on
  // one side and a recv on the other per crossing.
  std::map<OpKind, int> count;
  for (const TraceOp& op : result->trace->ops) ++count[op.kind];
  EXPECT_EQ(count[OpKind::kCompute], result->metrics.ops);
  EXPECT_EQ(count[OpKind::kSend], 4 * 6);
  EXPECT_EQ(count[OpKind::kRecv], 4 * 6);
  EXPECT_EQ(static_cast<int>(result->trace->ops.size()), result->metrics.ops + 48);
  EXPECT_FALSE(result->trace->memory.empty());
}

}  // namespace
}  // namespace cf

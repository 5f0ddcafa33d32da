// The paper's pipeline test vectors (DESIGN §4.3), replayed with unit costs (F = tokens,
// B = 2F, no communication) on pp = 4: the exact makespans and bubble ratios.
// Bubble ratio = 1 − Σ busy / (pp × makespan).
#include <gtest/gtest.h>

#include "sim/plan/plan_builder.h"
#include "sim/plan/plan_checker.h"
#include "tests/sim/plan/schedule_replay.h"

namespace cf {
namespace {

PlanInputs paper_inputs(std::vector<int64_t> lengths) {
  PlanInputs in;
  in.sequence_lengths = std::move(lengths);
  in.pp = 4;
  in.layers = 8;
  return in;
}

test::UnitReplay replay(const PlanInputs& in) {
  StatusOr<Plan> plan = build_plan(in);
  CF_CHECK(plan.ok()) << plan.status().message();
  Status checked = check_plan(*plan);
  CF_CHECK(checked.ok()) << checked.message();
  return test::replay_unit(*plan);
}

TEST(PaperVectors, FourEqualMicroBatches) {
  // Four micro-batches of 2U: (m + p − 1)(F + B) = 7 · 6 = 42; busy 4 · 24 = 96; 3/7.
  PlanInputs in = paper_inputs({2, 2, 2, 2});
  in.strategy.kind = StrategyKind::kBaseline;
  in.strategy.micro_batching = MicroBatching::kPerSequence;
  in.max_length = 4;
  const test::UnitReplay r = replay(in);
  ASSERT_FALSE(r.deadlocked);
  EXPECT_EQ(r.makespan, 42);
  EXPECT_EQ(r.busy, 96);
  EXPECT_NEAR(r.bubble_ratio(4), 3.0 / 7.0, 1e-12);  // 42.86%
}

TEST(PaperVectors, BaselinePerSequence4U2UUU) {
  // One sequence per micro-batch, (4U, 2U, U, U): makespan 56, busy 96, 1 − 96/224 = 4/7.
  PlanInputs in = paper_inputs({4, 2, 1, 1});
  in.strategy.kind = StrategyKind::kBaseline;
  in.strategy.micro_batching = MicroBatching::kPerSequence;
  in.max_length = 4;
  const test::UnitReplay r = replay(in);
  ASSERT_FALSE(r.deadlocked);
  EXPECT_EQ(r.makespan, 56);
  EXPECT_EQ(r.busy, 96);
  EXPECT_NEAR(r.bubble_ratio(4), 4.0 / 7.0, 1e-12);  // 57.14%
}

TEST(PaperVectors, ChunkFlowChunkSize2UK2) {
  // Chunks: the 2U sequence, U+U, the 4U sequence's halves; state-aware 1F1B with the
  // group's backwards descending: makespan 46, busy 96, 1 − 96/184 = 11/23.
  PlanInputs in = paper_inputs({4, 2, 1, 1});
  in.strategy.kind = StrategyKind::kChunkFlow;
  in.strategy.chunk_size = 2;
  in.strategy.k = 2;
  const test::UnitReplay r = replay(in);
  ASSERT_FALSE(r.deadlocked);
  EXPECT_EQ(r.makespan, 46);
  EXPECT_EQ(r.busy, 96);
  EXPECT_NEAR(r.bubble_ratio(4), 11.0 / 23.0, 1e-12);  // 47.83%
}

TEST(PaperVectors, ChunkFlowWithKOneAddsTheRecompute) {
  // K = 1 makes the first half F* and adds R (2U) on every stage: busy 96 + 4·2 = 104.
  PlanInputs in = paper_inputs({4, 2, 1, 1});
  in.strategy.chunk_size = 2;
  in.strategy.k = 1;
  const test::UnitReplay r = replay(in);
  ASSERT_FALSE(r.deadlocked);
  EXPECT_EQ(r.busy, 104);
  EXPECT_GT(r.makespan, 46);
}

}  // namespace
}  // namespace cf

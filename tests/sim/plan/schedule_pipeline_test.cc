// Pipeline schedules (DESIGN §4.3): exact op streams for small cases, Megatron's warm-up
// counts, every op exactly once, Megatron's interleaved table and constraint.
#include <gtest/gtest.h>

#include <random>

#include "sim/plan/pipeline_schedule.h"
#include "sim/plan/plan_builder.h"
#include "sim/plan/plan_checker.h"
#include "tests/sim/plan/schedule_replay.h"

namespace cf {
namespace {

using test::stream_string;

using test::chunkflow;

Plan build(const PlanInputs& in) {
  StatusOr<Plan> plan = build_plan(in);
  CF_CHECK(plan.ok()) << plan.status().message();
  Status checked = check_plan(*plan);
  CF_CHECK(checked.ok()) << checked.message();
  return std::move(plan).value();
}

TEST(OneFOneB, ThreeChunksTwoStages) {
  const Plan plan = build(chunkflow({3, 3, 3}, 3, 1, 2));
  EXPECT_EQ(stream_string(plan, 0, 0), "F0 F1 B0 F2 B1 B2");
  EXPECT_EQ(stream_string(plan, 0, 1), "F0 B0 F1 B1 F2 B2");
}

TEST(OneFOneB, StateAwareRunsTheGroupsLastPieceBeforeItsBackward) {
  // c0 standalone; c1, c2 one group with K = 1: c1 is F*, recomputed before its B.
  // Stage 1 reaches B2 after F*1 and runs F2 first (the state-aware rule).
  const Plan plan = build(chunkflow({2, 4}, 2, 1, 2));
  EXPECT_EQ(stream_string(plan, 0, 0), "F0 F*1 B0 F2 B2 R1 B1");
  EXPECT_EQ(stream_string(plan, 0, 1), "F0 B0 F*1 F2 B2 R1 B1");
}

TEST(OneFOneB, GroupWithinKKeepsActivations) {
  const Plan plan = build(chunkflow({2, 4}, 2, 2, 3));
  EXPECT_EQ(stream_string(plan, 0, 0), "F0 F1 F2 B0 B2 B1");
  EXPECT_EQ(stream_string(plan, 0, 1), "F0 F1 B0 F2 B2 B1");
  EXPECT_EQ(stream_string(plan, 0, 2), "F0 B0 F1 F2 B2 B1");
}

TEST(GPipe, AllForwardsThenGroupAwareBackwards) {
  const Plan plan = build(chunkflow({2, 4}, 2, 1, 2, ScheduleKind::kGPipe));
  for (int s = 0; s < 2; ++s) EXPECT_EQ(stream_string(plan, 0, s), "F0 F*1 F2 B0 B2 R1 B1");
}

TEST(Interleaved, MegatronOrderTwoStagesTwoModelChunks) {
  // pp = 2, v = 2, m = 4, G = 2: warm-up 4 on stage 0, 2 on stage 1, then 1F1B.
  const Plan plan = build(chunkflow({3, 3, 3, 3}, 3, 1, 2, ScheduleKind::kInterleaved, 2));
  EXPECT_EQ(stream_string(plan, 0, 0),
            "F0.0 F1.0 F0.1 F1.1 F2.0 B0.1 F3.0 B1.1 F2.1 B0.0 F3.1 B1.0 B2.1 B3.1 B2.0 B3.0");
  EXPECT_EQ(stream_string(plan, 0, 1),
            "F0.0 F1.0 F0.1 B0.1 F1.1 B1.1 F2.0 B0.0 F3.0 B1.0 F2.1 B2.1 F3.1 B3.1 B2.0 B3.0");
}

TEST(Interleaved, ScheduleTableMatchesMegatronExample) {
  // PP=2, G=3, M=5, VP=2 → mb 0 1 2 0 1 2 3 4 3 4, chunks 0 0 0 1 1 1 0 0 1 1.
  const std::vector<VirtualMicrobatch> table = interleaved_table(5, 2, 3);
  const std::vector<int> mbs = {0, 1, 2, 0, 1, 2, 3, 4, 3, 4};
  const std::vector<int> chunks = {0, 0, 0, 1, 1, 1, 0, 0, 1, 1};
  ASSERT_EQ(table.size(), 10u);
  for (size_t i = 0; i < table.size(); ++i) {
    EXPECT_EQ(table[i], (VirtualMicrobatch{mbs[i], chunks[i]})) << i;
  }
}

TEST(Interleaved, MegatronConstraintIsAnInputError) {
  // m = 5 chunks on pp = 4: remainder 1 < pp (dependency bubbles); m = 3 < pp.
  for (int m : {5, 3}) {
    std::vector<int64_t> lengths(static_cast<size_t>(m), 8);
    StatusOr<Plan> plan = build_plan(chunkflow(lengths, 8, 1, 4, ScheduleKind::kInterleaved, 2));
    ASSERT_FALSE(plan.ok()) << m;
    EXPECT_EQ(plan.status().code(), StatusCode::kInvalidInput);
    EXPECT_NE(plan.status().message().find("interleaved 1F1B"), std::string::npos)
        << plan.status().message();
  }
  EXPECT_TRUE(
      build_plan(chunkflow(std::vector<int64_t>(8, 8), 8, 1, 4, ScheduleKind::kInterleaved, 2))
          .ok());
}

TEST(Interleaved, LayersMustSplitOverModelChunks) {
  PlanInputs in = chunkflow(std::vector<int64_t>(4, 8), 8, 1, 2, ScheduleKind::kInterleaved, 2);
  in.layers = 6;  // 6 layers over pp·vpp = 4 model chunks
  StatusOr<Plan> plan = build_plan(in);
  ASSERT_FALSE(plan.ok());
  EXPECT_NE(plan.status().message().find("model.layers"), std::string::npos);
}

// Leading forwards of a stage's stream (ops before its first B or R).
int leading_forwards(const Plan& plan, int stage) {
  int count = 0;
  for (const Op& op : plan.ranks[0].stages[static_cast<size_t>(stage)].ops) {
    if (op.pass != Pass::kForward && op.pass != Pass::kForwardKeepKV) break;
    ++count;
  }
  return count;
}

TEST(WarmUp, MatchesMegatronFormulas) {
  // Standalone chunks only, so the state-aware rule never adds forwards: the stream opens with
  // the warm-up and the first steady-state forward [MLM schedules.py:929-986].
  for (int pp : {1, 2, 3, 4, 7}) {
    for (int m : {1, 2, 5, 8, 14}) {
      const Plan plan = build(chunkflow(std::vector<int64_t>(static_cast<size_t>(m), 5), 5, 1, pp));
      for (int s = 0; s < pp; ++s) {
        const int megatron = std::min(pp - s - 1, m);
        EXPECT_EQ(warmup_forwards(ScheduleKind::kOneFOneB, pp, 1, s, m), megatron);
        EXPECT_EQ(leading_forwards(plan, s), std::min(megatron + 1, m)) << pp << " " << m;
      }
    }
  }
  for (int pp : {2, 3, 4}) {
    for (int vpp : {2, 3}) {
      for (int m : {pp, 2 * pp, 3 * pp}) {
        const Plan plan = build(chunkflow(std::vector<int64_t>(static_cast<size_t>(m), 5), 5, 1, pp,
                                          ScheduleKind::kInterleaved, vpp));
        for (int s = 0; s < pp; ++s) {
          const int megatron = std::min(2 * (pp - s - 1) + (vpp - 1) * pp, m * vpp);
          EXPECT_EQ(warmup_forwards(ScheduleKind::kInterleaved, pp, vpp, s, m), megatron);
          EXPECT_EQ(leading_forwards(plan, s), std::min(megatron + 1, m * vpp))
              << pp << " " << vpp << " " << m;
        }
      }
    }
  }
}

TEST(Streams, EveryOpExactlyOnceOnEveryStage) {
  // Groups of 5, 2, 3 and 2 pieces with K = 2, standalone chunks, odd sizes.
  const Plan plan = build(chunkflow({17, 3, 5, 4, 1, 9, 2, 7}, 4, 2, 3));
  for (int s = 0; s < 3; ++s) {
    std::vector<int> f(plan.chunks.size()), r(plan.chunks.size()), b(plan.chunks.size());
    for (const Op& op : plan.ranks[0].stages[static_cast<size_t>(s)].ops) {
      auto& count = op.pass == Pass::kBackward ? b : op.pass == Pass::kRecompute ? r : f;
      ++count[static_cast<size_t>(op.chunk)];
    }
    int star = 0;
    for (const Chunk& chunk : plan.chunks) {
      const bool is_star =
          chunk.kind == ChunkKind::kDependent && chunk.index < chunk.group_size - plan.k;
      star += is_star;
      EXPECT_EQ(f[static_cast<size_t>(chunk.id)], 1);
      EXPECT_EQ(b[static_cast<size_t>(chunk.id)], 1);
      EXPECT_EQ(r[static_cast<size_t>(chunk.id)], is_star ? 1 : 0);
    }
    // 17 = 4+4+4+4+1 (N = 5: three F*), 9 = 4+4+1 (N = 3: one F*), 5 and 7 (N = 2 ≤ K).
    EXPECT_EQ(star, 4);
  }
}

TEST(Streams, OpIdsFollowRankStagePosition) {
  PlanInputs in = chunkflow({17, 3, 5, 4, 1, 9, 2, 7}, 4, 2, 3);
  in.dp = 2;
  const Plan plan = build(in);
  int expected = 0;
  for (const RankPlan& rank : plan.ranks) {
    for (const StagePlan& stage : rank.stages) {
      for (const Op& op : stage.ops) EXPECT_EQ(op.id, expected++);
    }
  }
  EXPECT_EQ(expected, plan.op_count());
}

}  // namespace
}  // namespace cf

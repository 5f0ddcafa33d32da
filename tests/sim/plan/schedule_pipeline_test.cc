// Pipeline schedules (DESIGN §4.3): exact op streams for small cases, Megatron's warm-up
// counts, every op exactly once, Megatron's interleaved table, and interleaved 1F1B for chunk
// counts Megatron refuses (a last group smaller than pp, m < pp).
#include <gtest/gtest.h>

#include <map>
#include <random>
#include <string>

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

// Megatron refuses these m (schedules.py:1160-1181): m = 5 on pp = 4 leaves a last group of 1
// (remainder 1 < pp), m = 3 < pp. Both now build, pass the checker and replay to the end.
TEST(Interleaved, ChunkCountsMegatronRefusesRun) {
  for (int m : {5, 3}) {
    StatusOr<Plan> plan = build_plan(chunkflow(std::vector<int64_t>(static_cast<size_t>(m), 8), 8,
                                               1, 4, ScheduleKind::kInterleaved, 2));
    ASSERT_TRUE(plan.ok()) << m << ": " << plan.status().message();
    const Status checked = check_plan(*plan);
    EXPECT_TRUE(checked.ok()) << m << ": " << checked.message();
    EXPECT_FALSE(test::replay_unit(*plan).deadlocked) << m;
    EXPECT_EQ(plan->op_count(), 4 * 2 * 2 * m);  // pp · vpp · (F + B) · m
  }
}

TEST(Interleaved, LastGroupSmallerThanPpFollowsTheTable) {
  // pp = 2, v = 2, m = 3: groups {0, 1} and {2}; Megatron's table 0.0 1.0 0.1 1.1 2.0 2.1.
  // Warm-up 4 on stage 0, 2 on stage 1; nothing waits in a cycle, so the streams are the
  // table's 1F1B as laid out.
  const Plan plan = build(chunkflow({3, 3, 3}, 3, 1, 2, ScheduleKind::kInterleaved, 2));
  EXPECT_EQ(stream_string(plan, 0, 0),
            "F0.0 F1.0 F0.1 F1.1 F2.0 B0.1 F2.1 B1.1 B0.0 B1.0 B2.1 B2.0");
  EXPECT_EQ(stream_string(plan, 0, 1),
            "F0.0 F1.0 F0.1 B0.1 F1.1 B1.1 F2.0 B0.0 F2.1 B1.0 B2.1 B2.0");
}

TEST(Interleaved, ForwardMovesAheadWhereStagesWouldWaitOnEachOther) {
  // pp = 4, v = 3, m = 5: groups {0..3} and {4}. As laid out, stage 0's F4.2 waits on stage
  // 3's F4.1, which stage 3 would run after B0.1, which waits on stage 0's B0.2, which comes
  // after F4.2 in stage 0's stream: a cycle. The zero-time replay moves F4.1 on stage 3 ahead
  // of B0.1 (the op stage 3 waits at); every other stream keeps Megatron's order.
  const Plan plan =
      build(chunkflow(std::vector<int64_t>(5, 8), 8, 1, 4, ScheduleKind::kInterleaved, 3));
  EXPECT_EQ(stream_string(plan, 0, 0),
            "F0.0 F1.0 F2.0 F3.0 F0.1 F1.1 F2.1 F3.1 F0.2 F1.2 F2.2 F3.2 F4.0 F4.1 F4.2 "
            "B0.2 B1.2 B2.2 B3.2 B0.1 B1.1 B2.1 B3.1 B0.0 B1.0 B2.0 B3.0 B4.2 B4.1 B4.0");
  EXPECT_EQ(stream_string(plan, 0, 1),
            "F0.0 F1.0 F2.0 F3.0 F0.1 F1.1 F2.1 F3.1 F0.2 F1.2 F2.2 F3.2 F4.0 B0.2 F4.1 B1.2 "
            "F4.2 B2.2 B3.2 B0.1 B1.1 B2.1 B3.1 B0.0 B1.0 B2.0 B3.0 B4.2 B4.1 B4.0");
  EXPECT_EQ(stream_string(plan, 0, 2),
            "F0.0 F1.0 F2.0 F3.0 F0.1 F1.1 F2.1 F3.1 F0.2 F1.2 F2.2 B0.2 F3.2 B1.2 F4.0 B2.2 "
            "F4.1 B3.2 F4.2 B0.1 B1.1 B2.1 B3.1 B0.0 B1.0 B2.0 B3.0 B4.2 B4.1 B4.0");
  EXPECT_EQ(stream_string(plan, 0, 3),
            "F0.0 F1.0 F2.0 F3.0 F0.1 F1.1 F2.1 F3.1 F0.2 B0.2 F1.2 B1.2 F2.2 B2.2 F3.2 B3.2 "
            "F4.0 F4.1 B0.1 B1.1 F4.2 B2.1 B3.1 B0.0 B1.0 B2.0 B3.0 B4.2 B4.1 B4.0");
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

// Interleaved 1F1B over random chunk counts m (every remainder mod pp, and m < pp), pp 2..6,
// vpp 2..4, packed and split sequences with K 1..3, one or two DP ranks: the plan checker
// accepts every plan (ops once, order, group order, K, no cycle), the unit replay runs every
// stream to its end, each stage holds vpp·(F + B) ops per chunk plus one R per F*, and with
// equal standalone chunks and pp | m the streams keep Megatron's shape (warm-up, then one
// forward and one backward in turn, then the drain).
TEST(InterleavedProperty, EveryChunkCountGivesAValidDeadlockFreePlan) {
  std::mt19937_64 rng(20250);
  auto pick = [&rng](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  std::map<std::string, int> seen;  // remainder classes covered
  for (int trial = 0; trial < 1500; ++trial) {
    const int pp = pick(2, 6), vpp = pick(2, 4), dp = pick(1, 2);
    const bool uniform = pick(0, 3) == 0;
    PlanInputs in;
    const int sequences = pick(1, 5 * pp);
    for (int i = 0; i < sequences; ++i) in.sequence_lengths.push_back(uniform ? 8 : pick(1, 40));
    in = test::chunkflow(in.sequence_lengths, 8, pick(1, 3), pp, ScheduleKind::kInterleaved, vpp,
                         dp);
    StatusOr<Plan> plan = build_plan(in);
    ASSERT_TRUE(plan.ok()) << plan.status().message();
    const Status checked = check_plan(*plan);
    ASSERT_TRUE(checked.ok()) << "trial " << trial << ": " << checked.message();
    for (const RankPlan& rank : plan->ranks) {
      const int m = static_cast<int>(rank.chunks.size());
      seen[m < pp ? "m<pp" : "rem" + std::to_string(m % pp)]++;
      ASSERT_FALSE(test::replay_unit(*plan, rank.dp_rank).deadlocked) << "trial " << trial;
      int stars = 0;
      for (int id : rank.chunks) {
        const Chunk& c = plan->chunks[static_cast<size_t>(id)];
        stars += c.kind == ChunkKind::kDependent && c.index < c.group_size - plan->k;
      }
      for (const StagePlan& stage : rank.stages) {
        EXPECT_EQ(static_cast<int>(stage.ops.size()), vpp * (2 * m + stars)) << "trial " << trial;
      }
      if (!uniform || m % pp != 0 || m == 0) continue;
      for (int s = 0; s < pp; ++s) {
        // Megatron's shape: W forwards, then F B pairs while forwards last, then W backwards.
        const int warmup = warmup_forwards(ScheduleKind::kInterleaved, pp, vpp, s, m);
        std::string got;
        for (const Op& op : rank.stages[static_cast<size_t>(s)].ops) got += pass_name(op.pass)[0];
        std::string shape;
        for (int i = 0; i < warmup; ++i) shape += 'F';
        for (int i = warmup; i < m * vpp; ++i) shape += "FB";
        shape += std::string(static_cast<size_t>(warmup), 'B');
        EXPECT_EQ(got, shape) << "trial " << trial << " pp " << pp << " vpp " << vpp << " m " << m
                              << " stage " << s;
      }
    }
  }
  for (const char* bucket : {"m<pp", "rem0", "rem1", "rem2", "rem3"}) {
    EXPECT_GT(seen[bucket], 20) << bucket;
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

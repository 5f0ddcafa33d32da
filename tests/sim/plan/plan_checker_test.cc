// check_plan: valid plans pass; each rule, broken once by editing a valid plan by hand,
// is reported by name with the place it breaks.
#include "sim/plan/plan_checker.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>

#include "sim/plan/plan_builder.h"
#include "tests/sim/plan/schedule_replay.h"

namespace cf {
namespace {

using ::testing::HasSubstr;

// Lengths {10, 3, 2, 7, 1}, ChunkSize 4, K = 1, pp = 2: c0 = {s1}, c1 = {s2, s4}; group 0 =
// s0 in c2 (F*), c3 (F*), c4 (F); group 1 = s3 in c5 (F*), c6 (F).
Plan valid_plan(int dp = 1) {
  PlanInputs in;
  in.sequence_lengths = {10, 3, 2, 7, 1};
  in.strategy.chunk_size = 4;
  in.strategy.k = 1;
  in.pp = 2;
  in.dp = dp;
  in.layers = 4;
  StatusOr<Plan> plan = build_plan(in);
  CF_CHECK(plan.ok()) << plan.status().message();
  return std::move(plan).value();
}

std::vector<Op>& stage_ops(Plan& plan, int stage, int rank = 0) {
  return plan.ranks[static_cast<size_t>(rank)].stages[static_cast<size_t>(stage)].ops;
}

// Position of (pass, chunk) in a stage's stream.
size_t find(const std::vector<Op>& ops, Pass pass, int chunk) {
  for (size_t i = 0; i < ops.size(); ++i) {
    if (ops[i].pass == pass && ops[i].chunk == chunk) return i;
  }
  CF_CHECK(false) << pass_name(pass) << chunk << " not in the stream";
  return 0;
}

std::string error_of(const Plan& plan) {
  const Status status = check_plan(plan);
  EXPECT_FALSE(status.ok());
  if (!status.ok()) {
    EXPECT_EQ(status.code(), StatusCode::kInvalidInput);
  }
  return status.message();
}

TEST(PlanChecker, ValidPlanPassesAndStreamsAreTheExpectedOnes) {
  Plan plan = valid_plan();
  EXPECT_TRUE(check_plan(plan).ok()) << check_plan(plan).message();
  EXPECT_EQ(test::stream_string(plan, 0, 0),
            "F0 F1 B0 F*2 B1 F*3 F4 F*5 B4 R3 B3 R2 B2 F6 B6 R5 B5");
  EXPECT_EQ(test::stream_string(plan, 0, 1),
            "F0 B0 F1 B1 F*2 F*3 F4 B4 R3 B3 R2 B2 F*5 F6 B6 R5 B5");
}

TEST(PlanChecker, RankWithoutChunksIsValidWithEmptyStreams) {
  PlanInputs in;
  in.sequence_lengths = {3, 5};
  in.strategy.chunk_size = 8;
  in.pp = 3;
  in.dp = 2;
  in.layers = 3;
  StatusOr<Plan> plan = build_plan(in);
  ASSERT_TRUE(plan.ok());
  ASSERT_EQ(plan->chunks.size(), 1u);  // 3 + 5 packed into one chunk
  EXPECT_TRUE(plan->ranks[1].chunks.empty());
  for (const StagePlan& stage : plan->ranks[1].stages) EXPECT_TRUE(stage.ops.empty());
  EXPECT_TRUE(check_plan(*plan).ok()) << check_plan(*plan).message();
}

TEST(PlanChecker, Shape) {
  Plan plan = valid_plan();
  plan.ranks[0].stages.pop_back();
  EXPECT_THAT(error_of(plan), HasSubstr("plan rule shape: dp rank 0 has dp_rank 0 and 1 stages"));
}

TEST(PlanChecker, ChunkTokens) {
  Plan plan = valid_plan();
  plan.chunks[1].tokens += 1;
  EXPECT_THAT(error_of(plan), HasSubstr("plan rule chunk-tokens: chunk 1 records 4 tokens"));
}

TEST(PlanChecker, ChunkSize) {
  Plan plan = valid_plan();
  plan.chunk_size = 3;
  EXPECT_THAT(error_of(plan), HasSubstr("plan rule chunk-size: chunk 2 holds 4 tokens"));
}

TEST(PlanChecker, CoverageGapAndOverlap) {
  Plan gap = valid_plan();
  gap.chunks[4].segments[0].length = 1;  // s0 tokens [8, 10) → [8, 9)
  gap.chunks[4].tokens = 1;
  EXPECT_THAT(error_of(gap), HasSubstr("plan rule coverage: sequence 0 token 9 is in no chunk"));
  Plan overlap = valid_plan();
  overlap.chunks[3].segments[0].offset = 3;  // [3, 7) overlaps [0, 4)
  EXPECT_THAT(error_of(overlap),
              HasSubstr("plan rule coverage: sequence 0 token 3 is in two chunks"));
}

TEST(PlanChecker, GroupPiecesInOrder) {
  Plan plan = valid_plan();
  std::swap(plan.chunks[2].segments[0].offset, plan.chunks[3].segments[0].offset);
  EXPECT_THAT(error_of(plan), HasSubstr("plan rule group-pieces: chunk 2 is not piece 0"));
}

TEST(PlanChecker, DpAssignment) {
  Plan plan = valid_plan();
  std::erase(plan.ranks[0].chunks, 1);
  EXPECT_THAT(error_of(plan), HasSubstr("plan rule dp-assignment: chunk 1 is fed to 0 ranks"));
}

TEST(PlanChecker, GroupOnOneRank) {
  Plan plan = valid_plan(2);
  ASSERT_TRUE(check_plan(plan).ok()) << check_plan(plan).message();
  // Move piece 1 of group 0 (chunk 3) to the other rank's list.
  const int from = plan.chunks[3].dp_rank, to = 1 - from;
  plan.chunks[3].dp_rank = to;
  std::erase(plan.ranks[static_cast<size_t>(from)].chunks, 3);
  std::vector<int>& list = plan.ranks[static_cast<size_t>(to)].chunks;
  list.insert(std::upper_bound(list.begin(), list.end(), 3), 3);
  EXPECT_THAT(error_of(plan), HasSubstr("plan rule group-one-rank: group 0 spans dp ranks"));
}

TEST(PlanChecker, OpIdsUnique) {
  Plan plan = valid_plan();
  stage_ops(plan, 1)[3].id = stage_ops(plan, 0)[5].id;
  EXPECT_THAT(error_of(plan),
              HasSubstr("plan rule op-ids-unique: dp rank 0 stage 1 op 5 (B chunk 1"));
}

TEST(PlanChecker, OpFields) {
  Plan plan = valid_plan();
  stage_ops(plan, 1)[0].model_chunk = 1;  // vpp = 1
  EXPECT_THAT(error_of(plan),
              HasSubstr("plan rule op-fields: dp rank 0 stage 1 op 17 (F chunk 0 model chunk 1)"));
}

TEST(PlanChecker, PassKind) {
  Plan plan = valid_plan();
  std::vector<Op>& ops = stage_ops(plan, 0);
  ops[find(ops, Pass::kForwardKeepKV, 2)].pass = Pass::kForward;
  EXPECT_THAT(error_of(plan), HasSubstr("plan rule pass-kind: dp rank 0 stage 0 op 3 (F chunk 2 "
                                        "model chunk 0): expected F*"));
}

TEST(PlanChecker, OpsOnceDuplicateAndMissing) {
  Plan twice = valid_plan();
  Op copy = stage_ops(twice, 1)[1];  // B0
  copy.id = 1000;
  stage_ops(twice, 1).push_back(copy);
  EXPECT_THAT(error_of(twice),
              HasSubstr("plan rule ops-once: dp rank 0 stage 1 op 1000 (B chunk 0"));
  Plan missing = valid_plan();
  std::vector<Op>& ops = stage_ops(missing, 0);
  ops.erase(ops.begin() + static_cast<std::ptrdiff_t>(find(ops, Pass::kBackward, 0)));
  EXPECT_THAT(
      error_of(missing),
      HasSubstr("plan rule ops-once: dp rank 0 stage 0 model chunk 0: chunk 0 lacks its B"));
}

TEST(PlanChecker, OrderBackwardBeforeForwardAndRecomputeNotAdjacent) {
  Plan early = valid_plan();
  std::swap(stage_ops(early, 1)[0], stage_ops(early, 1)[1]);  // B0 F0
  EXPECT_THAT(error_of(early), HasSubstr("plan rule order: dp rank 0 stage 1 op 18 (B chunk 0 "
                                         "model chunk 0) before the chunk's forward"));
  Plan apart = valid_plan();
  std::vector<Op>& ops = apart.ranks[0].stages[0].ops;
  const Op f6 = ops[find(ops, Pass::kForward, 6)];
  ops.erase(ops.begin() + static_cast<std::ptrdiff_t>(find(ops, Pass::kForward, 6)));
  ops.insert(ops.begin() + static_cast<std::ptrdiff_t>(find(ops, Pass::kBackward, 2)), f6);
  // R2 B2 F6 → R2 F6 B2
  EXPECT_THAT(error_of(apart), HasSubstr("plan rule order: dp rank 0 stage 0 op 12 (B chunk 2 "
                                         "model chunk 0) not immediately after its R"));
}

TEST(PlanChecker, GroupOrder) {
  Plan plan = valid_plan();
  std::vector<Op>& ops = stage_ops(plan, 0);
  std::swap(ops[find(ops, Pass::kForwardKeepKV, 2)], ops[find(ops, Pass::kForwardKeepKV, 3)]);
  EXPECT_THAT(error_of(plan), HasSubstr("plan rule group-order: dp rank 0 stage 0 op 3 (F* chunk 2 "
                                        "model chunk 0): forward of piece 0 after piece 1"));
}

TEST(PlanChecker, KLimit) {
  Plan plan = valid_plan();
  std::vector<Op>& ops = stage_ops(plan, 1);
  // F*2 F*3 F4 B4 R3 B3 → F*2 F*3 F4 R3 B4 B3: R3 holds while F4 still does.
  const Op r3 = ops[find(ops, Pass::kRecompute, 3)];
  ops.erase(ops.begin() + static_cast<std::ptrdiff_t>(find(ops, Pass::kRecompute, 3)));
  ops.insert(ops.begin() + static_cast<std::ptrdiff_t>(find(ops, Pass::kBackward, 4)), r3);
  EXPECT_THAT(error_of(plan),
              HasSubstr("plan rule k-limit: dp rank 0 stage 1 op 25 (R chunk 3 "
                        "model chunk 0): 2 pieces of group 0 hold activations, k = 1"));
}

TEST(PlanChecker, DeadlockNamesTheWaitingStageAndOp) {
  PlanInputs in;
  in.sequence_lengths = {3, 3, 3};
  in.strategy.chunk_size = 3;
  in.pp = 2;
  in.layers = 2;
  StatusOr<Plan> built = build_plan(in);
  ASSERT_TRUE(built.ok());
  Plan plan = std::move(built).value();
  // Stage 0 takes the last stage's stream F0 B0 F1 B1 F2 B2 and vice versa: stage 0's B0
  // waits on stage 1's B0, which waits behind F1, which needs stage 0's F1.
  std::swap(plan.ranks[0].stages[0].ops, plan.ranks[0].stages[1].ops);
  EXPECT_THAT(error_of(plan),
              HasSubstr("plan rule deadlock: dp rank 0 stage 0 op 7 (B chunk 0 "
                        "model chunk 0) waits on B of chunk 0 model chunk 0 on stage 1"));
  EXPECT_TRUE(test::replay_unit(plan).deadlocked);
}

}  // namespace
}  // namespace cf

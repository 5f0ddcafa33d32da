// build_plan end to end: DP distribution, input validation, random plans that pass the
// checker and replay without deadlock, determinism of plan_to_json, plan_inputs_from_job.
#include "sim/plan/plan_builder.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <random>

#include "sim/plan/plan_checker.h"
#include "tests/sim/plan/schedule_replay.h"

namespace cf {
namespace {

using ::testing::HasSubstr;

TEST(DpDistribution, LongestProcessingTimeGreedy) {
  // Micro-batches of 5 4 3 3 3 tokens on 2 ranks: 5→r0, 4→r1, 3→r1 (7), 3→r0 (8), 3→r1 (10).
  PlanInputs in;
  in.sequence_lengths = {5, 4, 3, 3, 3};
  in.strategy.kind = StrategyKind::kBaseline;
  in.strategy.micro_batching = MicroBatching::kPerSequence;
  in.max_length = 8;
  in.dp = 2;
  in.layers = 1;
  StatusOr<Plan> plan = build_plan(in);
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  EXPECT_EQ(plan->ranks[0].chunks, (std::vector<int>{0, 3}));
  EXPECT_EQ(plan->ranks[1].chunks, (std::vector<int>{1, 2, 4}));
  EXPECT_EQ(plan->k, 1);
  EXPECT_EQ(plan->chunk_size, 8);
}

TEST(DpDistribution, GroupIsOneUnitWeightedByAttentionPairs) {
  // ChunkSize 4; twelve 1-token sequences fill c0, c1, c2 (4 tokens, 4 pairs each); the
  // 8-token sequence is the group c3, c4 (8 tokens, 10 + 26 = 36 pairs).
  // Tokens only: group 8 → r0, c0 → r1, c1 → r1 (4 < 8), c2 → r0 (8 = 8: lower rank).
  PlanInputs in;
  in.sequence_lengths = {8, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
  in.strategy.chunk_size = 4;
  in.strategy.k = 2;
  in.dp = 2;
  in.layers = 1;
  StatusOr<Plan> plan = build_plan(in);
  ASSERT_TRUE(plan.ok());
  ASSERT_EQ(plan->chunks.size(), 5u);
  EXPECT_EQ(plan->chunks[3].attention_pairs() + plan->chunks[4].attention_pairs(), 36);
  EXPECT_EQ(plan->ranks[0].chunks, (std::vector<int>{2, 3, 4}));
  EXPECT_EQ(plan->ranks[1].chunks, (std::vector<int>{0, 1}));
  // pair_weight 1: group 44, standalone 8 each → the group alone on r0.
  in.pair_weight = 1.0;
  StatusOr<Plan> weighted = build_plan(in);
  ASSERT_TRUE(weighted.ok());
  EXPECT_EQ(weighted->ranks[0].chunks, (std::vector<int>{3, 4}));
  EXPECT_EQ(weighted->ranks[1].chunks, (std::vector<int>{0, 1, 2}));
  EXPECT_TRUE(check_plan(*weighted).ok());
}

TEST(BuildPlan, InvalidInputsNameTheKey) {
  auto error = [](PlanInputs in) {
    StatusOr<Plan> plan = build_plan(in);
    EXPECT_FALSE(plan.ok());
    if (!plan.ok()) {
      EXPECT_EQ(plan.status().code(), StatusCode::kInvalidInput);
    }
    return plan.ok() ? std::string() : plan.status().message();
  };
  PlanInputs base;
  base.sequence_lengths = {5, 9};
  base.strategy.chunk_size = 4;
  base.layers = 4;
  ASSERT_TRUE(build_plan(base).ok());
  PlanInputs in = base;
  in.vpp = 2;
  EXPECT_THAT(error(in), HasSubstr("parallel.vpp"));
  in = base;
  in.strategy.chunk_size = 0;
  EXPECT_THAT(error(in), HasSubstr("strategy.chunk_size"));
  in = base;
  in.strategy.k = 0;
  EXPECT_THAT(error(in), HasSubstr("strategy.k"));
  in = base;
  in.sequence_lengths = {5, 0};
  EXPECT_THAT(error(in), HasSubstr("dataset.lengths[1]"));
  in = base;
  in.pp = 3;
  EXPECT_THAT(error(in), HasSubstr("model.layers"));
  in = base;
  in.strategy.kind = StrategyKind::kBaseline;
  in.max_length = 8;
  EXPECT_THAT(error(in), HasSubstr("sequence 1 has 9 tokens"));
}

// Random inputs over strategies, schedules and parallel sizes.
PlanInputs random_inputs(std::mt19937_64& rng) {
  auto pick = [&rng](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  PlanInputs in;
  const int sequences = pick(1, 40);
  for (int i = 0; i < sequences; ++i) {
    // Mostly short, a few long: 1..64 tokens, 10% up to 700.
    in.sequence_lengths.push_back(pick(0, 9) == 0 ? pick(65, 700) : pick(1, 64));
  }
  in.strategy.kind = pick(0, 3) == 0 ? StrategyKind::kBaseline : StrategyKind::kChunkFlow;
  in.strategy.chunk_size = pick(8, 200);
  in.strategy.k = pick(1, 5);
  in.strategy.packer = pick(0, 1) ? Packer::kBalanced : Packer::kFirstFitDecreasing;
  in.strategy.micro_batching = pick(0, 1) ? MicroBatching::kPack : MicroBatching::kPerSequence;
  in.max_length = 700;
  in.schedule = static_cast<ScheduleKind>(pick(0, 2));
  in.pp = pick(1, 5);
  in.vpp = in.schedule == ScheduleKind::kInterleaved ? pick(1, 3) : 1;
  in.dp = pick(1, 3);
  in.layers = static_cast<int64_t>(in.pp) * in.vpp * pick(1, 3);
  in.pair_weight = pick(0, 1) ? 0.0 : 0.01;
  return in;
}

TEST(BuildPlan, RandomPlansPassTheCheckerAndReplay) {
  int built = 0, interleaved = 0;
  for (uint64_t seed : {5u, 99u, 4242u}) {
    std::mt19937_64 rng(seed);
    for (int trial = 0; trial < 400; ++trial) {
      const PlanInputs in = random_inputs(rng);
      StatusOr<Plan> plan = build_plan(in);
      // Every schedule takes every chunk count: valid inputs always build.
      ASSERT_TRUE(plan.ok()) << "seed " << seed << " trial " << trial << ": "
                             << plan.status().message();
      ++built;
      interleaved += in.schedule == ScheduleKind::kInterleaved;
      const Status checked = check_plan(*plan);
      ASSERT_TRUE(checked.ok()) << "seed " << seed << " trial " << trial << ": "
                                << checked.message();
      for (int r = 0; r < in.dp; ++r) {
        ASSERT_FALSE(test::replay_unit(*plan, r).deadlocked) << seed << " " << trial;
      }
      // Groups never span ranks; every rank's feed ascends.
      for (const Chunk& chunk : plan->chunks) {
        if (chunk.kind == ChunkKind::kDependent && chunk.index > 0) {
          EXPECT_EQ(chunk.dp_rank, plan->chunks[static_cast<size_t>(chunk.id - 1)].dp_rank);
        }
      }
    }
  }
  EXPECT_EQ(built, 1200);
  EXPECT_GT(interleaved, 150);
}

TEST(PlanJson, DeterministicAndComplete) {
  std::mt19937_64 rng(31);
  for (int trial = 0; trial < 50; ++trial) {
    const PlanInputs in = random_inputs(rng);
    StatusOr<Plan> first = build_plan(in);
    StatusOr<Plan> second = build_plan(in);
    ASSERT_EQ(first.ok(), second.ok());
    if (!first.ok()) continue;
    EXPECT_EQ(plan_to_json(*first), plan_to_json(*second));
  }
  PlanInputs in;
  in.sequence_lengths = {4, 2, 1, 1};
  in.strategy.chunk_size = 2;
  in.strategy.k = 1;
  in.pp = 2;
  in.layers = 2;
  StatusOr<Plan> plan = build_plan(in);
  ASSERT_TRUE(plan.ok());
  const nlohmann::json json = nlohmann::json::parse(plan_to_json(*plan));
  EXPECT_EQ(json["strategy"], "chunkflow");
  EXPECT_EQ(json["schedule"], "1f1b");
  EXPECT_EQ(json["pp"], 2);
  EXPECT_EQ(json["vpp"], 1);
  EXPECT_EQ(json["dp"], 1);
  EXPECT_EQ(json["k"], 1);
  EXPECT_EQ(json["chunk_size"], 2);
  EXPECT_EQ(json["sequence_lengths"], nlohmann::json({4, 2, 1, 1}));
  ASSERT_EQ(json["chunks"].size(), 4u);
  EXPECT_EQ(json["chunks"][1],
            nlohmann::json::parse(R"({"id":1,"kind":"standalone","tokens":2,)"
                                  R"("segments":[[2,0,1],[3,0,1]],"group":-1,"index":0})"));
  EXPECT_EQ(json["chunks"][3],
            nlohmann::json::parse(R"({"id":3,"kind":"dependent","tokens":2,)"
                                  R"("segments":[[0,2,2]],"group":0,"index":1})"));
  const nlohmann::json& rank = json["ranks"][0];
  EXPECT_EQ(rank["dp_rank"], 0);
  EXPECT_EQ(rank["chunks"], nlohmann::json({0, 1, 2, 3}));
  ASSERT_EQ(rank["stages"].size(), 2u);
  EXPECT_EQ(rank["stages"][1]["stage"], 1);
  // Stage 1: F0 B0 F1 B1 F*2 F3 B3 R2 B2; ids continue from stage 0's 9 ops.
  EXPECT_EQ(rank["stages"][1]["ops"][4],
            nlohmann::json::parse(R"({"id":13,"op":"F*","chunk":2,"model_chunk":0})"));
  EXPECT_EQ(rank["stages"][1]["ops"][7],
            nlohmann::json::parse(R"({"id":16,"op":"R","chunk":2,"model_chunk":0})"));
  // Keys in the documented order.
  const std::string text = plan_to_json(*plan);
  EXPECT_LT(text.find("\"strategy\""), text.find("\"schedule\""));
  EXPECT_LT(text.find("\"sequence_lengths\""), text.find("\"chunks\""));
  EXPECT_LT(text.find("\"chunks\""), text.find("\"ranks\""));
}

TEST(PlanInputsFromJob, TakesSizesStrategyAndPairWeightFromTheJob) {
  StatusOr<Job> job = parse_job(R"(model: tiny
cluster: {gpu: h100-sxm-80g, gpus: 4, gpus_per_node: 8}
dataset: {lengths: [9, 2, 5], max_length: 16}
parallel: {tp: 1, pp: 2, dp: 2}
strategy: {kind: chunkflow, chunk_size: 4, k: 2, packer: ffd}
)",
                                "job.yaml");
  ASSERT_TRUE(job.ok()) << job.status().message();
  const PlanInputs in = plan_inputs_from_job(*job, 0);
  EXPECT_EQ(in.sequence_lengths, (std::vector<int64_t>{9, 2, 5}));
  EXPECT_EQ(in.pp, 2);
  EXPECT_EQ(in.dp, 2);
  EXPECT_EQ(in.layers, 4);
  EXPECT_EQ(in.max_length, 16);
  EXPECT_EQ(in.strategy.chunk_size, 4);
  EXPECT_EQ(in.strategy.packer, Packer::kFirstFitDecreasing);
  EXPECT_DOUBLE_EQ(in.pair_weight, job->model.attention_flops_per_pair_per_layer() /
                                       job->model.linear_flops_per_token_per_layer());
  EXPECT_GT(in.pair_weight, 0);
  StatusOr<Plan> plan = build_plan(*job, 0);
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  EXPECT_TRUE(check_plan(*plan).ok());
  EXPECT_EQ(plan->chunks.size(), 1u + 3u + 2u);  // {2}; 9 = 4+4+1; 5 = 4+1
}

}  // namespace
}  // namespace cf

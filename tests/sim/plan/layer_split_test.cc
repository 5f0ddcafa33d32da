// Uneven pipeline splits in the plan: the layer counts and places of a per-stage split, its
// validity rules, the job keys that give it (parallel.layers_per_stage, and Megatron-LM's
// first_stage_layers / last_stage_layers resolved to the same vector), the resolved job that
// prints it, and the plan, its index and its checker carrying it.
#include "sim/plan/layer_split.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "sim/plan/plan_builder.h"
#include "sim/plan/plan_checker.h"
#include "sim/plan/plan_index.h"

namespace cf {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

TEST(LayerSplit, EvenSplitPlacesModelChunksInVirtualStageOrder) {
  const LayerSplit split{3, 2, 12};  // two layers per model chunk
  EXPECT_TRUE(split.even());
  EXPECT_EQ(split.model_chunk_layers(1), 2);
  EXPECT_EQ(split.stage_layers(1), 4);
  EXPECT_EQ(split.first_layer(1, 0), 2);   // virtual stage 1
  EXPECT_EQ(split.first_layer(1, 1), 8);   // virtual stage 4
  EXPECT_EQ(split.first_layer(2, 1), 10);  // virtual stage 5, the last
}

TEST(LayerSplit, PerStageCountsPlaceConsecutiveRanges) {
  const LayerSplit split{3, 1, 6, {2, 1, 3}};
  EXPECT_FALSE(split.even());
  const int64_t first[] = {0, 2, 3}, end[] = {2, 3, 6};
  for (int s = 0; s < 3; ++s) {
    const StagePlace place = stage_place(split, s, 0);
    EXPECT_EQ(place.virtual_stage, s);
    EXPECT_EQ(place.first_layer, first[s]) << "stage " << s;
    EXPECT_EQ(place.end_layer, end[s]) << "stage " << s;
    EXPECT_EQ(place.layers(), split.stage_layers(s));
    EXPECT_EQ(place.first, s == 0);
    EXPECT_EQ(place.last, s == 2);
  }
}

TEST(LayerSplit, InvalidSplitsNameTheirKey) {
  auto error = [](const LayerSplit& split) {
    const std::optional<SplitError> e = layer_split_error(split, "m");
    return e ? e->key + ": " + e->message : std::string("valid");
  };
  EXPECT_EQ(error({2, 1, 4, {1, 3}}), "valid");
  EXPECT_EQ(error({2, 2, 4}), "valid");
  EXPECT_EQ(error({3, 1, 4}), "model.layers: pp·vpp = 3·1 does not divide the 4 layers of m");
  EXPECT_EQ(error({2, 1, 4, {1, 2, 1}}),
            "parallel.layers_per_stage: 3 entries for pp = 2: give one layer count per stage");
  EXPECT_EQ(error({2, 1, 4, {4, 0}}),
            "parallel.layers_per_stage[1]: stage 1 must hold at least 1 layer, got 0");
  EXPECT_EQ(error({2, 1, 4, {1, 2}}),
            "parallel.layers_per_stage: the stages hold 3 layers in all, but m has 4");
  EXPECT_THAT(error({2, 2, 8, {3, 5}}),
              HasSubstr("parallel.layers_per_stage: a per-stage split needs vpp = 1"));
  EXPECT_THAT(check_layer_split({2, 1, 4, {1, 2}}).message(),
              HasSubstr("parallel.layers_per_stage: the stages hold 3 layers"));
}

std::string job_text(const std::string& model, int pp, const std::string& parallel_extra) {
  return "model: " + model + "\ncluster: {gpu: h100-sxm-80g, gpus: " + std::to_string(pp) +
         "}\ndataset: {lengths: [9, 4, 3], max_length: 16}\nparallel: {tp: 1, pp: " +
         std::to_string(pp) + ", dp: 1" + (parallel_extra.empty() ? "" : ", " + parallel_extra) +
         "}\nstrategy: {kind: chunkflow, chunk_size: 4, k: 1}\n";
}

std::vector<int64_t> resolved_split(const std::string& model, int pp, const std::string& extra) {
  StatusOr<Job> job = parse_job(job_text(model, pp, extra), "<job>");
  EXPECT_TRUE(job.ok()) << job.status().message();
  return job.ok() ? job->parallel.layers_per_stage : std::vector<int64_t>{-1};
}

// Megatron-LM's names resolve to one vector: the stages not named split the rest evenly.
TEST(LayerSplitJob, FirstAndLastStageLayersResolveToLayersPerStage) {
  EXPECT_THAT(resolved_split("tiny", 2, "layers_per_stage: [1, 3]"), ElementsAre(1, 3));
  EXPECT_THAT(resolved_split("tiny", 2, "first_stage_layers: 1"), ElementsAre(1, 3));
  EXPECT_THAT(resolved_split("tiny", 2, "first_stage_layers: 3, last_stage_layers: 1"),
              ElementsAre(3, 1));
  // Qwen2.5-7B, 28 layers over pp 4.
  EXPECT_THAT(resolved_split("qwen2.5-7b", 4, "last_stage_layers: 4"), ElementsAre(8, 8, 8, 4));
  EXPECT_THAT(resolved_split("qwen2.5-7b", 4, "first_stage_layers: 6, last_stage_layers: 6"),
              ElementsAre(6, 8, 8, 6));
  EXPECT_THAT(resolved_split("qwen2.5-7b", 4, "first_stage_layers: 7, last_stage_layers: 5"),
              ElementsAre(7, 8, 8, 5));
  EXPECT_TRUE(resolved_split("tiny", 2, "").empty());  // the even split, as before
}

TEST(LayerSplitJob, ResolvedJobPrintsTheSplitOnlyWhenSet) {
  StatusOr<Job> job = parse_job(job_text("qwen2.5-7b", 4, "last_stage_layers: 4"), "<job>");
  ASSERT_TRUE(job.ok()) << job.status().message();
  const std::string yaml = resolved_yaml(*job);
  EXPECT_THAT(yaml, HasSubstr("layers_per_stage: [8, 8, 8, 4]"));
  const std::string table = resolved_table(*job);
  const size_t row = table.find("parallel.layers_per_stage");
  ASSERT_NE(row, std::string::npos) << table;
  EXPECT_THAT(table.substr(row, table.find('\n', row) - row), HasSubstr("[8, 8, 8, 4]"));
  StatusOr<Job> again = parse_job(yaml, "<resolved>");
  ASSERT_TRUE(again.ok()) << again.status().message() << "\n" << yaml;
  EXPECT_EQ(again->parallel.layers_per_stage, job->parallel.layers_per_stage);
  EXPECT_EQ(resolved_yaml(*again), yaml);

  StatusOr<Job> even = parse_job(job_text("qwen2.5-7b", 4, ""), "<job>");
  ASSERT_TRUE(even.ok());
  EXPECT_THAT(resolved_yaml(*even), Not(HasSubstr("layers_per_stage")));
  EXPECT_THAT(resolved_table(*even), Not(HasSubstr("layers_per_stage")));
}

// The plan carries the job's split; its index places every op on its stage's layers; the
// checker refuses a plan whose split is not one.
TEST(LayerSplitPlan, IndexPlacesOpsOnTheirStagesLayers) {
  StatusOr<Job> job = parse_job(
      job_text("tests/executor/data/tiny-6.yaml", 3, "layers_per_stage: [2, 1, 3]"), "<job>");
  ASSERT_TRUE(job.ok()) << job.status().message();
  StatusOr<Plan> plan = build_plan(*job, 0);
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  EXPECT_THAT(plan->layers_per_stage, ElementsAre(2, 1, 3));
  EXPECT_TRUE(check_plan(*plan).ok()) << check_plan(*plan).message();
  EXPECT_THAT(plan_to_json(*plan), HasSubstr("\"layers_per_stage\""));
  StatusOr<PlanIndex> index = PlanIndex::build(*plan, WireFormat{64, 2, 1});
  ASSERT_TRUE(index.ok()) << index.status().message();
  const int64_t first[] = {0, 2, 3}, end[] = {2, 3, 6};
  int ops = 0;
  for (const IndexedOp& op : index->ops()) {
    EXPECT_EQ(op.place.first_layer, first[op.stage]) << op_label(*op.op);
    EXPECT_EQ(op.place.end_layer, end[op.stage]) << op_label(*op.op);
    ++ops;
  }
  EXPECT_EQ(ops, plan->op_count());
  EXPECT_GT(ops, 0);

  Plan bad = *plan;
  bad.layers_per_stage = {2, 2, 3};  // 7 of 6 layers
  EXPECT_THAT(check_plan(bad).message(), HasSubstr("plan rule shape"));
  EXPECT_THAT(check_plan(bad).message(), HasSubstr("the stages hold 7 layers"));
  EXPECT_FALSE(PlanIndex::build(bad, WireFormat{64, 2, 1}).ok());
  PlanInputs inputs = plan_inputs_from_job(*job, 0);
  inputs.layers_per_stage = {3, 3};
  EXPECT_THAT(build_plan(inputs).status().message(),
              HasSubstr("parallel.layers_per_stage: 2 entries for pp = 3"));
}

}  // namespace
}  // namespace cf

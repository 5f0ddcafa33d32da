// The plan's rules (plan_index.h): the cross-stage input rule as one table over every pass,
// stage and model chunk of pp 3 × vpp 2; stage places; boundary bytes; and PlanIndex over built
// plans (every input is the op the rule names, consumers mirror inputs) and broken ones.
#include "sim/plan/plan_index.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "sim/plan/plan_builder.h"
#include "tests/sim/plan/schedule_replay.h"

namespace cf {
namespace {

constexpr InputSource kNone = InputSource::kNone, kFwd = InputSource::kForward,
                      kBwd = InputSource::kBackward, kLoss = InputSource::kOwnLoss;

struct RuleRow {
  Pass pass;
  int stage, model_chunk;
  InputSource source;
  int from_stage, from_model_chunk;
};

// pp 3, vpp 2: virtual stages 0..5 are (s, v) = (0,0) (1,0) (2,0) (0,1) (1,1) (2,1).
TEST(PlanRules, InputOfEveryPassStageAndModelChunk) {
  const std::vector<RuleRow> table = {
      // Forwards (F and F* alike) read the previous virtual stage; virtual stage 0 the embedding.
      {Pass::kForward, 0, 0, kNone, -1, 0},
      {Pass::kForward, 1, 0, kFwd, 0, 0},
      {Pass::kForward, 2, 0, kFwd, 1, 0},
      {Pass::kForward, 0, 1, kFwd, 2, 0},  // wraps to the last stage of model chunk 0
      {Pass::kForward, 1, 1, kFwd, 0, 1},
      {Pass::kForward, 2, 1, kFwd, 1, 1},
      {Pass::kForwardKeepKV, 0, 0, kNone, -1, 0},
      {Pass::kForwardKeepKV, 0, 1, kFwd, 2, 0},
      {Pass::kForwardKeepKV, 2, 1, kFwd, 1, 1},
      // R reuses the stage input its F* kept.
      {Pass::kRecompute, 0, 0, kNone, -1, 0},
      {Pass::kRecompute, 2, 1, kNone, -1, 0},
      {Pass::kRecompute, 1, 0, kNone, -1, 0},
      // Backwards read the next virtual stage; the last one its own loss.
      {Pass::kBackward, 0, 0, kBwd, 1, 0},
      {Pass::kBackward, 1, 0, kBwd, 2, 0},
      {Pass::kBackward, 2, 0, kBwd, 0, 1},  // wraps to the first stage of model chunk 1
      {Pass::kBackward, 0, 1, kBwd, 1, 1},
      {Pass::kBackward, 1, 1, kBwd, 2, 1},
      {Pass::kBackward, 2, 1, kLoss, 2, 1},
  };
  for (const RuleRow& row : table) {
    SCOPED_TRACE(std::string(pass_name(row.pass)) + " s" + std::to_string(row.stage) + " v" +
                 std::to_string(row.model_chunk));
    const OpInput input = input_of(row.pass, row.stage, row.model_chunk, 3, 2);
    EXPECT_EQ(input.source, row.source);
    EXPECT_EQ(input.stage, row.from_stage);
    EXPECT_EQ(input.model_chunk, row.from_model_chunk);
  }
  // One stage, one model chunk: nothing crosses; B reads its own loss.
  EXPECT_EQ(input_of(Pass::kForward, 0, 0, 1, 1).source, kNone);
  EXPECT_EQ(input_of(Pass::kBackward, 0, 0, 1, 1).source, kLoss);
}

TEST(PlanRules, StagePlaces) {
  // 12 layers over pp 3 × vpp 2: two layers per virtual stage.
  const StagePlace v0 = stage_place(LayerSplit{3, 2, 12}, 0, 0);
  EXPECT_EQ(v0.virtual_stage, 0);
  EXPECT_EQ(v0.first_layer, 0);
  EXPECT_EQ(v0.end_layer, 2);
  EXPECT_TRUE(v0.first);
  EXPECT_FALSE(v0.last);
  const StagePlace s0v1 = stage_place(LayerSplit{3, 2, 12}, 0, 1);
  EXPECT_EQ(s0v1.virtual_stage, 3);
  EXPECT_EQ(s0v1.first_layer, 6);
  EXPECT_EQ(s0v1.layers(), 2);
  EXPECT_FALSE(s0v1.first);
  EXPECT_FALSE(s0v1.last);
  const StagePlace last = stage_place(LayerSplit{3, 2, 12}, 2, 1);
  EXPECT_EQ(last.first_layer, 10);
  EXPECT_EQ(last.end_layer, 12);
  EXPECT_TRUE(last.last);
  const StagePlace only = stage_place(LayerSplit{1, 1, 7}, 0, 0);
  EXPECT_TRUE(only.first && only.last);
  EXPECT_EQ(only.layers(), 7);
}

TEST(PlanRules, BoundaryBytesRoundUp) {
  EXPECT_EQ(boundary_bytes(17, WireFormat{3584, 2, 4}), 17 * 3584 * 2 / 4);  // exact
  EXPECT_EQ(boundary_bytes(3, WireFormat{5, 2, 4}), 8);                      // 30 / 4 → 8
  EXPECT_EQ(boundary_bytes(1, WireFormat{1, 4, 1}), 4);
  EXPECT_EQ(boundary_bytes(0, WireFormat{64, 2, 3}), 0);
}

// Every op of built plans (odd lengths, groups with K < N, interleaved, two DP ranks): its input
// is the op the rule names, on the same rank and chunk; consumers mirror crossing inputs; the
// bytes of a crossing input are the chunk's.
TEST(PlanIndex, InputsAreWhatTheRuleNames) {
  const std::vector<PlanInputs> cases = {
      test::chunkflow({17, 5, 81, 3, 9, 40}, 16, 2, 3),
      test::chunkflow({17, 5, 81, 3, 9, 40, 33, 2}, 8, 1, 2, ScheduleKind::kInterleaved, 2, 2),
      test::chunkflow({987, 1, 29}, 100, 3, 4, ScheduleKind::kGPipe),
  };
  const WireFormat wire{7, 2, 3};
  for (const PlanInputs& in : cases) {
    StatusOr<Plan> plan = build_plan(in);
    ASSERT_TRUE(plan.ok()) << plan.status().message();
    StatusOr<PlanIndex> index = PlanIndex::build(*plan, wire);
    ASSERT_TRUE(index.ok()) << index.status().message();
    ASSERT_EQ(index->size(), plan->op_count());
    int crossing = 0;
    for (int i = 0; i < index->size(); ++i) {
      const IndexedOp& e = index->op(i);
      SCOPED_TRACE(op_label(*e.op));
      EXPECT_GE(i, index->stream_begin(e.dp_rank, e.stage));
      EXPECT_LT(i, index->stream_end(e.dp_rank, e.stage));
      const OpInput rule = input_of(e.op->pass, e.stage, e.op->model_chunk, plan->pp, plan->vpp);
      if (rule.source == InputSource::kNone) {
        EXPECT_EQ(e.input, -1);
        continue;
      }
      ASSERT_GE(e.input, 0);
      const IndexedOp& from = index->op(e.input);
      EXPECT_EQ(from.dp_rank, e.dp_rank);
      EXPECT_EQ(from.stage, rule.stage);
      EXPECT_EQ(from.op->model_chunk, rule.model_chunk);
      EXPECT_EQ(from.op->chunk, e.op->chunk);
      EXPECT_EQ(e.input_crosses, from.stage != e.stage);
      if (rule.source == InputSource::kBackward) {
        EXPECT_EQ(from.op->pass, Pass::kBackward);
      }
      if (rule.source == InputSource::kForward) {  // F or F*, never R
        EXPECT_TRUE(from.op->pass == Pass::kForward || from.op->pass == Pass::kForwardKeepKV);
      }
      if (e.input_crosses) {
        ++crossing;
        EXPECT_EQ(from.consumer, i);
        EXPECT_EQ(e.input_bytes,
                  boundary_bytes(plan->chunks[static_cast<size_t>(e.op->chunk)].tokens, wire));
      } else {
        EXPECT_EQ(e.input_bytes, 0);
      }
    }
    // Each chunk crosses pp·vpp − 1 boundaries forward and as many back.
    EXPECT_EQ(crossing, static_cast<int>(plan->chunks.size()) * 2 * (plan->pp * plan->vpp - 1));
    // Spans: one per segment, the prefix a dependent piece's offset.
    for (const Chunk& chunk : plan->chunks) {
      const auto spans = index->spans(chunk.id);
      ASSERT_EQ(spans.size(), chunk.segments.size());
      for (size_t s = 0; s < spans.size(); ++s) {
        EXPECT_EQ(spans[s].q_len, chunk.segments[s].length);
        EXPECT_EQ(spans[s].kv_prefix,
                  chunk.kind == ChunkKind::kDependent ? chunk.segments[s].offset : 0);
      }
    }
  }
}

TEST(PlanIndex, BrokenPlansAreInvalidInput) {
  StatusOr<Plan> built = build_plan(test::chunkflow({5, 3}, 8, 1, 2));
  ASSERT_TRUE(built.ok());
  {
    Plan plan = *built;  // stage 1 loses its forward of chunk 0: its B has no input
    auto& ops = plan.ranks[0].stages[1].ops;
    ops.erase(ops.begin());
    StatusOr<PlanIndex> index = PlanIndex::build(plan, WireFormat{4, 2, 1});
    ASSERT_FALSE(index.ok());
    EXPECT_EQ(index.status().code(), StatusCode::kInvalidInput);
    EXPECT_NE(index.status().message().find("which is not in the plan"), std::string::npos)
        << index.status().message();
  }
  {
    Plan plan = *built;  // a pass repeated
    auto& ops = plan.ranks[0].stages[0].ops;
    ops.push_back(ops.front());
    StatusOr<PlanIndex> index = PlanIndex::build(plan, WireFormat{4, 2, 1});
    ASSERT_FALSE(index.ok());
    EXPECT_NE(index.status().message().find("repeats a pass of its chunk"), std::string::npos)
        << index.status().message();
  }
  {
    Plan plan = *built;  // an op names a chunk the plan does not have
    plan.ranks[0].stages[0].ops[0].chunk = 99;
    StatusOr<PlanIndex> index = PlanIndex::build(plan, WireFormat{4, 2, 1});
    ASSERT_FALSE(index.ok());
    EXPECT_NE(index.status().message().find("outside the plan"), std::string::npos);
  }
}

}  // namespace
}  // namespace cf

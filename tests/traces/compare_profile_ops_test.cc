// A prediction against PyTorch profiles, op by op (traces/compare_profile.h): the chunkflow
// marks of the last complete step become a measured trace joined to the prediction on OpKey —
// interleaved model chunks, device-side copies of the marks, sends and receives, ranks that
// share a stage, unknown marks, profiles without marks, marks of another plan.
#include <nlohmann/json.hpp>

#include "tests/traces/compare_profile_fixture.h"

namespace cf {
namespace {

using test::predicted_op;
using test::ProfileBuilder;
using test::ProfileFiles;

// dp 1 × pp 2, two model chunks per stage (interleaved): per stage F of chunk 0 on model chunks
// 0 and 1 (10 µs each), their B (20 µs each), the optimizer (6 µs); stage 0 sends chunk 0.
Trace interleaved_prediction() {
  Trace t;
  for (int stage = 0; stage < 2; ++stage) {
    const int64_t at = 10 * stage;
    t.ops.push_back(predicted_op(0, stage, OpKind::kCompute, Pass::kForward, 0, at, 10, 0));
    t.ops.push_back(predicted_op(0, stage, OpKind::kCompute, Pass::kForward, 0, at + 20, 10, 1));
    t.ops.push_back(predicted_op(0, stage, OpKind::kCompute, Pass::kBackward, 0, at + 40, 20, 1));
    t.ops.push_back(predicted_op(0, stage, OpKind::kCompute, Pass::kBackward, 0, at + 60, 20, 0));
    t.ops.push_back(predicted_op(0, stage, OpKind::kOptimizer, std::nullopt, -1, 100, 6));
  }
  t.ops.push_back(predicted_op(0, 0, OpKind::kSend, Pass::kForward, 0, 10, 1));
  t.ops.back().peer_stage = 1;
  t.ops.push_back(predicted_op(0, 1, OpKind::kRecv, Pass::kForward, 0, 10, 1));
  test::set_layout(&t, 1, 1, 1, 2);
  return t;
}

// The marks of one step at `at` µs, each 1.5× its predicted duration (F 15, B 30, opt 9).
void mark_step(ProfileBuilder* p, int64_t at, bool complete) {
  p->mark("chunkflow:F:chunk=0", at, 15).mark("chunkflow:F:chunk=0:mc=1", at + 20, 15);
  if (!complete) return;  // a warm-up step that stopped early
  p->mark("chunkflow:B:chunk=0:mc=1", at + 40, 30).mark("chunkflow:B:chunk=0", at + 80, 30);
  p->mark("chunkflow:optimizer", at + 120, 9);
}

TEST(CompareProfileOps, InterleavedMarksOfTheLastCompleteStep) {
  ProfileFiles files;
  for (int rank = 0; rank < 2; ++rank) {
    ProfileBuilder p;
    p.rank(rank, 2).step(1, 0, 500).step(2, 500, 500).step(3, 1000, 500);
    mark_step(&p, 0, true);
    mark_step(&p, 500, true);
    mark_step(&p, 1000, false);  // the last step is not complete: #2 is compared
    if (rank == 0) p.mark("chunkflow:loss", 600, 1);
    files.add("r" + std::to_string(rank) + ".json", p);
  }
  const ProfileCompareReport r = test::compare_ok(interleaved_prediction(), files.read());
  const MarkedOpsComparison& ops = r.ops;
  ASSERT_TRUE(ops.available) << ops.reason;
  ASSERT_EQ(ops.ranks.size(), 2u);
  for (const MarkedRank& m : ops.ranks) {
    EXPECT_EQ(m.step, "ProfilerStep#2");
    EXPECT_EQ(m.marks, 5);
    EXPECT_EQ(m.time_source, "user_annotation");
    EXPECT_EQ(m.place.stage, m.rank);
  }
  EXPECT_EQ(ops.unknown, (std::map<std::string, int64_t>{{"chunkflow:loss", 1}}));
  EXPECT_EQ(ops.not_marked, (std::vector<std::string>{"send", "recv"}));
  const CompareReport& c = *ops.report;
  EXPECT_EQ(c.matched_ops, 10);
  EXPECT_EQ(c.only_predicted.total, 0);
  EXPECT_EQ(c.only_measured.total, 0);
  ASSERT_EQ(c.passes.size(), 3u);  // F, B, optimizer
  for (const PassErrors& p : c.passes) {
    SCOPED_TRACE(p.label);
    EXPECT_DOUBLE_EQ(p.median_rel_error, -1.0 / 3.0);  // (d − 1.5 d) / 1.5 d
    EXPECT_EQ(p.matched, p.label == "optimizer" ? 2 : 4);
  }
  EXPECT_EQ(c.passes[0].label, "F");
  // Model chunks joined apart: the B of model chunk 1 is matched with its own prediction.
  for (const MatchedOp& m : c.top_ops) {
    EXPECT_EQ(m.predicted.model_chunk, m.measured.model_chunk);
    EXPECT_EQ(m.measured.duration_ns() * 2, m.predicted.duration_ns() * 3);
  }
  const nlohmann::json json = nlohmann::json::parse(profile_compare_json(r));
  EXPECT_EQ(json["ops"]["available"], true);
  EXPECT_EQ(json["ops"]["matched_ops"], 10);
  EXPECT_EQ(json["ops"]["ranks"][1]["step"], "ProfilerStep#2");
  EXPECT_EQ(json["ops"]["unknown_marks"]["chunkflow:loss"], 1);
  EXPECT_DOUBLE_EQ(json["ops"]["pass_table"][1]["median_rel_error"].get<double>(), -1.0 / 3.0);
  const std::string text = profile_compare_text(r);
  EXPECT_NE(text.find("rank 0 (dp 0, stage 0): ProfilerStep#2, 5 marks"), std::string::npos)
      << text;
  EXPECT_NE(text.find("unknown mark chunkflow:loss ×1"), std::string::npos) << text;
  EXPECT_NE(text.find("not marked in any profile, left out of the prediction: send, recv"),
            std::string::npos);
}

// The device copies of the marks give device time when each CPU mark has one; else the CPU
// ranges, and the report says why.
TEST(CompareProfileOps, DeviceCopiesOfTheMarks) {
  Trace predicted;
  predicted.ops = {predicted_op(0, 0, OpKind::kCompute, Pass::kForward, 3, 0, 10),
                   predicted_op(0, 0, OpKind::kCompute, Pass::kBackward, 3, 10, 20)};
  auto profile = [](bool both) {
    ProfileBuilder p;
    p.step(1, 0, 100).mark("chunkflow:F:chunk=3", 0, 5).mark("chunkflow:B:chunk=3", 5, 5);
    p.gpu_mark("chunkflow:F:chunk=3", 20, 20);  // device time: 20 and 40 µs
    if (both) p.gpu_mark("chunkflow:B:chunk=3", 40, 40);
    return p;
  };
  ProfileFiles paired;
  paired.add("gpu.json", profile(true));
  ProfileCompareReport r = test::compare_ok(predicted, paired.read());
  EXPECT_EQ(r.ops.ranks[0].time_source, "gpu_user_annotation");
  ASSERT_EQ(r.ops.report->passes.size(), 2u);
  EXPECT_DOUBLE_EQ(r.ops.report->passes[0].measured_total_s, 20e-6);
  EXPECT_DOUBLE_EQ(r.ops.report->passes[1].measured_total_s, 40e-6);

  ProfileFiles unpaired;
  unpaired.add("half.json", profile(false));
  r = test::compare_ok(predicted, unpaired.read());
  EXPECT_EQ(r.ops.ranks[0].time_source,
            "user_annotation (the gpu_user_annotation copies do not pair with them)");
  EXPECT_DOUBLE_EQ(r.ops.report->passes[0].measured_total_s, 5e-6);
}

// Send and recv marks carry no pass: each takes the predicted one's, in order of start.
TEST(CompareProfileOps, MessagesTakeThePassOfThePrediction) {
  Trace predicted;
  predicted.ops = {predicted_op(0, 0, OpKind::kCompute, Pass::kForward, 0, 0, 10),
                   predicted_op(0, 0, OpKind::kSend, Pass::kForward, 0, 10, 2),
                   predicted_op(0, 0, OpKind::kRecv, Pass::kBackward, 0, 12, 30),
                   predicted_op(0, 1, OpKind::kRecv, Pass::kForward, 0, 0, 12),
                   predicted_op(0, 1, OpKind::kCompute, Pass::kForward, 0, 12, 10),
                   predicted_op(0, 1, OpKind::kSend, Pass::kBackward, 0, 22, 2)};
  ProfileFiles files;
  files.add("s0.json", ProfileBuilder()
                           .mark("chunkflow:F:chunk=0", 0, 10)
                           .mark("chunkflow:send:chunk=0", 10, 3)
                           .mark("chunkflow:recv:chunk=0", 13, 25));
  files.add("s1.json", ProfileBuilder()
                           .mark("chunkflow:recv:chunk=0", 0, 13)
                           .mark("chunkflow:F:chunk=0", 13, 10)
                           .mark("chunkflow:send:chunk=0", 23, 3));
  const ProfileCompareReport r = test::compare_ok(predicted, files.read());
  ASSERT_TRUE(r.ops.available) << r.ops.reason;
  EXPECT_EQ(r.ops.report->matched_ops, 6);
  EXPECT_TRUE(r.ops.not_marked.empty());
  for (const MatchedOp& m : r.ops.report->top_ops) {
    EXPECT_EQ(m.measured.pass, m.predicted.pass);
  }
}

// Ranks of one (dp_rank, stage) (here tp 2): the lowest is compared, the other named.
TEST(CompareProfileOps, TensorParallelPeersAndNoMarks) {
  Trace predicted;
  predicted.ops = {predicted_op(0, 0, OpKind::kCompute, Pass::kForward, 0, 0, 10)};
  test::set_layout(&predicted, 2, 1, 1, 1);
  ProfileFiles files;
  files.add("r0.json", ProfileBuilder().rank(0, 2).mark("chunkflow:F:chunk=0", 0, 11));
  files.add("r1.json", ProfileBuilder().rank(1, 2).mark("chunkflow:F:chunk=0", 0, 12));
  ProfileCompareReport r = test::compare_ok(predicted, files.read());
  ASSERT_EQ(r.ops.ranks.size(), 1u);
  EXPECT_EQ(r.ops.ranks[0].rank, 0);
  EXPECT_EQ(r.ops.ranks_not_compared, std::vector<int>{1});
  EXPECT_DOUBLE_EQ(r.ops.report->passes[0].measured_total_s, 11e-6);

  ProfileFiles unmarked;
  unmarked.add("r0.json", ProfileBuilder().rank(0, 2).step(1, 0, 20));
  r = test::compare_ok(predicted, unmarked.read());
  EXPECT_FALSE(r.ops.available);
  EXPECT_FALSE(r.ops.report.has_value());
  EXPECT_NE(r.ops.reason.find("no chunkflow marks in the profiles"), std::string::npos);
  EXPECT_NE(profile_compare_text(r).find("ops: not compared: no chunkflow marks"),
            std::string::npos);
  const std::string json = profile_compare_json(r);
  EXPECT_NE(json.find("\"available\": false"), std::string::npos) << json;
  EXPECT_EQ(json.find("\"pass_table\""), std::string::npos);
}

// Marks of another plan: compare_traces' rule, as for an executor's trace.
TEST(CompareProfileOps, MarksOfAnotherPlanAreRefused) {
  Trace predicted;
  predicted.ops = {predicted_op(0, 0, OpKind::kCompute, Pass::kForward, 0, 0, 10),
                   predicted_op(0, 0, OpKind::kCompute, Pass::kForward, 1, 10, 10)};
  ProfileFiles files;
  files.add(
      "r0.json",
      ProfileBuilder().mark("chunkflow:F:chunk=5", 0, 10).mark("chunkflow:F:chunk=6", 10, 10));
  StatusOr<ProfileCompareReport> r = compare_with_profiles(predicted, files.read(), {});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("the profiles' chunkflow marks against the prediction: the "
                                      "traces come from different plans"),
            std::string::npos)
      << r.status().message();
}

}  // namespace
}  // namespace cf

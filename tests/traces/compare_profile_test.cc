// A prediction against PyTorch profiles (traces/compare_profile.h), the step, rank and class
// levels: step errors against each ProfilerStep, the layout and each rank's place in it, busy
// time and bubble per rank, time per class — every expected number worked out by hand.
#include "tests/traces/compare_profile_fixture.h"

namespace cf {
namespace {

using test::predicted_op;
using test::ProfileBuilder;
using test::ProfileFiles;
using test::split_op;

// dp 2, pp 1: rank r is DP rank r. The predicted step is 100 µs; the measured steps are each
// the slowest rank's: #1 max(120, 100) = 120, #2 max(80, 125) = 125, mean 122.5 µs.
TEST(CompareProfile, StepTimeAgainstEachProfilerStep) {
  Trace predicted;
  predicted.ops = {predicted_op(0, 0, OpKind::kCompute, Pass::kForward, 0, 0, 40),
                   predicted_op(1, 0, OpKind::kCompute, Pass::kForward, 1, 0, 50)};
  predicted.metrics["step_time_s"] = 100e-6;
  ProfileFiles files;
  files.add("r0.json", ProfileBuilder().rank(0, 2).step(1, 0, 120).step(2, 120, 80));
  files.add("r1.json", ProfileBuilder().rank(1, 2).step(2, 100, 125).step(1, 0, 100));
  const ProfileCompareReport r = test::compare_ok(predicted, files.read());
  EXPECT_EQ(r.step.predicted_from, "metrics.step_time_s");
  EXPECT_EQ(r.step.measured_from, "ProfilerStep ranges");
  ASSERT_EQ(r.step.steps.size(), 2u);
  EXPECT_EQ(r.step.steps[0].name, "ProfilerStep#1");
  EXPECT_DOUBLE_EQ(r.step.steps[0].measured_s, 120e-6);
  EXPECT_DOUBLE_EQ(*r.step.steps[0].rel_error, (100e-6 - 120e-6) / 120e-6);
  EXPECT_DOUBLE_EQ(r.step.steps[1].measured_s, 125e-6);
  EXPECT_DOUBLE_EQ(r.step.measured_s, (120e-6 + 125e-6) / 2);
  EXPECT_NEAR(*r.step.rel_error, (100 - 122.5) / 122.5, 1e-12);
  // The layout: dp and pp from the ops' grid (this trace records none), tp and cp from the
  // profiles' world size: 2 GPUs / (dp 2 · pp 1) = 1.
  EXPECT_EQ(r.layout.dp, 2);
  EXPECT_EQ(r.layout.dp_from, "trace's ranks");
  EXPECT_EQ(r.layout.tp, 1);
  EXPECT_EQ(r.layout.tp_from, "world_size");
  EXPECT_EQ(r.layout.cp_from, "assumed");
}

// Without ProfilerStep ranges: the span of the marks when every rank has them, else of the
// profile's activity; the predicted step is the makespan when the trace has no step_time_s.
TEST(CompareProfile, StepTimeWithoutProfilerSteps) {
  Trace predicted;
  predicted.ops = {predicted_op(0, 0, OpKind::kCompute, Pass::kForward, 0, 10, 40),
                   predicted_op(0, 0, OpKind::kCompute, Pass::kBackward, 0, 60, 50)};
  ProfileFiles marked;
  marked.add("r0.json", ProfileBuilder()
                            .mark("chunkflow:F:chunk=0", 1000, 30)
                            .mark("chunkflow:B:chunk=0", 1040, 60)
                            .kernel(test::kGemmKernel, 900, 500));
  ProfileCompareReport r = test::compare_ok(predicted, marked.read());
  EXPECT_EQ(r.step.predicted_from, "makespan");
  EXPECT_DOUBLE_EQ(r.step.predicted_s, 100e-6);
  EXPECT_EQ(r.step.measured_from, "span of the chunkflow marks");
  EXPECT_DOUBLE_EQ(r.step.measured_s, 100e-6);  // [1000, 1100)
  EXPECT_EQ(*r.step.rel_error, 0.0);
  EXPECT_TRUE(r.step.steps.empty());

  ProfileFiles unmarked;
  unmarked.add("r0.json",
               ProfileBuilder().kernel(test::kGemmKernel, 900, 500).cpu_op("aten::mm", 850, 10));
  r = test::compare_ok(predicted, unmarked.read());
  EXPECT_EQ(r.step.measured_from, "span of the profile's activity");
  EXPECT_DOUBLE_EQ(r.step.measured_s, 550e-6);  // [850, 1400)
  // Rank level over that span: busy 500 of 550 µs.
  ASSERT_EQ(r.ranks.size(), 1u);
  EXPECT_EQ(r.ranks[0].steps, 0);
  EXPECT_DOUBLE_EQ(r.ranks[0].measured_busy_s, 500e-6);
  EXPECT_DOUBLE_EQ(r.ranks[0].measured_bubble, 1.0 - 500.0 / 550.0);
}

// Megatron's order tp-cp-dp-pp: rank = tp_rank + tp·(cp_rank + cp·(dp_rank + dp·stage)).
TEST(CompareProfile, RankPlacesInTheLayout) {
  ProfileLayout l;
  l.tp = 2, l.cp = 1, l.dp = 2, l.pp = 2;
  const std::vector<std::array<int, 3>> tp_dp_stage = {{0, 0, 0}, {1, 0, 0}, {0, 1, 0}, {1, 1, 0},
                                                       {0, 0, 1}, {1, 0, 1}, {0, 1, 1}, {1, 1, 1}};
  for (int rank = 0; rank < 8; ++rank) {
    const RankPlace p = place_of_rank(l, rank);
    EXPECT_EQ(p.tp_rank, tp_dp_stage[rank][0]) << rank;
    EXPECT_EQ(p.dp_rank, tp_dp_stage[rank][1]) << rank;
    EXPECT_EQ(p.stage, tp_dp_stage[rank][2]) << rank;
    EXPECT_EQ(p.cp_rank, 0);
  }
  l.cp = 2;  // 13 = 1 + 2·(0 + 2·(1 + 2·1))
  const RankPlace p = place_of_rank(l, 13);
  EXPECT_EQ(p.tp_rank, 1);
  EXPECT_EQ(p.cp_rank, 0);
  EXPECT_EQ(p.dp_rank, 1);
  EXPECT_EQ(p.stage, 1);
  EXPECT_EQ(place_of_rank(l, 15).cp_rank, 1);
}

// tp 2 × dp 2 × pp 2 recorded by the trace: 8 profiles, each rank on its (dp_rank, stage).
// Busy per step: the GPU's; bubble = 1 − Σ busy / Σ step. Predicted (StageComparison): the
// stage's non-communication ops, 1 − busy / makespan (200 µs).
TEST(CompareProfile, BusyAndBubblePerRankTp2Dp2Pp2) {
  Trace predicted;
  for (int dp = 0; dp < 2; ++dp) {
    for (int stage = 0; stage < 2; ++stage) {
      const int64_t busy_us = 100 + 10 * dp + 20 * stage;  // 100, 120, 110, 130
      predicted.ops.push_back(
          predicted_op(dp, stage, OpKind::kCompute, Pass::kForward, 0, 0, busy_us));
      predicted.ops.push_back(predicted_op(dp, stage, OpKind::kSend, Pass::kForward, 0, 0, 200));
    }
  }
  test::set_layout(&predicted, 2, 1, 2, 2);
  ProfileFiles files;
  for (int rank = 0; rank < 8; ++rank) {
    // Two steps of 200 µs; rank r's GPU is busy 100 + r µs in the first, 60 in the second.
    files.add("r" + std::to_string(rank) + ".json", ProfileBuilder()
                                                        .rank(rank, 8)
                                                        .step(1, 0, 200)
                                                        .step(2, 200, 200)
                                                        .kernel(test::kGemmKernel, 10, 100 + rank)
                                                        .kernel(test::kGemmKernel, 250, 60));
  }
  const ProfileCompareReport r = test::compare_ok(predicted, files.read());
  EXPECT_EQ(r.layout.tp_from, "trace");
  EXPECT_EQ(r.layout.world(), 8);
  ASSERT_EQ(r.ranks.size(), 8u);
  for (int rank = 0; rank < 8; ++rank) {
    const RankComparison& c = r.ranks[static_cast<std::size_t>(rank)];
    SCOPED_TRACE(rank);
    EXPECT_EQ(c.rank, rank);
    EXPECT_EQ(c.place.tp_rank, rank % 2);
    EXPECT_EQ(c.place.dp_rank, rank / 2 % 2);
    EXPECT_EQ(c.place.stage, rank / 4);
    EXPECT_EQ(c.busy_source, "gpu");
    EXPECT_EQ(c.steps, 2);
    const double measured_busy_us = (100 + rank + 60) / 2.0;
    EXPECT_DOUBLE_EQ(c.measured_busy_s, measured_busy_us * 1e-6);
    EXPECT_DOUBLE_EQ(c.measured_bubble, 1.0 - (160.0 + rank) / 400.0);
    const double predicted_busy_us = 100 + 10 * c.place.dp_rank + 20 * c.place.stage;
    EXPECT_DOUBLE_EQ(c.predicted_busy_s, predicted_busy_us * 1e-6);
    EXPECT_DOUBLE_EQ(c.predicted_bubble, 1.0 - predicted_busy_us * 1000 / 200'000.0);
    EXPECT_DOUBLE_EQ(c.bubble_error, c.predicted_bubble - c.measured_bubble);
  }
}

// A CPU-only profile: busy is the main thread's ops in the step.
TEST(CompareProfile, CpuOnlyBusyIsTheMainThread) {
  Trace predicted;
  predicted.ops = {predicted_op(0, 0, OpKind::kCompute, Pass::kForward, 0, 0, 50)};
  ProfileFiles files;
  files.add("cpu.json", ProfileBuilder()
                            .step(1, 0, 100)
                            .cpu_op("aten::linear", 10, 30)
                            .cpu_op("aten::add", 50, 10)
                            .cpu_op("aten::mul", 0, 5, /*tid=*/2));
  const ProfileCompareReport r = test::compare_ok(predicted, files.read());
  ASSERT_EQ(r.ranks.size(), 1u);
  EXPECT_EQ(r.ranks[0].busy_source, "cpu_main_thread");
  EXPECT_DOUBLE_EQ(r.ranks[0].measured_busy_s, 40e-6);
  EXPECT_EQ(r.classes.ranks[0].measured_source, "cpu_self_time");
}

TEST(CompareProfile, LayoutFlagsAndRefusals) {
  Trace predicted;
  predicted.ops = {predicted_op(0, 0, OpKind::kCompute, Pass::kForward, 0, 0, 50),
                   predicted_op(0, 1, OpKind::kCompute, Pass::kForward, 0, 50, 50)};
  ProfileFiles four;
  for (int rank = 0; rank < 4; ++rank) {
    four.add("r" + std::to_string(rank) + ".json", ProfileBuilder().rank(rank, 4).step(1, 0, 9));
  }
  // An older trace: pp 2 from its stages; tp from the flag; cp from the world size, 4 / 2 / 2.
  ProfileCompareReport r = test::compare_ok(predicted, four.read(), LayoutFlags{.tp = 2});
  EXPECT_EQ(r.layout.tp_from, "flag");
  EXPECT_EQ(r.layout.cp, 1);
  EXPECT_EQ(r.layout.cp_from, "world_size");
  EXPECT_EQ(r.layout.pp_from, "trace's stages");
  EXPECT_EQ(r.ranks[1].place.tp_rank, 1);
  EXPECT_EQ(r.ranks[2].place.stage, 1);

  auto refused = [&](const Trace& trace, const std::vector<ProfiledRank>& ranks,
                     const LayoutFlags& flags, const std::string& fragment) {
    StatusOr<ProfileCompareReport> report = compare_with_profiles(trace, ranks, flags);
    ASSERT_FALSE(report.ok()) << fragment;
    EXPECT_EQ(report.status().code(), StatusCode::kInvalidInput);
    EXPECT_NE(report.status().message().find(fragment), std::string::npos)
        << report.status().message();
  };
  Trace recorded = predicted;
  test::set_layout(&recorded, 1, 1, 1, 2);
  refused(recorded, four.read(), LayoutFlags{.tp = 2},
          "--tp 2: the predicted trace records tp = 1");
  refused(recorded, four.read(), {},
          "r0.json: distributedInfo.world_size is 4, but the layout tp 1 × cp 1 × dp 1 × pp 2 "
          "has 2 GPUs");
  ProfileFiles past;  // no world size: rank 3 is past tp 1 × cp 1 × dp 1 × pp 2
  past.add("a.json", ProfileBuilder().step(1, 0, 9));
  past.add("b.json", ProfileBuilder().step(1, 0, 9));
  past.add("c.json", ProfileBuilder().step(1, 0, 9));
  refused(recorded, past.read(), {}, "c.json: rank 2 is past the layout");
  recorded.metrics["layout_pp"] = 4;
  refused(recorded, four.read(), {}, "records dp = 1, pp = 4 but its ops span 1 DP rank(s) and 2");
}

// Time per step by class, predicted for the rank's (dp_rank, stage): compute ops' split, a
// transfer as collective on both of its stages, dp_reduce collective, optimizer elementwise.
// Measured: the step's device time by class, averaged over steps.
TEST(CompareProfile, TimeByClass) {
  Trace predicted;
  predicted.ops = {split_op(0, 0, Pass::kForward, 0, 0, 30, 10, 5, 2),
                   split_op(0, 1, Pass::kForward, 0, 60, 20, 8, 4, 1),
                   predicted_op(0, 0, OpKind::kSend, Pass::kForward, 0, 47, 6),
                   predicted_op(0, 1, OpKind::kRecv, Pass::kForward, 0, 47, 6),
                   predicted_op(0, 0, OpKind::kDpReduce, std::nullopt, -1, 100, 7),
                   predicted_op(0, 1, OpKind::kOptimizer, std::nullopt, -1, 100, 9)};
  predicted.ops[2].peer_stage = 1;
  ProfileFiles files;
  files.add("r0.json", ProfileBuilder()
                           .step(1, 0, 100)
                           .step(2, 100, 100)
                           .kernel(test::kGemmKernel, 0, 40)
                           .kernel(test::kGemmKernel, 100, 20)
                           .kernel(test::kAttentionKernel, 150, 12)
                           .kernel(test::kCollectiveKernel, 170, 4)
                           .memcpy(190, 2));
  files.add("r1.json", ProfileBuilder().step(1, 0, 100).kernel(test::kElementwiseKernel, 5, 3));
  const ProfileCompareReport r = test::compare_ok(predicted, files.read());
  const ClassComparison& k = r.classes;
  ASSERT_TRUE(k.predicted);
  ASSERT_EQ(k.ranks.size(), 2u);
  auto at = [](const std::array<double, kKernelClassCount>& s, KernelClass kind) {
    return s[static_cast<int>(kind)] * 1e6;  // µs
  };
  const ClassTimes& s0 = k.ranks[0].times;  // stage 0
  EXPECT_DOUBLE_EQ(at(s0.predicted_s, KernelClass::kGemm), 30);
  EXPECT_DOUBLE_EQ(at(s0.predicted_s, KernelClass::kCollective), 6 + 7);
  EXPECT_DOUBLE_EQ(at(s0.predicted_s, KernelClass::kOther), 2);
  EXPECT_DOUBLE_EQ(at(s0.measured_s, KernelClass::kGemm), 30);  // (40 + 20) / 2
  EXPECT_DOUBLE_EQ(at(s0.measured_s, KernelClass::kAttention), 6);
  EXPECT_DOUBLE_EQ(at(s0.measured_s, KernelClass::kCollective), 2);
  EXPECT_DOUBLE_EQ(at(s0.measured_s, KernelClass::kMemcpy), 1);
  const ClassTimes& s1 = k.ranks[1].times;  // stage 1 (rank 1 by file order, dp 1 × pp 2)
  EXPECT_EQ(k.ranks[1].place.stage, 1);
  EXPECT_DOUBLE_EQ(at(s1.predicted_s, KernelClass::kCollective), 6);
  EXPECT_DOUBLE_EQ(at(s1.predicted_s, KernelClass::kElementwise), 4 + 9);
  EXPECT_DOUBLE_EQ(at(s1.measured_s, KernelClass::kElementwise), 3);
  EXPECT_DOUBLE_EQ(at(k.totals.predicted_s, KernelClass::kGemm), 50);
  EXPECT_DOUBLE_EQ(at(k.totals.measured_s, KernelClass::kGemm), 30);

  // A prediction without the split (unit or calibrated model): no predicted breakdown.
  predicted.ops[1].class_ns.reset();
  const ProfileCompareReport none = test::compare_ok(predicted, files.read());
  EXPECT_FALSE(none.classes.predicted);
  EXPECT_EQ(none.classes.predicted_note.rfind("no predicted breakdown", 0), 0u);
  EXPECT_DOUBLE_EQ(at(none.classes.totals.measured_s, KernelClass::kGemm), 30);
  const std::string json = profile_compare_json(none);
  EXPECT_NE(json.find("\"predicted_breakdown\": false"), std::string::npos);
  EXPECT_NE(profile_compare_text(none).find("no predicted breakdown"), std::string::npos);
}

}  // namespace
}  // namespace cf

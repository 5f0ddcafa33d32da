// Trace comparison with known differences: every B op 10% longer and one F op 3× longer in the
// measured trace, so step time, busy time, bubble, per-pass errors, peak memory and the top
// ops are all known by hand (compare_fixture.h gives the layout).
#include "traces/compare.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <vector>

#include "tests/support/compare_fixture.h"

namespace cf {
namespace {

using test::planned_forward_ns;
using test::synthetic_trace;
using test::TraceShape;

TEST(Percentile, LinearBetweenOrderStatistics) {
  EXPECT_DOUBLE_EQ(percentile({3, 1, 2, 4}, 0.5), 2.5);
  EXPECT_DOUBLE_EQ(percentile({5, 1, 3}, 0.5), 3);
  EXPECT_DOUBLE_EQ(percentile({10, 9, 8, 7, 6, 5, 4, 3, 2, 1}, 0.9), 9.1);  // position 8.1
  EXPECT_DOUBLE_EQ(percentile({-7}, 0.9), -7);
  EXPECT_DOUBLE_EQ(percentile({2, 4}, 0), 2);
  EXPECT_DOUBLE_EQ(percentile({2, 4}, 1), 4);
}

TEST(RelativeError, SignedAndUndefinedAtZero) {
  EXPECT_DOUBLE_EQ(*relative_error(110, 100), 0.1);
  EXPECT_DOUBLE_EQ(*relative_error(50, 100), -0.5);
  EXPECT_EQ(*relative_error(0, 0), 0);
  EXPECT_FALSE(relative_error(1, 0).has_value());
}

// The measured side of the main scenario: B 10% longer, F chunk 2 on rank 1 stage 2 3× longer.
constexpr int kSlowOpId = 57;  // rank 1 stage 2 is stream 5 of 11 plan ops each; F2 is its 3rd
int64_t known_differences_duration(const TraceOp& op, int64_t planned_ns) {
  if (op.pass == Pass::kBackward) return planned_ns * 11 / 10;
  if (op.op_id == kSlowOpId) return 3 * planned_ns;
  return planned_ns;
}

// Peak memory: weights 1000, activations 500·(stage+1) predicted; measured off by −20% on
// (rank 0, stage 1: 500 B more transient) and +10% (predicted over) on (rank 1, stage 0: 137 B
// fewer activations).
void add_peaks(Trace* trace, bool measured) {
  for (int rank = 0; rank < 2; ++rank) {
    for (int stage = 0; stage < 3; ++stage) {
      MemoryBreakdown& peak = trace->peak_memory[{rank, stage}];
      peak.weights = 1000;
      peak.activations = 500 * (stage + 1);
      if (measured && rank == 0 && stage == 1) peak.transient = 500;     // 2000 → 2500
      if (measured && rank == 1 && stage == 0) peak.activations -= 137;  // 1500 → 1363
    }
  }
}

class CompareKnownDifferences : public ::testing::Test {
 protected:
  void SetUp() override {
    predicted_ = synthetic_trace({}, "predicted");
    measured_ = synthetic_trace({}, "measured", known_differences_duration);
    add_peaks(&predicted_, false);
    add_peaks(&measured_, true);
    StatusOr<CompareReport> report = compare_traces(predicted_, measured_);
    ASSERT_TRUE(report.ok()) << report.status().message();
    report_ = *report;
  }
  Trace predicted_, measured_;
  CompareReport report_;
};

TEST_F(CompareKnownDifferences, StepTimeFromMakespan) {
  // Stage s ends at 1000s + ΣF + ΣB + 400 + 300 with ΣF = 1500 + 50s: predicted 7500 ns at
  // s = 2; measured ΣB = 1.1·2·ΣF, plus 640 ns from the slow op on rank 1 stage 2: 8460 ns.
  EXPECT_EQ(report_.predicted_makespan_ns, 7500);
  EXPECT_EQ(report_.measured_makespan_ns, 8460);
  EXPECT_EQ(report_.step.predicted_from, "makespan");
  EXPECT_DOUBLE_EQ(report_.step.predicted_s, 7500e-9);
  EXPECT_DOUBLE_EQ(report_.step.measured_s, 8460e-9);
  EXPECT_DOUBLE_EQ(*report_.step.rel_error, (7500e-9 - 8460e-9) / 8460e-9);
  EXPECT_EQ(report_.matched_ops, static_cast<int>(predicted_.ops.size()));
  EXPECT_EQ(report_.only_predicted.total, 0);
  EXPECT_EQ(report_.only_measured.total, 0);
  EXPECT_EQ(report_.op_id_mismatches, 0);
  EXPECT_EQ(report_.ranks, 2);
  EXPECT_EQ(report_.stages, 3);
}

TEST_F(CompareKnownDifferences, StepTimeFromMetricsWhenPresent) {
  predicted_.metrics["step_time_s"] = 0.25;
  measured_.metrics["step_time_s"] = 0.2;
  CompareReport report = *compare_traces(predicted_, measured_);
  EXPECT_EQ(report.step.predicted_from, "metrics.step_time_s");
  EXPECT_DOUBLE_EQ(*report.step.rel_error, (0.25 - 0.2) / 0.2);
}

TEST_F(CompareKnownDifferences, BusyAndBubblePerStage) {
  ASSERT_EQ(report_.stages_table.size(), 6u);
  for (const StageComparison& row : report_.stages_table) {
    const int s = row.stage;
    // Busy: F + B + optimizer (send and dp_reduce are communication).
    const int64_t pred_busy = 3 * (1500 + 50 * s) + 300;
    const int64_t meas_busy =
        (1500 + 50 * s) + (3300 + 110 * s) + 300 + (row.dp_rank == 1 && s == 2 ? 640 : 0);
    EXPECT_DOUBLE_EQ(row.predicted_busy_s, pred_busy * 1e-9) << row.dp_rank << "," << s;
    EXPECT_DOUBLE_EQ(row.measured_busy_s, meas_busy * 1e-9) << row.dp_rank << "," << s;
    EXPECT_DOUBLE_EQ(*row.busy_rel_error, static_cast<double>(pred_busy - meas_busy) / meas_busy);
    EXPECT_DOUBLE_EQ(row.predicted_bubble, 1.0 - pred_busy / 7500.0);
    EXPECT_DOUBLE_EQ(row.measured_bubble, 1.0 - meas_busy / 8460.0);
    EXPECT_DOUBLE_EQ(row.bubble_error, row.predicted_bubble - row.measured_bubble);
  }
  EXPECT_DOUBLE_EQ(report_.stages_table[0].predicted_bubble, 0.36);  // 1 − 4800 / 7500
}

TEST_F(CompareKnownDifferences, PerPassErrorDistribution) {
  // Passes in F, F*, R, B order, then the other kinds by name.
  ASSERT_EQ(report_.passes.size(), 5u);
  EXPECT_EQ(report_.passes[0].label, "F");
  EXPECT_EQ(report_.passes[1].label, "B");
  EXPECT_EQ(report_.passes[2].label, "dp_reduce");
  EXPECT_EQ(report_.passes[3].label, "optimizer");
  EXPECT_EQ(report_.passes[4].label, "send");
  EXPECT_EQ(report_.passes[4].matched, 2 * 2 * 5);  // not on the last stage
  EXPECT_EQ(report_.passes[4].worst_rel_error, 0);
  const PassErrors& f = report_.passes[0];
  EXPECT_EQ(f.matched, 30);
  EXPECT_EQ(f.median_rel_error, 0);
  EXPECT_EQ(f.p90_abs_rel_error, 0);                // 29 exact of 30
  EXPECT_DOUBLE_EQ(f.worst_rel_error, -2.0 / 3.0);  // (d − 3d) / 3d
  EXPECT_EQ(f.worst.predicted.dp_rank, 1);
  EXPECT_EQ(f.worst.predicted.stage, 2);
  EXPECT_EQ(f.worst.predicted.chunk, 2);
  EXPECT_EQ(f.worst.predicted.op_id, kSlowOpId);
  const PassErrors& b = report_.passes[1];
  EXPECT_EQ(b.matched, 30);
  EXPECT_DOUBLE_EQ(b.median_rel_error, -1.0 / 11.0);  // (2f − 2.2f) / 2.2f
  EXPECT_DOUBLE_EQ(b.p90_abs_rel_error, 1.0 / 11.0);
  EXPECT_DOUBLE_EQ(b.worst_rel_error, -1.0 / 11.0);
  // All B errors tie: the worst is the first in key order.
  EXPECT_EQ(b.worst.predicted.dp_rank, 0);
  EXPECT_EQ(b.worst.predicted.stage, 0);
  EXPECT_EQ(b.worst.predicted.chunk, 0);
  // Σ over 2 ranks of Σ_s 2·(1500 + 50s) = 18600 ns predicted; 1.1× that measured.
  EXPECT_DOUBLE_EQ(b.predicted_total_s, 18600e-9);
  EXPECT_DOUBLE_EQ(b.measured_total_s, 20460e-9);
}

TEST_F(CompareKnownDifferences, PeakMemoryWorstStageKeepsSign) {
  ASSERT_EQ(report_.memory.size(), 6u);
  ASSERT_TRUE(report_.peak_memory_rel_error.has_value());
  EXPECT_DOUBLE_EQ(*report_.peak_memory_rel_error, (2000.0 - 2500.0) / 2500.0);  // −20%
  const MemoryComparison& r1s0 = report_.memory[3];
  EXPECT_EQ(r1s0.dp_rank, 1);
  EXPECT_EQ(r1s0.stage, 0);
  EXPECT_EQ(r1s0.measured_bytes, 1363);
  EXPECT_DOUBLE_EQ(*r1s0.rel_error, (1500.0 - 1363.0) / 1363.0);
  // Every category, in the canonical order (kinds.h); 0 against 0 is an exact prediction.
  ASSERT_EQ(r1s0.categories.size(), 6u);
  EXPECT_EQ(r1s0.categories[0].category, MemoryCategory::kWeights);
  EXPECT_EQ(*r1s0.categories[0].rel_error, 0);
  EXPECT_EQ(*r1s0.categories[1].rel_error, 0);  // gradients: 0 and 0
  const MemoryComparison::Category& activations = r1s0.categories[3];
  EXPECT_EQ(activations.category, MemoryCategory::kActivations);
  EXPECT_EQ(activations.predicted_bytes, 500);
  EXPECT_EQ(activations.measured_bytes, 363);
  EXPECT_DOUBLE_EQ(*activations.rel_error, (500.0 - 363.0) / 363.0);
}

TEST_F(CompareKnownDifferences, TopOpsExplainTheDifference) {
  // |diff|: the slow F 640 ns; each B 0.2·f = 20(c+1) + 2s; Σ = 640 + 0.4·Σ_s(1500 + 50s) = 2500.
  EXPECT_EQ(report_.total_abs_diff_ns, 2500);
  ASSERT_EQ(report_.top_ops.size(), 10u);
  EXPECT_EQ(report_.top_ops[0].predicted.op_id, kSlowOpId);
  EXPECT_EQ(report_.top_ops[0].diff_ns(), -640);
  const int64_t expected[] = {640, 104, 104, 102, 102, 100, 100, 84, 84, 82};
  for (int i = 0; i < 10; ++i) EXPECT_EQ(std::abs(report_.top_ops[i].diff_ns()), expected[i]) << i;
  // Ties in key order: rank 0 before rank 1.
  EXPECT_EQ(report_.top_ops[1].predicted.dp_rank, 0);
  EXPECT_EQ(report_.top_ops[2].predicted.dp_rank, 1);
  EXPECT_EQ(report_.top_ops[9].predicted.dp_rank, 0);
  EXPECT_EQ(report_.top_ops[9].predicted.stage, 1);
  EXPECT_EQ(report_.top_ops[9].predicted.chunk, 3);
  EXPECT_DOUBLE_EQ(report_.top_ops_share, 1502.0 / 2500.0);
}

// One stage, F of chunk c measured (10 + c)/10 × longer: errors −c/(10 + c), c = 0..4.
TEST(CompareDistribution, MedianAndP90ByHand) {
  const TraceShape shape{1, 1, 5};
  Trace predicted = synthetic_trace(shape, "predicted");
  Trace measured = synthetic_trace(shape, "measured", [](const TraceOp& op, int64_t planned_ns) {
    return op.pass == Pass::kForward ? planned_ns * (10 + op.chunk) / 10 : planned_ns;
  });
  CompareReport report = *compare_traces(predicted, measured);
  const PassErrors& f = report.passes[0];
  ASSERT_EQ(f.label, "F");
  EXPECT_DOUBLE_EQ(f.median_rel_error, -2.0 / 12.0);
  // |e| sorted: 0, 1/11, 2/12, 3/13, 4/14; position 0.9·4 = 3.6.
  EXPECT_DOUBLE_EQ(f.p90_abs_rel_error, 3.0 / 13.0 + 0.6 * (4.0 / 14.0 - 3.0 / 13.0));
  EXPECT_DOUBLE_EQ(f.worst_rel_error, -4.0 / 14.0);
  EXPECT_EQ(f.worst.predicted.chunk, 4);
  EXPECT_DOUBLE_EQ(f.predicted_total_s, 1500e-9);
  EXPECT_DOUBLE_EQ(f.measured_total_s,
                   (100 * 10 + 200 * 11 + 300 * 12 + 400 * 13 + 500 * 14) / 10 * 1e-9);
  EXPECT_FALSE(report.peak_memory_rel_error.has_value());
  EXPECT_TRUE(report.memory.empty());
}

// Busy time is the union of the non-communication intervals: overlap counts once, sends not.
TEST(CompareBusy, UnionOfComputeIntervals) {
  Trace trace;
  trace.ops = {
      {.kind = OpKind::kCompute,
       .pass = Pass::kForward,
       .chunk = 0,
       .op_id = 0,
       .start_ns = 0,
       .end_ns = 100},
      {.kind = OpKind::kCompute,
       .pass = Pass::kForwardKeepKV,
       .chunk = 1,
       .op_id = 1,
       .start_ns = 50,
       .end_ns = 150},
      {.kind = OpKind::kSend,
       .pass = Pass::kForwardKeepKV,
       .chunk = 1,
       .op_id = -1,
       .start_ns = 150,
       .end_ns = 400},
      {.kind = OpKind::kCompute,
       .pass = Pass::kBackward,
       .chunk = 0,
       .op_id = 2,
       .start_ns = 200,
       .end_ns = 300},
  };
  Trace measured = trace;
  for (TraceOp& op : measured.ops) {  // everything 5 ns later and B 7 ns longer
    op.start_ns += 5;
    op.end_ns += op.pass == Pass::kBackward ? 12 : 5;
  }
  CompareReport report = *compare_traces(trace, measured);
  ASSERT_EQ(report.stages_table.size(), 1u);
  const StageComparison& row = report.stages_table[0];
  EXPECT_DOUBLE_EQ(row.predicted_busy_s, 250e-9);  // [0, 150) ∪ [200, 300)
  EXPECT_DOUBLE_EQ(row.measured_busy_s, 257e-9);
  EXPECT_DOUBLE_EQ(row.predicted_bubble, 1 - 250.0 / 400.0);
  EXPECT_DOUBLE_EQ(row.measured_bubble, 1 - 257.0 / 400.0);  // makespan [5, 405)
  EXPECT_DOUBLE_EQ(*report.step.rel_error, 0);
}

}  // namespace
}  // namespace cf

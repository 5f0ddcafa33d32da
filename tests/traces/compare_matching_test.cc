// Joining ops of two traces: by key whatever the order, duplicates of a key paired in op-id
// order, unmatched ops counted by pass / kind, op id disagreements counted, and traces of
// different plans rejected with a message saying why.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "tests/support/compare_fixture.h"
#include "traces/compare.h"

namespace cf {
namespace {

using test::synthetic_trace;
using test::TraceShape;

int64_t slower_b(const TraceOp& op, int64_t planned_ns) {
  return op.pass == Pass::kBackward ? planned_ns * 11 / 10 : planned_ns + op.chunk;
}

TEST(CompareMatching, OpOrderDoesNotMatter) {
  const TraceShape shape{3, 2, 7};
  const Trace predicted = synthetic_trace(shape, "predicted");
  const Trace measured = synthetic_trace(shape, "measured", slower_b);
  const std::string reference = compare_report_json(*compare_traces(predicted, measured));
  for (unsigned seed : {1u, 17u, 987u}) {
    Trace shuffled_measured = measured, shuffled_predicted = predicted;
    std::mt19937 rng(seed);
    std::shuffle(shuffled_measured.ops.begin(), shuffled_measured.ops.end(), rng);
    std::shuffle(shuffled_predicted.ops.begin(), shuffled_predicted.ops.end(), rng);
    StatusOr<CompareReport> report = compare_traces(shuffled_predicted, shuffled_measured);
    ASSERT_TRUE(report.ok()) << report.status().message();
    EXPECT_EQ(report->matched_ops, static_cast<int>(predicted.ops.size()));
    EXPECT_EQ(compare_report_json(*report), reference) << "seed " << seed;
  }
}

TEST(CompareMatching, UnmatchedOpsCountedByLabel) {
  const TraceShape shape{2, 3, 5};
  const Trace predicted = synthetic_trace(shape, "predicted");
  Trace measured = synthetic_trace(shape, "measured");
  // Drop rank 1's stage 0 optimizer and one send; add two recv ops absent from the other trace.
  auto drop = [&](auto predicate) {
    measured.ops.erase(std::find_if(measured.ops.begin(), measured.ops.end(), predicate));
  };
  drop([](const TraceOp& op) {
    return op.kind == OpKind::kOptimizer && op.dp_rank == 1 && op.stage == 0;
  });
  drop(
      [](const TraceOp& op) { return op.kind == OpKind::kSend && op.chunk == 3 && op.stage == 1; });
  TraceOp extra{.dp_rank = 0,
                .stage = 2,
                .kind = OpKind::kRecv,
                .pass = Pass::kForward,
                .chunk = 1,
                .start_ns = 10,
                .end_ns = 30};
  measured.ops.push_back(extra);
  measured.ops.push_back(extra);
  StatusOr<CompareReport> report = compare_traces(predicted, measured);
  ASSERT_TRUE(report.ok()) << report.status().message();
  EXPECT_EQ(report->only_predicted.total, 2);
  EXPECT_EQ(report->only_predicted.by_label,
            (std::map<std::string, int>{{"optimizer", 1}, {"send", 1}}));
  ASSERT_EQ(report->only_predicted.examples.size(), 2u);
  // In key order: (0, 1, "send", ...) before (1, 0, "optimizer", ...).
  EXPECT_EQ(report->only_predicted.examples[0].kind, OpKind::kSend);
  EXPECT_EQ(report->only_predicted.examples[0].dp_rank, 0);
  EXPECT_EQ(report->only_predicted.examples[1].kind, OpKind::kOptimizer);
  EXPECT_EQ(report->only_measured.total, 2);
  EXPECT_EQ(report->only_measured.by_label, (std::map<std::string, int>{{"recv", 2}}));
  EXPECT_EQ(report->matched_ops, static_cast<int>(predicted.ops.size()) - 2);
  const std::string text = compare_report_text(*report);
  EXPECT_NE(text.find("only in predicted: 2 (1 optimizer, 1 send)"), std::string::npos) << text;
  EXPECT_NE(text.find("only in measured: 2 (2 recv)"), std::string::npos) << text;
}

TEST(CompareMatching, DuplicateKeysPairInOpIdOrder) {
  // Two sends of chunk 4 on one stream (after F and after B), listed in opposite orders.
  auto trace = [](int64_t first_ns, int64_t second_ns, bool reversed) {
    Trace t;
    TraceOp f{.kind = OpKind::kCompute,
              .pass = Pass::kForward,
              .chunk = 4,
              .op_id = 0,
              .start_ns = 0,
              .end_ns = 100};
    TraceOp a{.kind = OpKind::kSend,
              .pass = Pass::kForward,
              .chunk = 4,
              .op_id = 0,
              .start_ns = 100,
              .end_ns = 100 + first_ns};
    TraceOp b{.kind = OpKind::kSend,
              .pass = Pass::kForward,
              .chunk = 4,
              .op_id = 1,
              .start_ns = 300,
              .end_ns = 300 + second_ns};
    t.ops = reversed ? std::vector<TraceOp>{f, b, a} : std::vector<TraceOp>{f, a, b};
    return t;
  };
  CompareReport report = *compare_traces(trace(50, 70, false), trace(60, 90, true));
  EXPECT_EQ(report.matched_ops, 3);
  const PassErrors& send = report.passes[1];
  ASSERT_EQ(send.label, "send");
  EXPECT_DOUBLE_EQ(send.worst_rel_error, (70.0 - 90.0) / 90.0);
  EXPECT_EQ(send.worst.predicted.op_id, 1);
  EXPECT_DOUBLE_EQ(send.median_rel_error, ((50.0 - 60.0) / 60.0 + (70.0 - 90.0) / 90.0) / 2);
}

TEST(CompareMatching, OpIdDisagreementsCounted) {
  const TraceShape shape{1, 2, 3};
  Trace predicted = synthetic_trace(shape, "predicted");
  Trace measured = synthetic_trace(shape, "measured");
  int shifted = 0;
  for (TraceOp& op : measured.ops) {
    if (op.op_id >= 0 && op.stage == 1) {
      op.op_id += 100;
      ++shifted;
    }
  }
  CompareReport report = *compare_traces(predicted, measured);
  EXPECT_EQ(shifted, 7);  // 3 F, 3 B, 1 optimizer
  EXPECT_EQ(report.op_id_mismatches, shifted);
}

TEST(CompareMatching, DifferentStageGridsAreDifferentPlans) {
  StatusOr<CompareReport> report = compare_traces(synthetic_trace({2, 3, 5}, "predicted"),
                                                  synthetic_trace({2, 2, 5}, "measured"));
  ASSERT_FALSE(report.ok());
  EXPECT_EQ(report.status().code(), StatusCode::kInvalidInput);
  EXPECT_EQ(
      report.status().message(),
      "the traces come from different plans: the predicted trace has 2 DP rank(s) × 3 stage(s) (6 "
      "streams), the measured 2 DP rank(s) × 2 stage(s) (4 streams)");
}

TEST(CompareMatching, NoMatchingOpIsDifferentPlans) {
  Trace measured = synthetic_trace({1, 2, 3}, "measured");
  for (TraceOp& op : measured.ops) op.model_chunk = 1;
  StatusOr<CompareReport> report =
      compare_traces(synthetic_trace({1, 2, 3}, "predicted"), measured);
  ASSERT_FALSE(report.ok());
  EXPECT_EQ(report.status().code(), StatusCode::kInvalidInput);
  EXPECT_NE(report.status().message().find(
                "no op matches on (dp_rank, stage, kind, pass, chunk, model_chunk)"),
            std::string::npos)
      << report.status().message();
}

TEST(CompareMatching, FewMatchingComputeOpsIsDifferentPlans) {
  // Same grid, other chunk ids: only dp_reduce and optimizer still match.
  Trace measured = synthetic_trace({2, 3, 5}, "measured");
  for (TraceOp& op : measured.ops) {
    if (op.chunk >= 0) op.chunk += 5;
  }
  StatusOr<CompareReport> report =
      compare_traces(synthetic_trace({2, 3, 5}, "predicted"), measured);
  ASSERT_FALSE(report.ok());
  EXPECT_EQ(report.status().code(), StatusCode::kInvalidInput);
  EXPECT_EQ(
      report.status().message(),
      "the traces come from different plans: only 0 of 60 predicted and of 60 measured compute ops "
      "match on (dp_rank, stage, kind, pass, chunk, model_chunk)");
}

TEST(CompareMatching, EmptyTraceIsBadInput) {
  StatusOr<CompareReport> report = compare_traces(synthetic_trace({1, 1, 1}, "predicted"), Trace{});
  ASSERT_FALSE(report.ok());
  EXPECT_EQ(report.status().message(), "the measured trace has no ops");
}

}  // namespace
}  // namespace cf

// Trace comparison: a predicted trace (simulator) against a measured one (executor) of the
// same Plan — step time, per-stage busy time and bubble, per-pass duration errors, peak memory
// and the ops that explain the difference. Not the trace format (traces/trace.h) nor the HTML
// page (traces/html_report.h).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "traces/trace.h"

namespace cf {

// Relative error of a prediction, (predicted − measured) / measured; empty when measured is 0
// (undefined), except that 0 against 0 is an exact prediction (0).
std::optional<double> relative_error(double predicted, double measured);

// Linear interpolation between order statistics (numpy's default "linear" method):
// position q·(n−1) in the sorted values. `values` must be non-empty, q in [0, 1].
double percentile(std::vector<double> values, double q);

// Ops join on this key: one op of a (rank, stage) stream. kind/pass as in TraceOp.
struct OpKey {
  int dp_rank = 0;
  int stage = 0;
  OpKind kind = OpKind::kCompute;
  std::optional<Pass> pass;
  int chunk = -1;
  int model_chunk = 0;
  auto operator<=>(const OpKey&) const = default;
};
OpKey op_key(const TraceOp& op);
// The label ops are grouped by in the error tables: the pass for compute ops ("F", "F*", "R",
// "B"), otherwise the kind ("send", "recv", "dp_reduce", "optimizer").
std::string op_label(const TraceOp& op);
// Communication ops, which may overlap compute; not counted as busy time.
bool is_communication(const TraceOp& op);
// Busy time per (dp_rank, stage): the measure of the union of its non-communication op
// intervals, in ns (StageComparison's busy time).
std::map<std::pair<int, int>, int64_t> busy_ns_by_stage(const Trace& trace);

// One op of the plan found in both traces.
struct MatchedOp {
  TraceOp predicted;
  TraceOp measured;
  int64_t diff_ns() const { return predicted.duration_ns() - measured.duration_ns(); }
};

struct StepComparison {
  double predicted_s = 0;
  double measured_s = 0;
  std::optional<double> rel_error;
  std::string predicted_from;  // "metrics.step_time_s" | "makespan"
  std::string measured_from;
};

// Busy time: the union of the (rank, stage)'s non-communication op intervals. Bubble: the
// idle share of the trace's makespan, 1 − busy / makespan (DESIGN.md §4.3, per stage).
struct StageComparison {
  int dp_rank = 0;
  int stage = 0;
  double predicted_busy_s = 0;
  double measured_busy_s = 0;
  std::optional<double> busy_rel_error;
  double predicted_bubble = 0;
  double measured_bubble = 0;
  double bubble_error = 0;  // predicted − measured, in shares of the step (absolute)
};

// Duration errors of the matched ops with one label. Relative errors exclude pairs whose
// measured duration is 0 (`undefined` counts them).
struct PassErrors {
  std::string label;
  int matched = 0;
  int undefined = 0;
  double predicted_total_s = 0;
  double measured_total_s = 0;
  double median_rel_error = 0;   // signed: the bias of the prediction
  double p90_abs_rel_error = 0;  // of |relative error|
  double worst_rel_error = 0;    // largest |relative error|, sign kept
  MatchedOp worst;               // the op with worst_rel_error (first by key on ties)
};

struct MemoryComparison {
  int dp_rank = 0;
  int stage = 0;
  int64_t predicted_bytes = 0;
  int64_t measured_bytes = 0;
  std::optional<double> rel_error;
  struct Category {
    MemoryCategory category = MemoryCategory::kWeights;
    int64_t predicted_bytes = 0;
    int64_t measured_bytes = 0;
    std::optional<double> rel_error;
  };
  std::vector<Category> categories;  // every category, when both traces break their peak down
};

// Ops of one trace that found no partner in the other, counted by label.
struct Unmatched {
  int total = 0;
  std::map<std::string, int> by_label;
  std::vector<TraceOp> examples;  // the first few, in key order
};

struct CompareReport {
  int ranks = 0;
  int stages = 0;
  int matched_ops = 0;
  int op_id_mismatches = 0;  // matched pairs whose plan op ids (both ≥ 0) disagree
  StepComparison step;
  std::vector<StageComparison> stages_table;    // by (rank, stage)
  std::vector<PassErrors> passes;               // F, F*, R, B, then other labels by name
  std::vector<MemoryComparison> memory;         // by (rank, stage); empty without memory data
  std::optional<double> peak_memory_rel_error;  // the worst stage's, by |·|, sign kept
  std::vector<MatchedOp> top_ops;               // largest |pred − meas| duration first
  double top_ops_share = 0;                     // their share of Σ |pred − meas| over all ops
  int64_t total_abs_diff_ns = 0;
  Unmatched only_predicted;
  Unmatched only_measured;
  int64_t predicted_origin_ns = 0;  // earliest op start of each trace: its time zero
  int64_t measured_origin_ns = 0;
  int64_t predicted_makespan_ns = 0;
  int64_t measured_makespan_ns = 0;
};

inline constexpr int kTopOps = 10;
inline constexpr int kUnmatchedExamples = 5;

// Compares two traces of one plan. InvalidInput when either has no ops, when their
// (rank, stage) grids differ, when no op matches, or when fewer than half of either trace's
// compute ops find a partner: those traces come from different plans.
StatusOr<CompareReport> compare_traces(const Trace& predicted, const Trace& measured);

// "+12.3%", or "n/a" when the error is undefined (measured 0): errors in every report.
std::string percent_text(const std::optional<double>& value);

// Readable tables (traces/compare_format.cc).
std::string compare_report_text(const CompareReport& report);
// Deterministic JSON: step_time_rel_error, peak_memory_rel_error and every table.
std::string compare_report_json(const CompareReport& report);
// The op-level parts alone, as the two above write them: matched and unmatched ops, the pass
// table, the ops explaining the difference (JSON keys matched_ops, op_id_mismatches,
// unmatched, pass_table, top_ops, top_ops_share, total_abs_diff_ns). What the comparison with
// a profile's marks reports (compare_profile.h), where the rest is not the trace's to say.
std::string compare_ops_text(const CompareReport& report);
std::string compare_ops_json(const CompareReport& report);

}  // namespace cf

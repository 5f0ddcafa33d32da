// Trace comparison: joins the ops of a predicted and a measured trace on their plan key and
// computes the error tables of CompareReport. Formatting lives in compare_format.cc.
#include "traces/compare.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <set>
#include <tuple>
#include <utility>

namespace cf {
namespace {

constexpr double kNsPerS = 1e9;
using StageKey = std::pair<int, int>;  // (dp_rank, stage)

// Ops grouped by key; within a key (e.g. several sends of one chunk) ordered by plan op id,
// then time, so the k-th occurrence in one trace pairs with the k-th in the other.
std::map<OpKey, std::vector<const TraceOp*>> ops_by_key(const Trace& trace) {
  std::map<OpKey, std::vector<const TraceOp*>> by_key;
  for (const TraceOp& op : trace.ops) by_key[op_key(op)].push_back(&op);
  for (auto& [key, ops] : by_key) {
    std::stable_sort(ops.begin(), ops.end(), [](const TraceOp* a, const TraceOp* b) {
      return std::tie(a->op_id, a->start_ns, a->end_ns) <
             std::tie(b->op_id, b->start_ns, b->end_ns);
    });
  }
  return by_key;
}

std::pair<int64_t, int64_t> time_span_ns(const Trace& trace) {
  int64_t first = trace.ops.front().start_ns, last = trace.ops.front().end_ns;
  for (const TraceOp& op : trace.ops) {
    first = std::min(first, op.start_ns);
    last = std::max(last, op.end_ns);
  }
  return {first, last};
}

std::set<StageKey> stage_grid(const Trace& trace) {
  std::set<StageKey> grid;
  for (const TraceOp& op : trace.ops) grid.insert({op.dp_rank, op.stage});
  return grid;
}

std::string grid_text(const std::set<StageKey>& grid) {
  std::set<int> ranks, stages;
  for (const auto& [rank, stage] : grid) {
    ranks.insert(rank);
    stages.insert(stage);
  }
  return fmt::format("{} DP rank(s) × {} stage(s) ({} streams)", ranks.size(), stages.size(),
                     grid.size());
}

// A (rank, stage)'s peak: its total and, where the trace records it, the breakdown then.
struct Peak {
  int64_t total = 0;
  std::optional<MemoryBreakdown> by_category;
};

// The trace's peak_memory, or when it has none, the largest total sample of its memory track.
std::map<StageKey, Peak> peaks(const Trace& trace) {
  std::map<StageKey, Peak> out;
  for (const auto& [key, breakdown] : trace.peak_memory) out[key] = {breakdown.total(), breakdown};
  if (!out.empty()) return out;
  for (const MemorySample& s : trace.memory) {
    if (s.category) continue;
    int64_t& peak = out[{s.dp_rank, s.stage}].total;
    peak = std::max(peak, s.bytes);
  }
  return out;
}

double step_time_s(const Trace& trace, int64_t makespan_ns, std::string* from) {
  if (auto it = trace.metrics.find("step_time_s"); it != trace.metrics.end()) {
    *from = "metrics.step_time_s";
    return it->second;
  }
  *from = "makespan";
  return static_cast<double>(makespan_ns) / kNsPerS;
}

int pass_rank(const std::string& label) {
  static const std::vector<std::string> kPasses = {"F", "F*", "R", "B"};
  auto it = std::find(kPasses.begin(), kPasses.end(), label);
  return it == kPasses.end() ? static_cast<int>(kPasses.size())
                             : static_cast<int>(it - kPasses.begin());
}

PassErrors pass_errors(const std::string& label, const std::vector<const MatchedOp*>& ops) {
  PassErrors out;
  out.label = label;
  out.matched = static_cast<int>(ops.size());
  std::vector<double> signed_errors, abs_errors;
  int64_t predicted_total_ns = 0, measured_total_ns = 0;
  for (const MatchedOp* m : ops) {
    predicted_total_ns += m->predicted.duration_ns();
    measured_total_ns += m->measured.duration_ns();
    std::optional<double> e = relative_error(static_cast<double>(m->predicted.duration_ns()),
                                             static_cast<double>(m->measured.duration_ns()));
    if (!e) {
      ++out.undefined;
      continue;
    }
    if (signed_errors.empty() || std::abs(*e) > std::abs(out.worst_rel_error)) {
      out.worst_rel_error = *e;
      out.worst = *m;
    }
    signed_errors.push_back(*e);
    abs_errors.push_back(std::abs(*e));
  }
  out.predicted_total_s = static_cast<double>(predicted_total_ns) / kNsPerS;
  out.measured_total_s = static_cast<double>(measured_total_ns) / kNsPerS;
  if (!signed_errors.empty()) {
    out.median_rel_error = percentile(signed_errors, 0.5);
    out.p90_abs_rel_error = percentile(abs_errors, 0.9);
  } else {
    out.worst = *ops.front();
  }
  return out;
}

void add_unmatched(const std::vector<const TraceOp*>& ops, std::size_t from, Unmatched* out) {
  for (std::size_t i = from; i < ops.size(); ++i) {
    ++out->total;
    ++out->by_label[op_label(*ops[i])];
    if (out->examples.size() < static_cast<std::size_t>(kUnmatchedExamples)) {
      out->examples.push_back(*ops[i]);
    }
  }
}

}  // namespace

std::optional<double> relative_error(double predicted, double measured) {
  if (measured == 0) return predicted == 0 ? std::optional<double>(0.0) : std::nullopt;
  return (predicted - measured) / measured;
}

double percentile(std::vector<double> values, double q) {
  CF_CHECK(!values.empty()) << "percentile of no values";
  CF_CHECK(q >= 0 && q <= 1) << "q = " << q;
  std::sort(values.begin(), values.end());
  const double position = q * static_cast<double>(values.size() - 1);
  const std::size_t below = static_cast<std::size_t>(std::floor(position));
  const std::size_t above = std::min(below + 1, values.size() - 1);
  const double fraction = position - static_cast<double>(below);
  return values[below] + fraction * (values[above] - values[below]);
}

std::map<std::pair<int, int>, int64_t> busy_ns_by_stage(const Trace& trace) {
  std::map<StageKey, std::vector<std::pair<int64_t, int64_t>>> intervals;
  for (const TraceOp& op : trace.ops) {
    if (!is_communication(op))
      intervals[{op.dp_rank, op.stage}].push_back({op.start_ns, op.end_ns});
  }
  std::map<StageKey, int64_t> busy;
  for (auto& [key, list] : intervals) {
    std::sort(list.begin(), list.end());
    int64_t total = 0, open_start = list.front().first, open_end = list.front().second;
    for (const auto& [start, end] : list) {
      if (start > open_end) {
        total += open_end - open_start;
        open_start = start;
      }
      open_end = std::max(open_end, end);
    }
    busy[key] = total + (open_end - open_start);
  }
  return busy;
}

OpKey op_key(const TraceOp& op) {
  return {op.dp_rank, op.stage, op.kind, op.pass, op.chunk, op.model_chunk};
}

std::string op_label(const TraceOp& op) {
  return op.kind == OpKind::kCompute && op.pass ? pass_name(*op.pass) : op_kind_name(op.kind);
}

bool is_communication(const TraceOp& op) { return is_communication(op.kind); }

namespace {

// Join on the key; the k-th occurrence of a key pairs with the k-th of the other trace. What
// finds no partner is counted in the report.
std::vector<MatchedOp> join_ops(const Trace& predicted, const Trace& measured,
                                CompareReport* report) {
  std::vector<MatchedOp> matched;
  const auto pred_by_key = ops_by_key(predicted), meas_by_key = ops_by_key(measured);
  static const std::vector<const TraceOp*> kNone;
  std::set<OpKey> keys;
  for (const auto& [key, ops] : pred_by_key) keys.insert(key);
  for (const auto& [key, ops] : meas_by_key) keys.insert(key);
  for (const OpKey& key : keys) {
    auto p = pred_by_key.find(key), m = meas_by_key.find(key);
    const auto& pred_ops = p == pred_by_key.end() ? kNone : p->second;
    const auto& meas_ops = m == meas_by_key.end() ? kNone : m->second;
    const std::size_t pairs = std::min(pred_ops.size(), meas_ops.size());
    for (std::size_t i = 0; i < pairs; ++i) matched.push_back({*pred_ops[i], *meas_ops[i]});
    add_unmatched(pred_ops, pairs, &report->only_predicted);
    add_unmatched(meas_ops, pairs, &report->only_measured);
  }
  report->matched_ops = static_cast<int>(matched.size());
  for (const MatchedOp& m : matched) {
    if (m.predicted.op_id >= 0 && m.measured.op_id >= 0 && m.predicted.op_id != m.measured.op_id) {
      ++report->op_id_mismatches;
    }
  }
  return matched;
}

// Traces of one plan share most of their compute ops; fewer than half matching means not.
Status check_same_plan(const Trace& predicted, const Trace& measured,
                       const std::vector<MatchedOp>& matched) {
  if (matched.empty()) {
    return Status::InvalidInput(
        "the traces come from different plans: no op matches on (dp_rank, stage, kind, pass, "
        "chunk, model_chunk)");
  }
  auto compute_ops = [](const Trace& t) {
    return std::count_if(t.ops.begin(), t.ops.end(),
                         [](const TraceOp& op) { return op.kind == OpKind::kCompute; });
  };
  const int64_t matched_compute =
      std::count_if(matched.begin(), matched.end(),
                    [](const MatchedOp& m) { return m.predicted.kind == OpKind::kCompute; });
  const int64_t pred_compute = compute_ops(predicted), meas_compute = compute_ops(measured);
  if (2 * matched_compute < pred_compute || 2 * matched_compute < meas_compute) {
    return Status::InvalidInput(fmt::format(
        "the traces come from different plans: only {} of {} predicted and of {} measured compute "
        "ops match on (dp_rank, stage, kind, pass, chunk, model_chunk)",
        matched_compute, pred_compute, meas_compute));
  }
  return Status::Ok();
}

void compare_step(const Trace& predicted, const Trace& measured, CompareReport* report) {
  const auto [pred_first, pred_last] = time_span_ns(predicted);
  const auto [meas_first, meas_last] = time_span_ns(measured);
  report->predicted_origin_ns = pred_first;
  report->measured_origin_ns = meas_first;
  report->predicted_makespan_ns = pred_last - pred_first;
  report->measured_makespan_ns = meas_last - meas_first;
  StepComparison& step = report->step;
  step.predicted_s = step_time_s(predicted, report->predicted_makespan_ns, &step.predicted_from);
  step.measured_s = step_time_s(measured, report->measured_makespan_ns, &step.measured_from);
  step.rel_error = relative_error(step.predicted_s, step.measured_s);
}

// Per (rank, stage): busy time and bubble (1 − busy / makespan, the idle share of the step).
void compare_stages(const Trace& predicted, const Trace& measured, const std::set<StageKey>& grid,
                    CompareReport* report) {
  const auto pred_busy = busy_ns_by_stage(predicted), meas_busy = busy_ns_by_stage(measured);
  auto bubble = [](int64_t busy, int64_t makespan) {
    return makespan > 0 ? 1.0 - static_cast<double>(busy) / static_cast<double>(makespan) : 0.0;
  };
  for (const StageKey& key : grid) {
    StageComparison row;
    row.dp_rank = key.first;
    row.stage = key.second;
    const int64_t pb = pred_busy.contains(key) ? pred_busy.at(key) : 0;
    const int64_t mb = meas_busy.contains(key) ? meas_busy.at(key) : 0;
    row.predicted_busy_s = static_cast<double>(pb) / kNsPerS;
    row.measured_busy_s = static_cast<double>(mb) / kNsPerS;
    row.busy_rel_error = relative_error(static_cast<double>(pb), static_cast<double>(mb));
    row.predicted_bubble = bubble(pb, report->predicted_makespan_ns);
    row.measured_bubble = bubble(mb, report->measured_makespan_ns);
    row.bubble_error = row.predicted_bubble - row.measured_bubble;
    report->stages_table.push_back(row);
  }
}

// Duration errors per pass (compute ops) or kind (the rest): F, F*, R, B first.
void compare_passes(const std::vector<MatchedOp>& matched, CompareReport* report) {
  std::map<std::string, std::vector<const MatchedOp*>> by_label;
  for (const MatchedOp& m : matched) by_label[op_label(m.predicted)].push_back(&m);
  for (const auto& [label, ops] : by_label) report->passes.push_back(pass_errors(label, ops));
  std::stable_sort(report->passes.begin(), report->passes.end(),
                   [](const PassErrors& a, const PassErrors& b) {
                     return pass_rank(a.label) < pass_rank(b.label);
                   });
}

// Peak memory per (rank, stage) where both traces report it, by category where both break it
// down; the worst stage's error by |·|, sign kept.
void compare_memory(const Trace& predicted, const Trace& measured, CompareReport* report) {
  const auto pred_peaks = peaks(predicted), meas_peaks = peaks(measured);
  for (const auto& [key, pred_peak] : pred_peaks) {
    auto it = meas_peaks.find(key);
    if (it == meas_peaks.end()) continue;
    const Peak& meas_peak = it->second;
    MemoryComparison row;
    row.dp_rank = key.first;
    row.stage = key.second;
    row.predicted_bytes = pred_peak.total;
    row.measured_bytes = meas_peak.total;
    row.rel_error = relative_error(static_cast<double>(row.predicted_bytes),
                                   static_cast<double>(row.measured_bytes));
    if (pred_peak.by_category && meas_peak.by_category) {
      for (MemoryCategory category : kAllMemoryCategories) {
        const int64_t p = (*pred_peak.by_category)[category];
        const int64_t m = (*meas_peak.by_category)[category];
        row.categories.push_back(
            {category, p, m, relative_error(static_cast<double>(p), static_cast<double>(m))});
      }
    }
    if (row.rel_error && (!report->peak_memory_rel_error ||
                          std::abs(*row.rel_error) > std::abs(*report->peak_memory_rel_error))) {
      report->peak_memory_rel_error = row.rel_error;
    }
    report->memory.push_back(std::move(row));
  }
}

// The ops that explain most of the difference: largest |pred − meas| duration first.
void rank_top_ops(const std::vector<MatchedOp>& matched, CompareReport* report) {
  std::vector<const MatchedOp*> ranked;
  for (const MatchedOp& m : matched) {
    report->total_abs_diff_ns += std::abs(m.diff_ns());
    if (m.diff_ns() != 0) ranked.push_back(&m);
  }
  std::stable_sort(ranked.begin(), ranked.end(), [](const MatchedOp* a, const MatchedOp* b) {
    return std::abs(a->diff_ns()) > std::abs(b->diff_ns());
  });
  int64_t top_abs_ns = 0;
  for (std::size_t i = 0; i < ranked.size() && i < static_cast<std::size_t>(kTopOps); ++i) {
    report->top_ops.push_back(*ranked[i]);
    top_abs_ns += std::abs(ranked[i]->diff_ns());
  }
  report->top_ops_share =
      report->total_abs_diff_ns > 0
          ? static_cast<double>(top_abs_ns) / static_cast<double>(report->total_abs_diff_ns)
          : 0.0;
}

}  // namespace

StatusOr<CompareReport> compare_traces(const Trace& predicted, const Trace& measured) {
  if (predicted.ops.empty()) return Status::InvalidInput("the predicted trace has no ops");
  if (measured.ops.empty()) return Status::InvalidInput("the measured trace has no ops");
  const std::set<StageKey> grid = stage_grid(predicted);
  if (grid != stage_grid(measured)) {
    return Status::InvalidInput(fmt::format(
        "the traces come from different plans: the predicted trace has {}, the measured {}",
        grid_text(grid), grid_text(stage_grid(measured))));
  }
  CompareReport report;
  std::set<int> ranks, stages;
  for (const auto& [rank, stage] : grid) {
    ranks.insert(rank);
    stages.insert(stage);
  }
  report.ranks = static_cast<int>(ranks.size());
  report.stages = static_cast<int>(stages.size());
  const std::vector<MatchedOp> matched = join_ops(predicted, measured, &report);
  CF_RETURN_IF_ERROR(check_same_plan(predicted, measured, matched));
  compare_step(predicted, measured, &report);
  compare_stages(predicted, measured, grid, &report);
  compare_passes(matched, &report);
  compare_memory(predicted, measured, &report);
  rank_top_ops(matched, &report);
  return report;
}

}  // namespace cf

// The text tables and the JSON form of a CompareReport. Not the comparison (compare.cc) nor
// the HTML page (html_report.cc).
#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "traces/compare.h"

namespace cf {
namespace {

using Json = nlohmann::ordered_json;

Json optional_json(const std::optional<double>& value) {
  return value ? Json(*value) : Json(nullptr);
}

std::string op_text(const TraceOp& op) {
  std::string name = op.kind == OpKind::kCompute ? pass_name(op.pass)
                     : op.pass ? fmt::format("{} {}", op_kind_name(op.kind), pass_name(op.pass))
                               : op_kind_name(op.kind);
  if (op.chunk >= 0) name += fmt::format(" chunk {}", op.chunk);
  if (op.model_chunk != 0) name += fmt::format(".{}", op.model_chunk);
  return name;
}

std::string op_where(const TraceOp& op) {
  return fmt::format("rank {} stage {} {} (op {})", op.dp_rank, op.stage, op_text(op), op.op_id);
}

std::string mib(int64_t bytes) {
  return fmt::format("{:.1f}", static_cast<double>(bytes) / (1 << 20));
}

Json op_json(const MatchedOp& m) {
  const TraceOp& op = m.predicted;
  return Json{
      {"dp_rank", op.dp_rank},
      {"stage", op.stage},
      {"kind", op_kind_name(op.kind)},
      {"pass", pass_name(op.pass)},
      {"chunk", op.chunk},
      {"model_chunk", op.model_chunk},
      {"op_id", op.op_id},
      {"measured_op_id", m.measured.op_id},
      {"predicted_ns", m.predicted.duration_ns()},
      {"measured_ns", m.measured.duration_ns()},
      {"diff_ns", m.diff_ns()},
      {"rel_error", optional_json(relative_error(static_cast<double>(m.predicted.duration_ns()),
                                                 static_cast<double>(m.measured.duration_ns())))}};
}

Json unmatched_json(const Unmatched& unmatched) {
  Json by_label = Json::object();
  for (const auto& [label, count] : unmatched.by_label) by_label[label] = count;
  Json examples = Json::array();
  for (const TraceOp& op : unmatched.examples) {
    examples.push_back({{"dp_rank", op.dp_rank},
                        {"stage", op.stage},
                        {"kind", op_kind_name(op.kind)},
                        {"pass", pass_name(op.pass)},
                        {"chunk", op.chunk},
                        {"model_chunk", op.model_chunk},
                        {"op_id", op.op_id}});
  }
  return Json{{"total", unmatched.total}, {"by_label", by_label}, {"examples", examples}};
}

std::string unmatched_text(const char* side, const Unmatched& unmatched) {
  std::string out = fmt::format("  only in {}: {}", side, unmatched.total);
  std::string sep = " (";
  for (const auto& [label, count] : unmatched.by_label) {
    out += fmt::format("{}{} {}", sep, count, label);
    sep = ", ";
  }
  out += unmatched.by_label.empty() ? "\n" : ")\n";
  for (const TraceOp& op : unmatched.examples) out += fmt::format("    e.g. {}\n", op_where(op));
  return out;
}

Json pass_table_json(const CompareReport& r) {
  Json passes = Json::array();
  for (const PassErrors& p : r.passes) {
    passes.push_back({{"label", p.label},
                      {"matched", p.matched},
                      {"undefined", p.undefined},
                      {"predicted_total_s", p.predicted_total_s},
                      {"measured_total_s", p.measured_total_s},
                      {"median_rel_error", p.median_rel_error},
                      {"p90_abs_rel_error", p.p90_abs_rel_error},
                      {"worst_rel_error", p.worst_rel_error},
                      {"worst_op", op_json(p.worst)}});
  }
  return passes;
}

Json top_ops_json(const CompareReport& r) {
  Json top = Json::array();
  for (const MatchedOp& m : r.top_ops) top.push_back(op_json(m));
  return top;
}

Json unmatched_pair_json(const CompareReport& r) {
  return {{"only_predicted", unmatched_json(r.only_predicted)},
          {"only_measured", unmatched_json(r.only_measured)}};
}

std::string ops_summary_text(const CompareReport& r) {
  std::string out =
      fmt::format("ops: {} matched over {} DP rank(s) × {} stage(s), {} with disagreeing op ids\n",
                  r.matched_ops, r.ranks, r.stages, r.op_id_mismatches);
  out += unmatched_text("predicted", r.only_predicted);
  out += unmatched_text("measured", r.only_measured);
  return out;
}

std::string pass_table_text(const CompareReport& r) {
  std::string out =
      fmt::format("\nop durations by pass / kind (relative error = (pred − meas) / meas)\n");
  out += fmt::format("{:<10} {:>6} {:>12} {:>12} {:>8} {:>8} {:>8}  {}\n", "pass", "ops", "pred s",
                     "meas s", "median", "p90 |e|", "worst", "worst op");
  for (const PassErrors& p : r.passes) {
    out +=
        fmt::format("{:<10} {:>6} {:>12.6f} {:>12.6f} {:>8} {:>8} {:>8}  {}\n", p.label, p.matched,
                    p.predicted_total_s, p.measured_total_s, percent_text(p.median_rel_error),
                    fmt::format("{:.1f}%", 100 * p.p90_abs_rel_error),
                    percent_text(p.worst_rel_error), op_where(p.worst.predicted));
  }
  return out;
}

std::string top_ops_text(const CompareReport& r) {
  std::string out = fmt::format(
      "\nops explaining most of the difference ({:.1f}% of Σ|pred − meas| = {:.6f} s)\n",
      100 * r.top_ops_share, static_cast<double>(r.total_abs_diff_ns) / 1e9);
  out += fmt::format("{:<40} {:>12} {:>12} {:>12} {:>8}\n", "op", "pred s", "meas s", "diff s",
                     "error");
  for (const MatchedOp& m : r.top_ops) {
    out += fmt::format("{:<40} {:>12.6f} {:>12.6f} {:>+12.6f} {:>8}\n", op_where(m.predicted),
                       static_cast<double>(m.predicted.duration_ns()) / 1e9,
                       static_cast<double>(m.measured.duration_ns()) / 1e9,
                       static_cast<double>(m.diff_ns()) / 1e9,
                       percent_text(relative_error(static_cast<double>(m.predicted.duration_ns()),
                                                   static_cast<double>(m.measured.duration_ns()))));
  }
  return out;
}

}  // namespace

std::string compare_ops_json(const CompareReport& r) {
  Json out{{"matched_ops", r.matched_ops},
           {"op_id_mismatches", r.op_id_mismatches},
           {"unmatched", unmatched_pair_json(r)},
           {"pass_table", pass_table_json(r)},
           {"top_ops", top_ops_json(r)},
           {"top_ops_share", r.top_ops_share},
           {"total_abs_diff_ns", r.total_abs_diff_ns}};
  return out.dump(2) + "\n";
}

std::string compare_ops_text(const CompareReport& r) {
  return ops_summary_text(r) + pass_table_text(r) + top_ops_text(r);
}

std::string compare_report_json(const CompareReport& r) {
  Json stages = Json::array();
  for (const StageComparison& s : r.stages_table) {
    stages.push_back({{"dp_rank", s.dp_rank},
                      {"stage", s.stage},
                      {"predicted_busy_s", s.predicted_busy_s},
                      {"measured_busy_s", s.measured_busy_s},
                      {"busy_rel_error", optional_json(s.busy_rel_error)},
                      {"predicted_bubble", s.predicted_bubble},
                      {"measured_bubble", s.measured_bubble},
                      {"bubble_error", s.bubble_error}});
  }
  Json memory = Json::array();
  for (const MemoryComparison& m : r.memory) {
    Json categories = Json::array();
    for (const auto& c : m.categories) {
      categories.push_back({{"category", memory_category_name(c.category)},
                            {"predicted_bytes", c.predicted_bytes},
                            {"measured_bytes", c.measured_bytes},
                            {"rel_error", optional_json(c.rel_error)}});
    }
    memory.push_back({{"dp_rank", m.dp_rank},
                      {"stage", m.stage},
                      {"predicted_bytes", m.predicted_bytes},
                      {"measured_bytes", m.measured_bytes},
                      {"rel_error", optional_json(m.rel_error)},
                      {"categories", categories}});
  }
  Json out{{"step_time_rel_error", optional_json(r.step.rel_error)},
           {"peak_memory_rel_error", optional_json(r.peak_memory_rel_error)},
           {"step_time",
            {{"predicted_s", r.step.predicted_s},
             {"measured_s", r.step.measured_s},
             {"predicted_from", r.step.predicted_from},
             {"measured_from", r.step.measured_from}}},
           {"ranks", r.ranks},
           {"stages", r.stages},
           {"matched_ops", r.matched_ops},
           {"op_id_mismatches", r.op_id_mismatches},
           {"unmatched", unmatched_pair_json(r)},
           {"stage_table", stages},
           {"pass_table", pass_table_json(r)},
           {"peak_memory", memory},
           {"top_ops", top_ops_json(r)},
           {"top_ops_share", r.top_ops_share},
           {"total_abs_diff_ns", r.total_abs_diff_ns}};
  return out.dump(2) + "\n";
}

std::string compare_report_text(const CompareReport& r) {
  std::string out =
      fmt::format("step time: predicted {:.6f} s ({}), measured {:.6f} s ({}), error {}\n",
                  r.step.predicted_s, r.step.predicted_from, r.step.measured_s,
                  r.step.measured_from, percent_text(r.step.rel_error));
  out +=
      fmt::format("peak memory error (worst stage): {}\n", percent_text(r.peak_memory_rel_error));
  out += ops_summary_text(r);

  out +=
      fmt::format("\nper stage (busy = non-communication op time; bubble = 1 − busy / makespan)\n");
  out += fmt::format("{:>4} {:>5}  {:>12} {:>12} {:>8}  {:>8} {:>8} {:>8}\n", "rank", "stage",
                     "busy pred s", "busy meas s", "error", "bub pred", "bub meas", "diff");
  for (const StageComparison& s : r.stages_table) {
    out += fmt::format("{:>4} {:>5}  {:>12.6f} {:>12.6f} {:>8}  {:>7.1f}% {:>7.1f}% {:>+7.1f}pt\n",
                       s.dp_rank, s.stage, s.predicted_busy_s, s.measured_busy_s,
                       percent_text(s.busy_rel_error), 100 * s.predicted_bubble,
                       100 * s.measured_bubble, 100 * s.bubble_error);
  }

  out += pass_table_text(r);

  if (!r.memory.empty()) {
    out += fmt::format("\npeak memory per stage (MiB)\n");
    out += fmt::format("{:>4} {:>5}  {:<12} {:>12} {:>12} {:>8}\n", "rank", "stage", "category",
                       "predicted", "measured", "error");
    for (const MemoryComparison& m : r.memory) {
      out += fmt::format("{:>4} {:>5}  {:<12} {:>12} {:>12} {:>8}\n", m.dp_rank, m.stage, "total",
                         mib(m.predicted_bytes), mib(m.measured_bytes), percent_text(m.rel_error));
      for (const auto& c : m.categories) {
        out += fmt::format("{:>4} {:>5}  {:<12} {:>12} {:>12} {:>8}\n", "", "",
                           memory_category_name(c.category), mib(c.predicted_bytes),
                           mib(c.measured_bytes), percent_text(c.rel_error));
      }
    }
  }

  out += top_ops_text(r);
  return out;
}

std::string percent_text(const std::optional<double>& value) {
  return value ? fmt::format("{:+.1f}%", 100 * *value) : "n/a";
}

}  // namespace cf

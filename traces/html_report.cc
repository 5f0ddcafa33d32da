// The self-contained HTML page of a trace comparison: two timelines on one time axis (predicted
// above, measured below) and the error tables, built with the report module (report_html.h);
// and the timeline of any trace, which the simulate report draws too. Not the numbers
// (compare.cc).
#include "traces/html_report.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <set>
#include <tuple>
#include <utility>
#include <vector>

namespace cf {
namespace {

using cf::report::escape;

std::string op_tip(const TraceOp& op, int64_t origin_ns) {
  return fmt::format(
      "rank {} stage {} · {}{} · chunk {} · model chunk {} · op {}\nstart {:.3f} µs · "
      "duration {:.3f} µs · tokens {} · group {} index {}",
      op.dp_rank, op.stage, op_kind_name(op.kind),
      op.pass ? fmt::format(" {}", pass_name(*op.pass)) : "", op.chunk, op.model_chunk, op.op_id,
      static_cast<double>(op.start_ns - origin_ns) / 1e3,
      static_cast<double>(op.duration_ns()) / 1e3, op.tokens, op.group, op.index);
}

// An op's identity on the critical path (which carries no class split).
auto critical_key(const TraceOp& op) {
  return std::make_tuple(op.dp_rank, op.stage, static_cast<int>(op.kind), op.op_id, op.start_ns,
                         op.end_ns);
}

}  // namespace

std::string bar_kind(const TraceOp& op) {
  switch (op.kind) {
    case OpKind::kCompute:
      break;
    case OpKind::kSend:
      return "send";
    case OpKind::kRecv:
      return "recv";
    case OpKind::kDpReduce:
      return "dp";
    case OpKind::kOptimizer:
      return "opt";
  }
  if (!op.pass) return "other";
  switch (*op.pass) {
    case Pass::kForward:
      return "F";
    case Pass::kForwardKeepKV:
      return "Fs";
    case Pass::kRecompute:
      return "R";
    case Pass::kBackward:
      return "B";
  }
  return "other";
}

std::string trace_timeline_key() {
  return cf::report::timeline_key_html({{"F", "F"},
                                        {"Fs", "F* (forward keeping K/V only)"},
                                        {"R", "R (recompute)"},
                                        {"B", "B"},
                                        {"send", "send (transfer)"},
                                        {"recv", "recv (waiting)"},
                                        {"coll", "TP/CP collectives in the op"},
                                        {"dp", "DP reduction"},
                                        {"opt", "optimizer"}});
}

cf::report::Timeline trace_timeline(const std::string& id, const std::string& caption,
                                    const Trace& trace,
                                    const std::vector<std::pair<int, int>>& lanes,
                                    int64_t origin_ns, int64_t span_ns,
                                    const std::vector<TraceOp>& critical) {
  cf::report::Timeline t;
  t.id = id;
  t.caption = caption;
  t.span_ns = span_ns;
  std::map<std::pair<int, int>, int> lane_of;
  for (const auto& lane : lanes) {
    lane_of.emplace(lane, static_cast<int>(t.lanes.size()));
    t.lanes.push_back(fmt::format("rank {} stage {}", lane.first, lane.second));
  }
  std::set<decltype(critical_key(TraceOp{}))> on_path;
  for (const TraceOp& op : critical) on_path.insert(critical_key(op));
  t.bars.reserve(trace.ops.size());
  for (const TraceOp& op : trace.ops) {
    auto lane = lane_of.find({op.dp_rank, op.stage});
    if (lane == lane_of.end()) continue;
    cf::report::TimelineBar bar;
    bar.lane = lane->second;
    bar.start_ns = op.start_ns - origin_ns;
    bar.end_ns = op.end_ns - origin_ns;
    bar.kind = bar_kind(op);
    bar.low = is_communication(op);
    bar.critical = on_path.count(critical_key(op)) > 0;
    bar.tip = op_tip(op, origin_ns);
    // The TP / CP collectives the op runs, from its class split: drawn from the op's start
    // (where in the op they run is not modelled).
    const int64_t collective_ns =
        op.class_ns ? (*op.class_ns)[static_cast<int>(KernelClass::kCollective)] : 0;
    t.bars.push_back(std::move(bar));
    if (collective_ns > 0) {
      cf::report::TimelineBar coll;
      coll.lane = lane->second;
      coll.start_ns = op.start_ns - origin_ns;
      coll.end_ns = coll.start_ns + collective_ns;
      coll.kind = "coll";
      coll.low = true;
      coll.tip = fmt::format("TP/CP collectives of op {} ({} {}): {:.3f} µs", op.op_id,
                             op_label(op), op.chunk, static_cast<double>(collective_ns) / 1e3);
      t.bars.push_back(std::move(coll));
    }
  }
  return t;
}

namespace {

std::string op_cells(const TraceOp& op) {
  return fmt::format("<td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>", op.dp_rank,
                     op.stage, escape(op_label(op)), op.chunk, op.op_id);
}

std::string tables_html(const CompareReport& r) {
  std::string out =
      "<h2>Per stage</h2>\n<table>\n<tr><th>rank</th><th>stage</th><th>busy pred (s)</th>"
      "<th>busy meas (s)</th><th>error</th><th>bubble pred</th><th>bubble "
      "meas</th><th>diff</th></tr>\n";
  for (const StageComparison& s : r.stages_table) {
    out += fmt::format(
        "<tr><td>{}</td><td>{}</td><td>{:.6f}</td><td>{:.6f}</td><td>{}</td><td>{:.1f}%</"
        "td><td>{:.1f}%</td>"
        "<td>{:+.1f} pt</td></tr>\n",
        s.dp_rank, s.stage, s.predicted_busy_s, s.measured_busy_s, percent_text(s.busy_rel_error),
        100 * s.predicted_bubble, 100 * s.measured_bubble, 100 * s.bubble_error);
  }
  out +=
      "</table>\n<h2>Op durations by pass / "
      "kind</h2>\n<table>\n<tr><th>pass</th><th>ops</th><th>pred (s)</th>"
      "<th>meas (s)</th><th>median</th><th>p90 |e|</th><th>worst</th><th>worst op: "
      "rank</th><th>stage</th>"
      "<th>pass</th><th>chunk</th><th>op id</th></tr>\n";
  for (const PassErrors& p : r.passes) {
    out += fmt::format(
        "<tr><td>{}</td><td>{}</td><td>{:.6f}</td><td>{:.6f}</td><td>{}</td><td>{}</td><td>{}</"
        "td>{}</tr>\n",
        escape(p.label), p.matched, p.predicted_total_s, p.measured_total_s,
        percent_text(p.median_rel_error), fmt::format("{:.1f}%", 100 * p.p90_abs_rel_error),
        percent_text(p.worst_rel_error), op_cells(p.worst.predicted));
  }
  out += "</table>\n";
  if (!r.memory.empty()) {
    out +=
        "<h2>Peak memory per stage "
        "(MiB)</h2>\n<table>\n<tr><th>rank</th><th>stage</th><th>category</th>"
        "<th>predicted</th><th>measured</th><th>error</th></tr>\n";
    auto row = [](const std::string& rank, const std::string& stage, const std::string& name,
                  int64_t pred, int64_t meas, const std::optional<double>& error) {
      return fmt::format(
          "<tr><td>{}</td><td>{}</td><td>{}</td><td>{:.1f}</td><td>{:.1f}</td><td>{}</td></tr>\n",
          rank, stage, escape(name), static_cast<double>(pred) / (1 << 20),
          static_cast<double>(meas) / (1 << 20), percent_text(error));
    };
    for (const MemoryComparison& m : r.memory) {
      out += row(std::to_string(m.dp_rank), std::to_string(m.stage), "total", m.predicted_bytes,
                 m.measured_bytes, m.rel_error);
      for (const auto& c : m.categories)
        out += row("", "", memory_category_name(c.category), c.predicted_bytes, c.measured_bytes,
                   c.rel_error);
    }
    out += "</table>\n";
  }
  out += fmt::format(
      "<h2>Ops explaining most of the difference</h2>\n<p>The top {} explain {:.1f}% of Σ|pred − "
      "meas| = "
      "{:.6f} s.</p>\n<table>\n<tr><th>rank</th><th>stage</th><th>pass</th><th>chunk</th><th>op "
      "id</th>"
      "<th>pred (µs)</th><th>meas (µs)</th><th>diff (µs)</th></tr>\n",
      r.top_ops.size(), 100 * r.top_ops_share, static_cast<double>(r.total_abs_diff_ns) / 1e9);
  for (const MatchedOp& m : r.top_ops) {
    out += fmt::format("<tr>{}<td>{:.3f}</td><td>{:.3f}</td><td>{:+.3f}</td></tr>\n",
                       op_cells(m.predicted), static_cast<double>(m.predicted.duration_ns()) / 1e3,
                       static_cast<double>(m.measured.duration_ns()) / 1e3,
                       static_cast<double>(m.diff_ns()) / 1e3);
  }
  out +=
      "</table>\n<h2>Unmatched ops</h2>\n<table>\n<tr><th>trace</th><th>ops</th><th>by pass / "
      "kind</th></tr>\n";
  for (const auto& [side, unmatched] :
       {std::pair<const char*, const Unmatched*>{"predicted only", &r.only_predicted},
        {"measured only", &r.only_measured}}) {
    std::string labels;
    for (const auto& [label, count] : unmatched->by_label) {
      labels += fmt::format("{}{} {}", labels.empty() ? "" : ", ", count, escape(label));
    }
    out +=
        fmt::format("<tr><td>{}</td><td>{}</td><td>{}</td></tr>\n", side, unmatched->total, labels);
  }
  return out + "</table>\n";
}

// The colour key, both timelines and the tables of a comparison of two traces.
std::string timelines_and_tables(const CompareReport& report, const Trace& predicted,
                                 const Trace& measured) {
  const int64_t span_ns = std::max(report.predicted_makespan_ns, report.measured_makespan_ns);
  std::vector<std::pair<int, int>> lanes;
  for (const StageComparison& s : report.stages_table) lanes.emplace_back(s.dp_rank, s.stage);
  std::string out = "<h2>Timelines</h2>\n" + trace_timeline_key();
  out += cf::report::timeline_html(trace_timeline("predicted", "predicted", predicted, lanes,
                                                  report.predicted_origin_ns, span_ns));
  out += cf::report::timeline_html(
      trace_timeline("measured", "measured", measured, lanes, report.measured_origin_ns, span_ns));
  return out + tables_html(report);
}

// The step, rank and class tables of a comparison with profiles.
std::string profile_tables_html(const ProfileCompareReport& r) {
  std::string out =
      "<h2>Steps</h2>\n<table>\n<tr><th>step</th><th>meas (s)</th><th>error</th></tr>\n";
  for (const ProfileStepTime& s : r.step.steps) {
    out += fmt::format("<tr><td>{}</td><td>{:.6f}</td><td>{}</td></tr>\n", escape(s.name),
                       s.measured_s, percent_text(s.rel_error));
  }
  out +=
      "</table>\n<h2>Per rank</h2>\n<table>\n<tr><th>rank</th><th>dp</th><th>stage</th><th>tp</"
      "th><th>cp</th><th>busy</th><th>busy pred (s)</th><th>busy meas (s)</th><th>error</"
      "th><th>bubble pred</th><th>bubble meas</th><th>diff</th></tr>\n";
  for (const RankComparison& c : r.ranks) {
    out += fmt::format(
        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.6f}</"
        "td><td>{:.6f}</td><td>{}</td><td>{:.1f}%</td><td>{:.1f}%</td><td>{:+.1f} pt</td></tr>\n",
        c.rank, c.place.dp_rank, c.place.stage, c.place.tp_rank, c.place.cp_rank, c.busy_source,
        c.predicted_busy_s, c.measured_busy_s, percent_text(c.busy_rel_error),
        100 * c.predicted_bubble, 100 * c.measured_bubble, 100 * c.bubble_error);
  }
  const ClassComparison& k = r.classes;
  out += "</table>\n<h2>Time by class per step, all ranks</h2>\n";
  if (!k.predicted) out += fmt::format("<p>{}</p>\n", escape(k.predicted_note));
  out += "<table>\n<tr><th>class</th><th>pred (s)</th><th>meas (s)</th><th>error</th></tr>\n";
  for (KernelClass kind : kAllKernelClasses) {
    const int c = static_cast<int>(kind);
    out += fmt::format(
        "<tr><td>{}</td><td>{}</td><td>{:.6f}</td><td>{}</td></tr>\n", kernel_class_name(kind),
        k.predicted ? fmt::format("{:.6f}", k.totals.predicted_s[c]) : "-", k.totals.measured_s[c],
        k.predicted ? percent_text(relative_error(k.totals.predicted_s[c], k.totals.measured_s[c]))
                    : "-");
  }
  return out + "</table>\n";
}

}  // namespace

std::string compare_report_html(const CompareReport& report, const Trace& predicted,
                                const Trace& measured) {
  std::string out = fmt::format(
      "<h1>Predicted vs measured step</h1>\n"
      "<p>Step time: predicted {:.6f} s ({}), measured {:.6f} s ({}), error <b>{}</b>. "
      "Peak memory error (worst stage): <b>{}</b>. {} ops matched, {} only predicted, {} only "
      "measured, "
      "{} with disagreeing op ids.</p>\n",
      report.step.predicted_s, report.step.predicted_from, report.step.measured_s,
      report.step.measured_from, percent_text(report.step.rel_error),
      percent_text(report.peak_memory_rel_error), report.matched_ops, report.only_predicted.total,
      report.only_measured.total, report.op_id_mismatches);
  out += timelines_and_tables(report, predicted, measured);
  return cf::report::page("compare", "chunkflow compare", out);
}

std::string profile_compare_html(const ProfileCompareReport& report) {
  const ProfileLayout& l = report.layout;
  std::string out = fmt::format(
      "<h1>Predicted step vs PyTorch profiles</h1>\n"
      "<p>Layout tp {} × cp {} × dp {} × pp {}. Step time: predicted {:.6f} s ({}), measured "
      "{:.6f} s ({}), error <b>{}</b>.</p>\n",
      l.tp, l.cp, l.dp, l.pp, report.step.predicted_s, report.step.predicted_from,
      report.step.measured_s, escape(report.step.measured_from),
      percent_text(report.step.rel_error));
  out += profile_tables_html(report);
  const MarkedOpsComparison& ops = report.ops;
  if (ops.report) {
    out += fmt::format(
        "<h2>Ops from the chunkflow marks</h2>\n<p>{} ops matched, {} only predicted, {} only "
        "marked. The measured timeline is the marks of one step of one rank per stage, each rank "
        "on its own clock.</p>\n",
        ops.report->matched_ops, ops.report->only_predicted.total, ops.report->only_measured.total);
    out += timelines_and_tables(*ops.report, ops.predicted, ops.measured);
  } else {
    out += fmt::format("<h2>Ops</h2>\n<p>Not compared: {}</p>\n", escape(ops.reason));
  }
  return cf::report::page("compare", "chunkflow compare", out);
}

}  // namespace cf

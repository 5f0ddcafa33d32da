// The self-contained HTML page of a trace comparison: two SVG timelines on one time axis
// (predicted above, measured below) and the error tables. Not the numbers (compare.cc).
#include "traces/html_report.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <tuple>
#include <utility>
#include <vector>

namespace cf {
namespace {

// Geometry of a timeline, in SVG user units (px).
constexpr double kLabelWidth = 120;
constexpr double kPlotWidth = 1080;
constexpr double kRowHeight = 22;
constexpr double kComputeHeight = 14;  // compute ops fill the top of a row
constexpr double kCommHeight = 5;      // communication ops sit below them
constexpr double kAxisHeight = 24;

struct Colour {
  const char* label;
  const char* fill;
};
constexpr Colour kColours[] = {
    {"F", "#4e79a7"},    {"F*", "#76b7b2"},   {"R", "#f28e2b"},         {"B", "#e15759"},
    {"send", "#9c755f"}, {"recv", "#bab0ac"}, {"dp_reduce", "#b07aa1"}, {"optimizer", "#59a14f"}};
constexpr const char* kOtherFill = "#888888";

const char* fill_of(const std::string& label) {
  for (const Colour& c : kColours) {
    if (label == c.label) return c.fill;
  }
  return kOtherFill;
}

// A time unit that keeps axis numbers readable, chosen from the longer makespan.
struct TimeUnit {
  const char* name;
  double ns;
};
TimeUnit unit_for(int64_t span_ns) {
  if (span_ns >= 1'000'000'000) return {"s", 1e9};
  if (span_ns >= 1'000'000) return {"ms", 1e6};
  if (span_ns >= 1'000) return {"µs", 1e3};
  return {"ns", 1};
}

// Tick spacing of 1, 2 or 5 × 10^k ns giving at most ~10 ticks over `span_ns`.
int64_t tick_step_ns(int64_t span_ns) {
  int64_t step = 1;
  while (true) {
    for (int64_t factor : {1, 2, 5}) {
      if (span_ns / (step * factor) <= 10) return step * factor;
    }
    step *= 10;
  }
}

std::string op_title(const TraceOp& op, int64_t origin_ns) {
  return html_escape(
      fmt::format("rank {} stage {} · {}{} · chunk {} · model chunk {} · op {}\nstart {:.3f} µs · "
                  "duration {:.3f} µs · "
                  "tokens {} · group {} index {}",
                  op.dp_rank, op.stage, op_kind_name(op.kind),
                  op.pass ? fmt::format(" {}", pass_name(op.pass)) : "", op.chunk, op.model_chunk,
                  op.op_id, static_cast<double>(op.start_ns - origin_ns) / 1e3,
                  static_cast<double>(op.duration_ns()) / 1e3, op.tokens, op.group, op.index));
}

// One timeline: a row per (rank, stage) of the report, ops at (start − origin) · scale.
std::string timeline_svg(const char* id, const char* caption, const Trace& trace, int64_t origin_ns,
                         const CompareReport& report, int64_t span_ns) {
  std::map<std::pair<int, int>, int> row_of;
  for (const StageComparison& s : report.stages_table) {
    row_of.emplace(std::make_pair(s.dp_rank, s.stage), static_cast<int>(row_of.size()));
  }
  const double scale =
      kPlotWidth / static_cast<double>(std::max<int64_t>(span_ns, 1));  // px per ns
  const double height = kRowHeight * static_cast<double>(row_of.size()) + kAxisHeight;
  std::string svg = fmt::format(
      "<svg id=\"{}\" class=\"timeline\" width=\"{:.0f}\" height=\"{:.0f}\" "
      "viewBox=\"0 0 {:.0f} {:.0f}\">\n<text class=\"caption\" x=\"0\" y=\"12\">{}</text>\n",
      id, kLabelWidth + kPlotWidth + 10, height + 16, kLabelWidth + kPlotWidth + 10, height + 16,
      caption);
  const double top = 16;
  for (const auto& [key, row] : row_of) {
    const double y = top + kRowHeight * row;
    svg += fmt::format(
        "<text class=\"row\" x=\"0\" y=\"{:.2f}\">rank {} stage {}</text>\n<line class=\"lane\" "
        "x1=\"{:.0f}\" "
        "y1=\"{:.2f}\" x2=\"{:.0f}\" y2=\"{:.2f}\"/>\n",
        y + kComputeHeight - 2, key.first, key.second, kLabelWidth, y + kRowHeight - 1,
        kLabelWidth + kPlotWidth, y + kRowHeight - 1);
  }
  // Ops in a fixed order (row, start, key) so the page does not depend on the file's order.
  std::vector<const TraceOp*> ops;
  for (const TraceOp& op : trace.ops) ops.push_back(&op);
  std::stable_sort(ops.begin(), ops.end(), [](const TraceOp* a, const TraceOp* b) {
    return std::tie(a->dp_rank, a->stage, a->start_ns, a->end_ns) <
           std::tie(b->dp_rank, b->stage, b->start_ns, b->end_ns);
  });
  for (const TraceOp* op : ops) {
    const double y = top + kRowHeight * row_of.at({op->dp_rank, op->stage});
    const bool comm = is_communication(*op);
    const double x = kLabelWidth + static_cast<double>(op->start_ns - origin_ns) * scale;
    const double width =
        std::max(0.5, static_cast<double>(op->duration_ns()) * scale);  // visible when tiny
    svg += fmt::format(
        "<rect class=\"op\" x=\"{:.2f}\" y=\"{:.2f}\" width=\"{:.2f}\" height=\"{:.2f}\" "
        "fill=\"{}\">"
        "<title>{}</title></rect>\n",
        x, comm ? y + kComputeHeight + 1 : y, width, comm ? kCommHeight : kComputeHeight,
        fill_of(op_label(*op)), op_title(*op, origin_ns));
  }
  // Time axis, shared by both timelines (same span and scale).
  const TimeUnit unit = unit_for(span_ns);
  const double axis_y = top + kRowHeight * static_cast<double>(row_of.size());
  svg += fmt::format(
      "<line class=\"axis\" x1=\"{:.0f}\" y1=\"{:.2f}\" x2=\"{:.0f}\" y2=\"{:.2f}\"/>\n",
      kLabelWidth, axis_y, kLabelWidth + kPlotWidth, axis_y);
  const int64_t step = tick_step_ns(span_ns);
  for (int64_t t = 0; t <= span_ns; t += step) {
    const double x = kLabelWidth + static_cast<double>(t) * scale;
    svg += fmt::format(
        "<line class=\"axis\" x1=\"{:.2f}\" y1=\"{:.2f}\" x2=\"{:.2f}\" y2=\"{:.2f}\"/><text "
        "class=\"tick\" "
        "x=\"{:.2f}\" y=\"{:.2f}\">{:g} {}</text>\n",
        x, axis_y, x, axis_y + 4, x, axis_y + 16, static_cast<double>(t) / unit.ns, unit.name);
  }
  return svg + "</svg>\n";
}

std::string op_cells(const TraceOp& op) {
  return fmt::format("<td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>", op.dp_rank,
                     op.stage, html_escape(op_label(op)), op.chunk, op.op_id);
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
        html_escape(p.label), p.matched, p.predicted_total_s, p.measured_total_s,
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
          rank, stage, html_escape(name), static_cast<double>(pred) / (1 << 20),
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
      labels += fmt::format("{}{} {}", labels.empty() ? "" : ", ", count, html_escape(label));
    }
    out +=
        fmt::format("<tr><td>{}</td><td>{}</td><td>{}</td></tr>\n", side, unmatched->total, labels);
  }
  return out + "</table>\n";
}

constexpr const char* kStyle =
    R"(body { font: 13px/1.4 system-ui, sans-serif; margin: 24px; color: #222; }
table { border-collapse: collapse; margin: 8px 0 16px; }
th, td { border: 1px solid #ccc; padding: 2px 8px; text-align: right; }
th { background: #f2f2f2; }
svg.timeline { display: block; margin: 4px 0; }
svg text { font: 11px system-ui, sans-serif; fill: #333; }
svg text.caption { font-weight: bold; }
svg text.tick { text-anchor: middle; }
svg line.lane { stroke: #eee; }
svg line.axis { stroke: #666; }
rect.op { stroke: #fff; stroke-width: 0.3; }
rect.op:hover { stroke: #000; stroke-width: 1; }
.key { display: inline-block; width: 12px; height: 12px; margin: 0 4px 0 12px; }
)";

}  // namespace

std::string html_escape(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

namespace {

std::string page_head() {
  return fmt::format(
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>chunkflow "
      "compare</title>\n"
      "<style>\n{}</style>\n</head>\n<body>\n",
      kStyle);
}

// The colour key, both timelines and the tables of a comparison of two traces.
std::string timelines_and_tables(const CompareReport& report, const Trace& predicted,
                                 const Trace& measured) {
  const int64_t span_ns = std::max(report.predicted_makespan_ns, report.measured_makespan_ns);
  std::string out = "<h2>Timelines</h2>\n<p>";
  for (const Colour& c : kColours) {
    out += fmt::format("<span class=\"key\" style=\"background:{}\"></span>{}", c.fill,
                       html_escape(c.label));
  }
  out += "</p>\n";
  out += timeline_svg("predicted", "predicted", predicted, report.predicted_origin_ns, report,
                      span_ns);
  out += timeline_svg("measured", "measured", measured, report.measured_origin_ns, report, span_ns);
  return out + tables_html(report);
}

// The step, rank and class tables of a comparison with profiles.
std::string profile_tables_html(const ProfileCompareReport& r) {
  std::string out =
      "<h2>Steps</h2>\n<table>\n<tr><th>step</th><th>meas (s)</th><th>error</th></tr>\n";
  for (const ProfileStepTime& s : r.step.steps) {
    out += fmt::format("<tr><td>{}</td><td>{:.6f}</td><td>{}</td></tr>\n", html_escape(s.name),
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
  if (!k.predicted) out += fmt::format("<p>{}</p>\n", html_escape(k.predicted_note));
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
  std::string out =
      page_head() +
      fmt::format(
          "<h1>Predicted vs measured step</h1>\n"
          "<p>Step time: predicted {:.6f} s ({}), measured {:.6f} s ({}), error <b>{}</b>. "
          "Peak memory error (worst stage): <b>{}</b>. {} ops matched, {} only predicted, {} only "
          "measured, "
          "{} with disagreeing op ids.</p>\n",
          report.step.predicted_s, report.step.predicted_from, report.step.measured_s,
          report.step.measured_from, percent_text(report.step.rel_error),
          percent_text(report.peak_memory_rel_error), report.matched_ops,
          report.only_predicted.total, report.only_measured.total, report.op_id_mismatches);
  out += timelines_and_tables(report, predicted, measured);
  return out + "</body>\n</html>\n";
}

std::string profile_compare_html(const ProfileCompareReport& report) {
  const ProfileLayout& l = report.layout;
  std::string out =
      page_head() +
      fmt::format(
          "<h1>Predicted step vs PyTorch profiles</h1>\n"
          "<p>Layout tp {} × cp {} × dp {} × pp {}. Step time: predicted {:.6f} s ({}), measured "
          "{:.6f} s ({}), error <b>{}</b>.</p>\n",
          l.tp, l.cp, l.dp, l.pp, report.step.predicted_s, report.step.predicted_from,
          report.step.measured_s, html_escape(report.step.measured_from),
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
    out += fmt::format("<h2>Ops</h2>\n<p>Not compared: {}</p>\n", html_escape(ops.reason));
  }
  return out + "</body>\n</html>\n";
}

}  // namespace cf

// The simulate report (report_html.h): the figures of each simulated job, from its trace and
// metrics, built with the report module.
#include "sim/report_html.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <set>

#include "core/check.h"
#include "traces/html_report.h"
#include "traces/report_html.h"

namespace cf {
namespace {

using report::escape;
using report::format_value;
using report::Unit;

int64_t makespan_ns(const Trace& trace) {
  int64_t end = 0;
  for (const TraceOp& op : trace.ops) end = std::max(end, op.end_ns);
  return end;
}

std::string verdict(const SimMetrics& m) {
  if (m.feasible) {
    return fmt::format("fits: peak {} + {} reserved of {} per GPU",
                       format_bytes(worst_stage_peak_bytes(m)), format_bytes(m.reserved_bytes),
                       format_bytes(m.memory_capacity_bytes));
  }
  return "does not fit: " + m.infeasible_reason;
}

// The headline table: one row per run.
std::string summary_html(const std::vector<SimulatedJob>& runs) {
  std::vector<std::vector<std::string>> rows;
  for (const SimulatedJob& run : runs) {
    const SimMetrics& m = run.result.metrics;
    rows.push_back({escape(run.label), escape(run.job.origin),
                    fmt::format("{:.4g} s", m.step_time_s), format_rate(m.tokens_per_s),
                    fmt::format("{:.1f}%", 100 * m.mfu),
                    fmt::format("{:.1f}%", 100 * m.bubble_ratio),
                    fmt::format("{:.1f}%", 100 * m.recompute_share),
                    format_bytes(worst_stage_peak_bytes(m)), m.feasible ? "yes" : "<b>no</b>"});
  }
  std::string out = report::table_html(
      "summary",
      {"run", "job", "step time", "tokens/s", "MFU", "bubble", "recompute", "peak memory", "fits"},
      rows, "ll");
  if (runs.size() == 2) {
    const SimMetrics& a = runs[0].result.metrics;
    const SimMetrics& b = runs[1].result.metrics;
    if (a.step_time_s > 0 && b.step_time_s > 0) {
      out +=
          fmt::format("<p id=\"speedup\">{} takes {:.3g}× the step time of {}{}.</p>\n",
                      escape(runs[1].label), b.step_time_s / a.step_time_s, escape(runs[0].label),
                      a.feasible && b.feasible ? ""
                                               : " (a run that does not fit is shown for "
                                                 "its times only)");
    }
  }
  return out;
}

// Busy compute, recompute, exposed TP / CP communication, bubble and the DP / optimizer tail of
// each stage: a bar adds up to the step time.
std::string shares_html(const std::string& id, const SimMetrics& m) {
  report::StackedBars bars;
  bars.id = id;
  bars.caption = "Where each stage's step time goes (mean over DP ranks)";
  bars.parts = {"compute", "recompute", "TP/CP communication", "bubble",
                "DP reduction + optimizer"};
  bars.unit = Unit::kTimeNs;
  std::vector<std::vector<std::string>> rows;
  for (const StageMetrics& s : m.stages) {
    const double pipeline = m.pipeline_time_s;
    const double bubble = s.bubble_ratio * pipeline;
    const double compute = std::max(0.0, s.busy_s - s.recompute_s - s.tp_comm_s);
    bars.bars.push_back(fmt::format("stage {}", s.stage));
    bars.values.push_back({compute * 1e9, s.recompute_s * 1e9, s.tp_comm_s * 1e9, bubble * 1e9,
                           (s.dp_reduce_s + s.optimizer_s) * 1e9});
    rows.push_back({std::to_string(s.stage), fmt::format("{:.4g}", s.busy_s),
                    fmt::format("{:.1f}%", pipeline > 0 ? 100 * s.recompute_s / pipeline : 0),
                    fmt::format("{:.1f}%", pipeline > 0 ? 100 * s.tp_comm_s / pipeline : 0),
                    fmt::format("{:.1f}%", 100 * s.bubble_ratio),
                    fmt::format("{:.4g}", s.dp_reduce_s + s.optimizer_s)});
  }
  bars.limit = report::RefLine{m.step_time_s * 1e9, "step time"};
  return report::stacked_bars_html(bars) +
         report::table_html(
             id + "-table",
             {"stage", "busy (s)", "recompute", "TP/CP comm", "bubble", "DP + optimizer (s)"},
             rows);
}

// Memory over time per stage (the DP rank with the stage's highest peak) against the capacity.
std::string memory_html(const std::string& id, const Trace& trace, const SimMetrics& m) {
  std::map<int, std::pair<int, int64_t>> rank_of_stage;  // stage → (dp rank, its peak)
  for (const auto& [place, breakdown] : trace.peak_memory) {
    auto [it, added] = rank_of_stage.try_emplace(place.second, place.first, breakdown.total());
    if (!added && breakdown.total() > it->second.second)
      it->second = {place.first, breakdown.total()};
  }
  std::map<std::pair<int, int>, std::vector<std::pair<double, double>>> points;
  for (const MemorySample& sample : trace.memory) {
    if (sample.category) continue;
    auto it = rank_of_stage.find(sample.stage);
    if (it == rank_of_stage.end() || it->second.first != sample.dp_rank) continue;
    points[{sample.stage, sample.dp_rank}].emplace_back(static_cast<double>(sample.time_ns),
                                                        static_cast<double>(sample.bytes));
  }
  report::LineChart chart;
  chart.id = id;
  chart.caption = "Memory over the step per stage (the DP rank with the stage's highest peak)";
  chart.x_title = "time";
  chart.y_title = "bytes per GPU";
  chart.x_unit = Unit::kTimeNs;
  chart.y_unit = Unit::kBytes;
  chart.width = 1220;
  chart.height = 300;
  for (auto& [place, series_points] : points) {
    std::stable_sort(series_points.begin(), series_points.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    report::Series series;
    series.name = fmt::format("stage {} (rank {})", place.first, place.second);
    series.points = std::move(series_points);
    series.steps = true;
    chart.series.push_back(std::move(series));
  }
  const double capacity = static_cast<double>(m.memory_capacity_bytes);
  chart.h_lines.push_back({capacity, "HBM " + format_bytes(m.memory_capacity_bytes)});
  if (m.reserved_bytes > 0) {
    chart.h_lines.push_back(
        {capacity - static_cast<double>(m.reserved_bytes),
         fmt::format("usable: HBM − {} reserved", format_bytes(m.reserved_bytes))});
  }
  return report::line_chart_html(chart);
}

// The breakdown at each stage's peak (max over DP ranks), with the reserve, against the capacity.
std::string breakdown_html(const std::string& id, const SimMetrics& m) {
  report::StackedBars bars;
  bars.id = id;
  bars.caption = "Memory at each stage's peak, by category";
  for (MemoryCategory c : kAllMemoryCategories) bars.parts.push_back(memory_category_name(c));
  bars.parts.push_back("reserved");
  bars.unit = Unit::kBytes;
  bars.height = 260;
  for (const StageMetrics& s : m.stages) {
    bars.bars.push_back(fmt::format("stage {}", s.stage));
    std::vector<double> values;
    for (MemoryCategory c : kAllMemoryCategories)
      values.push_back(static_cast<double>(s.peak_breakdown[c]));
    values.push_back(static_cast<double>(m.reserved_bytes));
    bars.values.push_back(std::move(values));
  }
  bars.limit = report::RefLine{static_cast<double>(m.memory_capacity_bytes), "HBM"};
  return report::stacked_bars_html(bars);
}

std::string run_html(const SimulatedJob& run, int index, int64_t span_ns) {
  const SimMetrics& m = run.result.metrics;
  CF_CHECK(run.result.trace.has_value()) << "simulate_report_html needs a trace";
  const Trace& trace = *run.result.trace;
  const std::string id = fmt::format("r{}", index);
  std::set<std::pair<int, int>> places;
  std::set<int> ranks, stages;
  for (const TraceOp& op : trace.ops) {
    places.emplace(op.dp_rank, op.stage);
    ranks.insert(op.dp_rank);
    stages.insert(op.stage);
  }
  std::string out = fmt::format(
      "<section class=\"run\" id=\"{}\">\n<h2>{}: {}</h2>\n<p class=\"verdict\">Step time "
      "<b>{:.6g} s</b>, {} tokens/s, MFU {:.1f}%, bubbles {:.1f}%, recompute {:.1f}% of busy time; "
      "<b>{}</b>.</p>\n",
      id, escape(run.label), escape(run.job.origin), m.step_time_s, format_rate(m.tokens_per_s),
      100 * m.mfu, 100 * m.bubble_ratio, 100 * m.recompute_share, escape(verdict(m)));
  out += report::timeline_html(trace_timeline(
      id + "-timeline",
      fmt::format("Timeline of one step: {} DP rank{} × {} stage{}, the {}-step critical path "
                  "outlined (the TP and CP ranks of a stage run the same ops)",
                  ranks.size(), ranks.size() == 1 ? "" : "s", stages.size(),
                  stages.size() == 1 ? "" : "s", m.critical_path.size()),
      trace, {places.begin(), places.end()}, 0, span_ns, m.critical_path));
  out += shares_html(id + "-shares", m);
  out += memory_html(id + "-memory", trace, m);
  out += breakdown_html(id + "-breakdown", m);
  out += fmt::format("<h3>Metrics</h3>\n<pre>{}</pre>\n<h3>Resolved job</h3>\n<pre>{}</pre>\n",
                     escape(metrics_table(m)), escape(resolved_yaml(run.job)));
  return out + "</section>\n";
}

}  // namespace

std::string simulate_report_html(const std::vector<SimulatedJob>& runs) {
  CF_CHECK(!runs.empty() && runs.size() <= 2);
  int64_t span_ns = 1;
  for (const SimulatedJob& run : runs) {
    CF_CHECK(run.result.trace.has_value()) << "simulate_report_html needs a trace";
    span_ns = std::max(span_ns, makespan_ns(*run.result.trace));
  }
  std::string body = fmt::format("<h1>chunkflow simulate: {}</h1>\n", escape(runs[0].job.origin));
  body += summary_html(runs);
  body += "<h2>Timelines</h2>\n" + trace_timeline_key();
  body +=
      "<p class=\"controls\"><label><input type=\"checkbox\" id=\"cp-only\"> show the critical "
      "path only</label> <span class=\"note\">Wheel over a timeline to zoom, drag to pan, "
      "double-click to reset; hover an op for its details.";
  if (runs.size() > 1) body += " Both timelines share one time axis.";
  body += "</span></p>\n";
  for (size_t i = 0; i < runs.size(); ++i) body += run_html(runs[i], static_cast<int>(i), span_ns);
  return report::page("simulate", "chunkflow simulate: " + runs[0].job.origin, body);
}

}  // namespace cf

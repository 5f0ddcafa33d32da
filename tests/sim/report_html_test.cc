// The simulate report (sim/report_html.h) against the simulation it shows: a lane per (DP rank,
// stage), a bar per op of the trace (and per op's TP collectives), every step of the critical
// path outlined, a memory curve and a breakdown bar per stage against the capacity, two runs on
// one time axis, the same bytes on a rerun; on odd batches and layouts.
#include "sim/report_html.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <regex>

#include "tests/sim/simulator_test_util.h"
#include "tests/support/html_checks.h"

namespace cf {
namespace {

using test::count_of;

SimulatedJob report_run(const Job& job, const std::string& label) {
  SimOptions options;
  options.record_trace = true;
  options.record_memory_timeline = true;
  options.critical_path = true;
  StatusOr<SimResult> result = simulate_job(job, options);
  CF_CHECK(result.ok()) << result.status().message();
  return {label, job, std::move(*result)};
}

// The part of `html` from the element with id `id` to the end of its figure.
std::string report_figure(const std::string& html, const std::string& id) {
  const size_t at = html.find("id=\"" + id + "\"");
  if (at == std::string::npos) return "";
  return html.substr(at, html.find("</figure>", at) - at);
}

struct ReportShape {
  int tp, pp, dp;
  std::string strategy, lengths;
};

class SimulateReport : public testing::TestWithParam<ReportShape> {};

TEST_P(SimulateReport, ShowsEveryOpLaneAndStepOfTheCriticalPath) {
  const ReportShape& s = GetParam();
  const Job job = test::tiny_job(s.tp, s.pp, s.dp, "", s.strategy, s.lengths, "analytical");
  const SimulatedJob run = report_run(job, "ChunkFlow");
  const std::string html = simulate_report_html({run});
  EXPECT_EQ(test::self_contained_problem(html), "");
  EXPECT_EQ(html, simulate_report_html({run}));  // deterministic

  const Trace& trace = *run.result.trace;
  size_t collective_bars = 0;
  for (const TraceOp& op : trace.ops) {
    collective_bars +=
        op.class_ns && (*op.class_ns)[static_cast<int>(KernelClass::kCollective)] > 0;
  }
  EXPECT_EQ(s.tp > 1, collective_bars > 0);  // TP collectives only with tp > 1
  const std::string timeline = report_figure(html, "r0-timeline");
  ASSERT_FALSE(timeline.empty());
  EXPECT_NE(timeline.find(fmt::format("data-lanes=\"{}\"", s.pp * s.dp)), std::string::npos);
  EXPECT_EQ(count_of(timeline, "<rect x="), trace.ops.size() + collective_bars);
  // Every step of the critical path is an op of the trace, outlined once.
  const SimMetrics& m = run.result.metrics;
  ASSERT_FALSE(m.critical_path.empty());
  EXPECT_EQ(count_of(timeline, " c\"/>"), m.critical_path.size());
  EXPECT_EQ(nlohmann::json::parse(test::tips_json_after(timeline, 0)).size(),
            trace.ops.size() + collective_bars);

  // Memory: a curve per stage against the capacity; a breakdown bar per stage.
  const std::string memory = report_figure(html, "r0-memory");
  EXPECT_EQ(count_of(memory, "<path class=\"series"), static_cast<size_t>(s.pp));
  EXPECT_NE(memory.find(">HBM " + format_bytes(m.memory_capacity_bytes) + "</text>"),
            std::string::npos);
  const std::string breakdown = report_figure(html, "r0-breakdown");
  for (int stage = 0; stage < s.pp; ++stage) {
    EXPECT_NE(breakdown.find(fmt::format(">stage {}</text>", stage)), std::string::npos);
  }
  // The shares add up to each stage's step: a bar per stage, a table row per stage.
  EXPECT_EQ(count_of(report_figure(html, "r0-shares"), ">stage "), static_cast<size_t>(s.pp));
  EXPECT_NE(html.find("<pre>model: tiny"), std::string::npos);  // the resolved job
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, SimulateReport,
    testing::Values(
        ReportShape{1, 2, 1, "{kind: chunkflow, chunk_size: 64, k: 1}", "300, 77, 513"},
        ReportShape{2, 4, 3, "{kind: chunkflow, chunk_size: 40, k: 2}", "131, 7, 29, 88, 250, 61"},
        ReportShape{1, 1, 3, "{kind: baseline, micro_batching: pack}", "5, 9, 300, 41"},
        ReportShape{2, 4, 1, "{kind: baseline, micro_batching: per_sequence}", "97, 33, 12"}));

TEST(SimulateReportPair, BothRunsOnOneTimeAxisWithTheSpeedup) {
  const Job chunkflow = test::tiny_job(1, 2, 1, "", "{kind: chunkflow, chunk_size: 32, k: 1}",
                                       "200, 31, 9", "analytical");
  const Job baseline =
      test::tiny_job(1, 2, 1, "recompute: full", "{kind: baseline, micro_batching: pack}",
                     "200, 31, 9", "analytical");
  const std::vector<SimulatedJob> runs = {report_run(chunkflow, "ChunkFlow"),
                                          report_run(baseline, "Megatron-style baseline")};
  const std::string html = simulate_report_html(runs);
  const std::string first = report_figure(html, "r0-timeline"),
                    second = report_figure(html, "r1-timeline");
  ASSERT_FALSE(first.empty());
  ASSERT_FALSE(second.empty());
  EXPECT_LT(html.find("id=\"r0-timeline\""), html.find("id=\"r1-timeline\""));  // one above
  const std::regex span("data-span=\"([0-9]+)\"");
  std::smatch a, b;
  ASSERT_TRUE(std::regex_search(first, a, span));
  ASSERT_TRUE(std::regex_search(second, b, span));
  EXPECT_EQ(a[1], b[1]);
  int64_t end = 0;
  for (const SimulatedJob& run : runs) {
    for (const TraceOp& op : run.result.trace->ops) end = std::max(end, op.end_ns);
  }
  EXPECT_EQ(std::stoll(a[1]), end);
  EXPECT_NE(html.find(fmt::format(
                "takes {:.3g}× the step time of ChunkFlow",
                runs[1].result.metrics.step_time_s / runs[0].result.metrics.step_time_s)),
            std::string::npos);
  EXPECT_EQ(count_of(html, "<section class=\"run\""), 2u);
}

TEST(SimulateReportPair, AJobThatDoesNotFitSaysSoWithItsReason) {
  const Job job =
      test::tiny_job(1, 2, 1, "", "{kind: baseline, micro_batching: pack}", "100, 3", "analytical");
  SimulatedJob run = report_run(job, "Megatron-style baseline");
  EXPECT_NE(simulate_report_html({run}).find("<b>fits: peak "), std::string::npos);
  run.result.metrics.feasible = false;
  run.result.metrics.infeasible_reason = "stage 1 needs <81 GiB> of 80 GiB";
  const std::string html = simulate_report_html({run});
  EXPECT_NE(html.find("<b>does not fit: stage 1 needs &lt;81 GiB&gt; of 80 GiB</b>"),
            std::string::npos);
  EXPECT_NE(html.find("<td><b>no</b></td>"), std::string::npos);
}

}  // namespace
}  // namespace cf

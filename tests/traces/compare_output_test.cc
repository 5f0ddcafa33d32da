// The JSON and HTML forms of a comparison: the keys a script reads, the values they carry,
// one self-contained page with two timelines and one rect per op, byte-identical on reruns.
#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <random>

#include "tests/support/compare_fixture.h"
#include "traces/compare.h"
#include "traces/html_report.h"

namespace cf {
namespace {

using test::synthetic_trace;
using test::TraceShape;

int64_t measured_duration(const TraceOp& op, int64_t planned_ns) {
  if (op.pass == Pass::kBackward) return planned_ns * 11 / 10;
  return op.chunk == 2 && op.pass == Pass::kForward && op.stage == 1 ? 3 * planned_ns : planned_ns;
}

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

class CompareOutput : public ::testing::Test {
 protected:
  void SetUp() override {
    predicted_ = synthetic_trace(shape_, "predicted");
    measured_ = synthetic_trace(shape_, "measured", measured_duration);
    for (TraceOp& op : measured_.ops) {  // a measured clock that does not start at 0
      op.start_ns += 1'000'000'007;
      op.end_ns += 1'000'000'007;
    }
    predicted_.peak_memory[{0, 0}] = {.weights = 4 << 20, .activations = 3 << 20};  // 7 MiB
    measured_.peak_memory[{0, 0}] = {.weights = 4 << 20, .activations = 4 << 20};   // 8 MiB
    report_ = *compare_traces(predicted_, measured_);
  }
  const TraceShape shape_{1, 3, 4};
  Trace predicted_, measured_;
  CompareReport report_;
};

TEST_F(CompareOutput, JsonCarriesHeadlineErrorsAndTables) {
  const nlohmann::json json = nlohmann::json::parse(compare_report_json(report_));
  for (const char* key : {"step_time_rel_error", "peak_memory_rel_error", "step_time",
                          "stage_table", "pass_table", "peak_memory", "top_ops", "top_ops_share",
                          "unmatched", "matched_ops", "op_id_mismatches"}) {
    EXPECT_TRUE(json.contains(key)) << key;
  }
  EXPECT_DOUBLE_EQ(json["step_time_rel_error"].get<double>(), *report_.step.rel_error);
  EXPECT_DOUBLE_EQ(json["peak_memory_rel_error"].get<double>(), -1.0 / 8.0);  // (7 − 8) / 8
  EXPECT_EQ(json["stage_table"].size(), 3u);
  EXPECT_EQ(json["pass_table"][0]["label"], "F");
  EXPECT_DOUBLE_EQ(json["pass_table"][0]["worst_rel_error"].get<double>(), -2.0 / 3.0);
  EXPECT_EQ(json["pass_table"][0]["worst_op"]["stage"], 1);
  EXPECT_EQ(json["pass_table"][0]["worst_op"]["chunk"], 2);
  EXPECT_EQ(json["pass_table"][1]["label"], "B");
  EXPECT_DOUBLE_EQ(json["pass_table"][1]["median_rel_error"].get<double>(), -1.0 / 11.0);
  EXPECT_EQ(json["peak_memory"][0]["categories"].size(), 6u);
  EXPECT_EQ(json["peak_memory"][0]["categories"][3]["category"], "activations");
  EXPECT_EQ(json["top_ops"][0]["diff_ns"], report_.top_ops[0].diff_ns());
  EXPECT_EQ(json["unmatched"]["only_measured"]["total"], 0);
  // Without memory data the headline is null, not a made-up number.
  predicted_.peak_memory.clear();
  const nlohmann::json without =
      nlohmann::json::parse(compare_report_json(*compare_traces(predicted_, measured_)));
  EXPECT_TRUE(without["peak_memory_rel_error"].is_null());
}

TEST_F(CompareOutput, TextHasEveryTable) {
  const std::string text = compare_report_text(report_);
  for (const char* heading : {"step time:", "per stage", "op durations by pass",
                              "peak memory per stage", "ops explaining most of the difference"}) {
    EXPECT_NE(text.find(heading), std::string::npos) << heading;
  }
  EXPECT_NE(text.find("-66.7%"), std::string::npos) << text;  // the 3× op, (d − 3d) / 3d
  EXPECT_NE(text.find("rank 0 stage 1 F chunk 2"), std::string::npos) << text;
}

TEST_F(CompareOutput, HtmlIsSelfContainedWithTwoTimelines) {
  const std::string html = compare_report_html(report_, predicted_, measured_);
  EXPECT_EQ(html.rfind("<!DOCTYPE html>", 0), 0u);
  EXPECT_EQ(count(html, "<svg"), 2u);
  EXPECT_EQ(count(html, "</svg>"), 2u);
  EXPECT_EQ(count(html, "<rect class=\"op\""), predicted_.ops.size() + measured_.ops.size());
  EXPECT_EQ(count(html, "<title>"),
            predicted_.ops.size() + measured_.ops.size() + 1);  // + the page's
  EXPECT_EQ(count(html, "<table>"), count(html, "</table>"));
  EXPECT_EQ(count(html, "<tr>"), count(html, "</tr>"));
  for (const char* external : {"http:", "https:", "<script", "src=", "@import", "url("}) {
    EXPECT_EQ(html.find(external), std::string::npos) << external;
  }
  // Predicted above measured; both on one axis: the same last tick label.
  const std::size_t predicted_at = html.find("<svg id=\"predicted\""),
                    measured_at = html.find("<svg id=\"measured\"");
  ASSERT_NE(predicted_at, std::string::npos);
  ASSERT_NE(measured_at, std::string::npos);
  EXPECT_LT(predicted_at, measured_at);
  const std::string predicted_svg = html.substr(predicted_at, measured_at - predicted_at);
  const std::string measured_svg =
      html.substr(measured_at, html.find("</svg>", measured_at) - measured_at);
  const std::string axis_start = "<line class=\"axis\"";
  EXPECT_EQ(predicted_svg.substr(predicted_svg.find(axis_start)),
            measured_svg.substr(measured_svg.find(axis_start)) + "</svg>\n");
  // The measured clock's offset is removed: its first op starts at the axis origin (x = 120).
  EXPECT_NE(measured_svg.find("<rect class=\"op\" x=\"120.00\""), std::string::npos);
}

TEST_F(CompareOutput, HtmlIsDeterministicAndIndependentOfOpOrder) {
  const std::string first = compare_report_html(report_, predicted_, measured_);
  EXPECT_EQ(compare_report_html(report_, predicted_, measured_), first);
  for (unsigned seed : {3u, 81u}) {
    Trace shuffled = measured_;
    std::mt19937 rng(seed);
    std::shuffle(shuffled.ops.begin(), shuffled.ops.end(), rng);
    EXPECT_EQ(compare_report_html(*compare_traces(predicted_, shuffled), predicted_, shuffled),
              first);
  }
}

// Trace text reaches the page only through typed names; what the page writes is escaped.
TEST(CompareHtml, Escape) {
  EXPECT_EQ(html_escape("<'&>"), "&lt;&#39;&amp;&gt;");
  EXPECT_EQ(html_escape("a<b&\"c\""), "a&lt;b&amp;&quot;c&quot;");
}

}  // namespace
}  // namespace cf

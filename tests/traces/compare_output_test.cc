// The JSON and HTML forms of a comparison: the keys a script reads, the values they carry,
// one self-contained page with two timelines and one rect per op, byte-identical on reruns.
#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <random>

#include "tests/support/compare_fixture.h"
#include "tests/support/html_checks.h"
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
  EXPECT_EQ(test::self_contained_problem(html), "");
  EXPECT_EQ(count(html, "<figure class=\"tl\""), 2u);
  // A bar per op (the synthetic traces have no class split: no collective bars), a hover text
  // per bar.
  EXPECT_EQ(count(html, "<rect x="), predicted_.ops.size() + measured_.ops.size());
  const std::size_t predicted_at = html.find("<figure class=\"tl\" id=\"predicted\""),
                    measured_at = html.find("<figure class=\"tl\" id=\"measured\"");
  ASSERT_NE(predicted_at, std::string::npos);
  ASSERT_NE(measured_at, std::string::npos);
  EXPECT_LT(predicted_at, measured_at);  // predicted above measured
  for (std::size_t at : {predicted_at, measured_at}) {
    const nlohmann::json tips = nlohmann::json::parse(test::tips_json_after(html, at));
    EXPECT_EQ(tips.size(), predicted_.ops.size());
    EXPECT_NE(tips[0].get<std::string>().find("rank 0 stage 0"), std::string::npos) << tips[0];
  }
  // Both on one axis: the same span, so the same ticks.
  const std::string predicted_fig = html.substr(predicted_at, measured_at - predicted_at);
  const std::string measured_fig =
      html.substr(measured_at, html.find("</figure>", measured_at) - measured_at);
  const auto axis = [](const std::string& fig) {
    const std::size_t at = fig.find("<g class=\"taxis\"");
    return fig.substr(at, fig.find("</g>", at) - at);
  };
  EXPECT_EQ(axis(predicted_fig), axis(measured_fig));
  const auto span = [](const std::string& fig) {
    const std::size_t at = fig.find("data-span=\"") + 11;
    return fig.substr(at, fig.find('"', at) - at);
  };
  EXPECT_EQ(span(predicted_fig), span(measured_fig));
  EXPECT_EQ(span(predicted_fig),
            std::to_string(std::max(report_.predicted_makespan_ns, report_.measured_makespan_ns)));
  // The measured clock's offset is removed: its first op starts at the axis origin.
  EXPECT_NE(measured_fig.find("<rect x=\"0.00\""), std::string::npos);
  EXPECT_EQ(count(html, "<table>"), count(html, "</table>"));
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
  EXPECT_EQ(report::escape("<'&>"), "&lt;&#39;&amp;&gt;");
  EXPECT_EQ(report::escape("a<b&\"c\""), "a&lt;b&amp;&quot;c&quot;");
}

}  // namespace
}  // namespace cf

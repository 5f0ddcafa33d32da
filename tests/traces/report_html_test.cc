// The report module (traces/report_html.h): where each figure puts what it is given — bar
// positions on the time axis, tips in bar order, series paths, reference lines, heat colours on
// the ratio scale, stacked heights — that the page is self-contained and the same bytes for the
// same input in any order, on random shapes and seeds as well as hand-checked ones.
#include "traces/report_html.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <random>
#include <regex>
#include <set>

#include "tests/support/html_checks.h"

namespace cf::report {
namespace {

using test::count_of;

// The value of attribute `name` of every element `tag` in `html`, in order.
std::vector<std::string> attributes(const std::string& html, const std::string& tag,
                                    const std::string& name) {
  std::vector<std::string> out;
  const std::regex element("<" + tag + "\\b[^>]*\\b" + name + "=\"([^\"]*)\"");
  for (auto it = std::sregex_iterator(html.begin(), html.end(), element);
       it != std::sregex_iterator(); ++it) {
    out.push_back((*it)[1]);
  }
  return out;
}

TEST(ReportFormat, ValuesInTheirUnits) {
  EXPECT_EQ(format_value(Unit::kTimeNs, 1.5e9), "1.5 s");
  EXPECT_EQ(format_value(Unit::kTimeNs, 2.25e6), "2.25 ms");
  EXPECT_EQ(format_value(Unit::kTimeNs, 999), "999 ns");
  EXPECT_EQ(format_value(Unit::kBytes, 3.0 * (1 << 30)), "3.00 GiB");
  EXPECT_EQ(format_value(Unit::kRate, 247500), "247.5K");
  EXPECT_EQ(format_value(Unit::kPercent, 0.375), "37.5%");
  EXPECT_EQ(format_value(Unit::kNumber, 262144), "262K");
  EXPECT_EQ(escape("<a href='x'>&\"</a>"), "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;");
}

TEST(ReportPage, OneSelfContainedDocumentWithItsScript) {
  const std::string html = page("simulate", "a <title>", "<p>body</p>\n");
  EXPECT_EQ(test::self_contained_problem(html), "");
  EXPECT_NE(html.find("<title>a &lt;title&gt;</title>"), std::string::npos);
  EXPECT_NE(html.find("<body data-report=\"simulate\">"), std::string::npos);
  EXPECT_EQ(count_of(html, "<script>"), 1u);
  EXPECT_NE(html.find("data-ready"), std::string::npos);
  EXPECT_NE(html.find("@media print"), std::string::npos);
}

TEST(ReportTable, HeaderRowsAndLeftColumns) {
  const std::string html =
      table_html("t", {"name", "value"}, {{"a", "1"}, {"b", "2"}, {"c", "3"}}, "l");
  EXPECT_EQ(count_of(html, "<tr>"), 4u);
  EXPECT_EQ(count_of(html, "<td class=\"l\">"), 3u);
  EXPECT_EQ(count_of(html, "<th class=\"l\">name</th>"), 1u);
  EXPECT_EQ(count_of(html, "<td>"), 3u);
  EXPECT_EQ(html.rfind("<table id=\"t\">", 0), 0u);
}

Timeline hand_timeline() {
  Timeline t;
  t.id = "tl";
  t.caption = "caption";
  t.lanes = {"rank 0 stage 0", "rank 0 stage <1>"};
  t.span_ns = 1000;
  t.bars = {{1, 500, 750, "B", false, true, "second lane </script> tip"},
            {0, 0, 100, "F", false, false, "first"},
            {0, 100, 100, "send", true, false, "instant"}};
  return t;
}

TEST(ReportTimeline, BarsAtTheirTimesWithTipsInBarOrder) {
  const std::string html = timeline_html(hand_timeline());
  EXPECT_EQ(test::self_contained_problem("<!DOCTYPE html>\n" + html), "");
  // x = start · 1080 / span; a zero-length bar is drawn 0.5 px wide.
  EXPECT_EQ(attributes(html, "rect", "x"), (std::vector<std::string>{"0.00", "108.00", "540.00"}));
  EXPECT_EQ(attributes(html, "rect", "width"),
            (std::vector<std::string>{"108.00", "0.50", "270.00"}));
  EXPECT_EQ(attributes(html, "rect", "class"), (std::vector<std::string>{"F", "send l", "B c"}));
  const nlohmann::json tips = nlohmann::json::parse(test::tips_json_after(html, 0));
  EXPECT_EQ(tips, nlohmann::json({"first", "instant", "second lane </script> tip"}));
  // The tip's "</script>" cannot close the element early: one closing tag, the figure's own.
  EXPECT_EQ(count_of(html, "</script>"), 1u);
  EXPECT_NE(html.find("rank 0 stage &lt;1&gt;"), std::string::npos);
  EXPECT_NE(html.find("data-span=\"1000\" data-lanes=\"2\""), std::string::npos);
  // Ticks every 0.1 µs from 0 to 1 µs.
  for (const char* tick : {">0</text>", ">0.5 µs</text>", ">1 µs</text>"})
    EXPECT_NE(html.find(tick), std::string::npos) << tick;
  EXPECT_EQ(count_of(html, "<text class=\"mid\""), 11u);
}

TEST(ReportTimeline, RandomShapesAreDrawnTheSameInAnyOrder) {
  for (unsigned seed : {1u, 17u, 4242u}) {
    std::mt19937 rng(seed);
    Timeline t;
    t.id = "r";
    const int lanes = 1 + static_cast<int>(rng() % 7);
    for (int i = 0; i < lanes; ++i) t.lanes.push_back("lane " + std::to_string(i));
    t.span_ns = 1 + static_cast<int64_t>(rng() % 1'000'000'007);
    const int bars = static_cast<int>(rng() % 60);
    std::set<std::pair<int, int64_t>> starts;
    for (int i = 0; i < bars; ++i) {
      TimelineBar b;
      b.lane = static_cast<int>(rng() % lanes);
      do {
        b.start_ns = static_cast<int64_t>(rng() % static_cast<uint64_t>(t.span_ns));
      } while (!starts.insert({b.lane, b.start_ns}).second);
      b.end_ns = b.start_ns + static_cast<int64_t>(rng() % 1000);
      b.kind = i % 2 ? "F" : "B";
      b.low = rng() % 3 == 0;
      b.critical = rng() % 5 == 0;
      b.tip = "bar " + std::to_string(i);
      t.bars.push_back(b);
    }
    const std::string first = timeline_html(t);
    EXPECT_EQ(count_of(first, "<rect x="), static_cast<size_t>(bars)) << seed;
    EXPECT_EQ(nlohmann::json::parse(test::tips_json_after(first, 0)).size(),
              static_cast<size_t>(bars));
    // One group per lane that has bars, in lane order.
    std::vector<std::string> groups;
    for (const std::string& g : attributes(first, "g", "transform"))
      if (g.rfind("translate(0,", 0) == 0) groups.push_back(g);
    EXPECT_TRUE(std::is_sorted(groups.begin() + 1, groups.end(), [](auto& a, auto& b) {
      return std::stod(a.substr(12)) < std::stod(b.substr(12));
    })) << seed;
    // The same page whatever order the bars come in (their keys are distinct here: a start
    // is drawn once per lane).
    for (int shuffle = 0; shuffle < 3; ++shuffle) {
      std::shuffle(t.bars.begin(), t.bars.end(), rng);
      EXPECT_EQ(timeline_html(t), first) << seed;
    }
  }
}

TEST(ReportLineChart, PathsMarkersAndReferenceLines) {
  LineChart c;
  c.id = "c";
  c.caption = "rates";
  c.x_log2 = true;
  c.y_unit = Unit::kRate;
  c.series = {{"a", {{8, 100}, {16, 200}, {64, 400}}, false, {}, true, false, -1},
              {"b", {{8, 50}, {64, 100}}, false, {}, true, true, 0}};
  c.h_lines = {{300, "target"}};
  c.v_lines = {{16, "16 GPUs"}};
  const std::string html = line_chart_html(c);
  EXPECT_EQ(count_of(html, "<path class=\"series"), 2u);
  EXPECT_EQ(count_of(html, "<circle "), 5u);
  EXPECT_EQ(count_of(html, "<line class=\"ref\""), 2u);
  EXPECT_NE(html.find(">target</text>"), std::string::npos);
  // The log2 axis has its ticks at the points' x values.
  for (const char* tick : {">8</text>", ">16</text>", ">64</text>"})
    EXPECT_NE(html.find(tick), std::string::npos) << tick;
  // Series b takes palette colour 0 (as a's dashed companion would) and is dashed.
  EXPECT_NE(html.find("class=\"series s0 dashed\" data-series=\"b\""), std::string::npos);
  // Equal steps in log2 x are equal in px: 8 → 16 is a third of 8 → 64.
  const std::vector<std::string> cx = attributes(html, "circle", "cx");
  ASSERT_EQ(cx.size(), 5u);
  EXPECT_NEAR((std::stod(cx[1]) - std::stod(cx[0])) * 3, std::stod(cx[2]) - std::stod(cx[0]), 0.2);
  EXPECT_EQ(count_of(html, "data-tip=\"a: 16, 200.0\""), 1u);
}

TEST(ReportLineChart, StepsHoldEachValueToTheNextPoint) {
  LineChart c;
  c.id = "m";
  c.x_unit = Unit::kTimeNs;
  c.y_unit = Unit::kBytes;
  Series s;
  s.name = "stage 0";
  s.points = {{0, 1 << 20}, {100, 3 << 20}, {400, 2 << 20}};
  s.steps = true;
  c.series = {s, Series{}};  // an empty series draws nothing
  const std::string html = line_chart_html(c);
  EXPECT_EQ(count_of(html, "<path class=\"series"), 1u);
  EXPECT_EQ(count_of(html, "<circle"), 0u);
  const std::string d = attributes(html, "path", "d").at(0);
  EXPECT_EQ(std::count(d.begin(), d.end(), 'H'), 3);  // two steps and the run to the right edge
  EXPECT_EQ(std::count(d.begin(), d.end(), 'V'), 2);
}

TEST(ReportHeatMap, CellsColouredByTheirRatioToTheBest) {
  HeatMap m;
  m.id = "h";
  m.rows = {"K 1", "K 2"};
  m.cols = {"4096", "8192"};
  m.unit = Unit::kTimeNs;
  m.cells = {{0, 0, 1e9, "1 s", "best", "best"},
             {0, 1, 1.2e9, "1.2 s", "slowest", ""},
             {1, 0, std::nullopt, "✕", "does not fit: reason", "infeasible"},
             {1, 1, std::nullopt, "slower", "not simulated", "pruned"}};
  const std::string html = heat_map_html(m);
  EXPECT_EQ(count_of(html, "<rect class=\"cell"), 4u);
  const std::vector<std::string> fills = attributes(html, "rect", "fill");
  // The best is green, 1.2× the best (the scale's minimum span) red; no fill for the others.
  EXPECT_EQ(fills, (std::vector<std::string>{"#1a9850", "#d73027"}));
  EXPECT_EQ(count_of(html, "class=\"cell best\""), 1u);
  EXPECT_EQ(count_of(html, "class=\"cell infeasible\""), 1u);
  EXPECT_EQ(count_of(html, "class=\"cell pruned\""), 1u);
  EXPECT_NE(html.find("data-tip=\"does not fit: reason\""), std::string::npos);
  // Values 2 % apart are not painted best and worst: 1.02× sits near the green end.
  m.cells[1].value = 1.02e9;
  const std::vector<std::string> close = attributes(heat_map_html(m), "rect", "fill");
  ASSERT_EQ(close.size(), 2u);
  // log 1.02 / log 1.2 = 0.109 of the scale: a fifth of the way from #1a9850 to #fee08b.
  EXPECT_EQ(close[1].substr(0, 3), "#4c");
  // Higher is better (tokens/s): the largest value is green.
  m.lower_is_better = false;
  EXPECT_EQ(attributes(heat_map_html(m), "rect", "fill")[1], "#1a9850");
}

TEST(ReportStackedBars, SegmentsAddUpToTheBar) {
  StackedBars s;
  s.id = "b";
  s.bars = {"stage 0", "stage 1"};
  s.parts = {"weights", "activations", "zero"};
  s.values = {{10, 30, 0}, {20, 20, 0}};
  s.limit = RefLine{50, "HBM"};
  s.height = 214;  // 170 px of plot: y_hi = 50 · 1.08 = 54
  const std::string html = stacked_bars_html(s);
  EXPECT_EQ(count_of(html, "data-tip=\"stage"), 4u);  // zero parts are not drawn
  const std::vector<std::string> heights = attributes(html, "rect", "height");
  // The first four rects are the segments (the legend's keys follow).
  ASSERT_GE(heights.size(), 4u);
  const double plot = 214 - 14 - 30;
  EXPECT_NEAR(std::stod(heights[0]), 10 / 54.0 * plot, 0.06);
  EXPECT_NEAR(std::stod(heights[1]), 30 / 54.0 * plot, 0.06);
  EXPECT_NEAR(std::stod(heights[2]) + std::stod(heights[3]), 40 / 54.0 * plot, 0.12);
  EXPECT_NE(html.find(">HBM</text>"), std::string::npos);
}

}  // namespace
}  // namespace cf::report

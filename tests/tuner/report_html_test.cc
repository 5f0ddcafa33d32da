// The tune and sweep reports (tuner/report_html.h) against the results they show: every
// candidate a cell of its layout's heat map (K values folded into a smaller K repeated as
// "same"), the winner outlined once, the out-of-memory cells with their reasons, the page the
// same whatever the thread count; a sweep's curves, target line and table, point by point.
#include "tuner/report_html.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "tests/support/html_checks.h"
#include "tests/tuner/tuner_test_util.h"
#include "tuner/report.h"

namespace cf {
namespace {

using test::count_of;

TuneResult tuned_for_report(const Job& job, const SearchSpace& space, int threads) {
  TuneOptions options;
  options.threads = threads;
  StatusOr<TuneResult> result = tune(job, space, options);
  CF_CHECK(result.ok()) << result.status().message();
  return *std::move(result);
}

// Cells a candidate fills: its own and one per K value of the space folded into it.
size_t report_cells_of(const CandidateOutcome& o, const SearchSpace& space) {
  size_t n = 1;
  for (int k : space.ks) n += k > o.candidate.strategy.k && k <= o.candidate.k_covers;
  return n;
}

TEST(TuneReport, EveryCandidateIsACellOfItsFamilysMap) {
  int with_infeasible = 0, with_folds = 0;
  for (uint64_t seed = 1; seed <= 12; ++seed) {
    SCOPED_TRACE(fmt::format("seed {}", seed));
    const Job job = test::random_job(seed, "", seed % 2 ? 4 : 8);
    const SearchSpace space = test::random_space(job, seed);
    const TuneResult r = tuned_for_report(job, space, 2);
    const SearchResult& s = r.chunkflow;
    // The outcomes agree with the counts.
    ASSERT_EQ(s.outcomes.size(), static_cast<size_t>(s.candidates));
    int feasible = 0, infeasible = 0, pruned_time = 0, pruned_memory = 0;
    size_t same = 0;
    // Per family (a heat map's caption): its cells and its out-of-memory cells.
    std::map<std::string, std::pair<size_t, size_t>> families;
    for (const CandidateOutcome& o : s.outcomes) {
      EXPECT_EQ(o.candidate.index, &o - s.outcomes.data());
      feasible += o.kind == CandidateOutcome::Kind::kFeasible;
      infeasible += o.kind == CandidateOutcome::Kind::kInfeasible;
      pruned_time += o.kind == CandidateOutcome::Kind::kPrunedTime;
      pruned_memory += o.kind == CandidateOutcome::Kind::kPrunedMemory;
      if (o.kind == CandidateOutcome::Kind::kFeasible) {
        ASSERT_GE(o.ranked, 0);
        EXPECT_EQ(s.ranked[static_cast<size_t>(o.ranked)].candidate.index, o.candidate.index);
      }
      auto& [cells, infeasible_cells] = families[fmt::format(
          "{}, packer {}", describe(o.candidate.layout), to_string(o.candidate.strategy.packer))];
      cells += report_cells_of(o, space);
      same += report_cells_of(o, space) - 1;
      if (o.kind == CandidateOutcome::Kind::kInfeasible ||
          o.kind == CandidateOutcome::Kind::kPrunedMemory) {
        infeasible_cells += report_cells_of(o, space);
        EXPECT_FALSE(o.reason.empty());
      }
    }
    EXPECT_EQ(feasible, static_cast<int>(s.ranked.size()));
    EXPECT_EQ(infeasible + pruned_memory, s.infeasible);
    EXPECT_EQ(pruned_time, s.pruned_time);
    EXPECT_EQ(pruned_memory, s.pruned_memory);

    const std::string html = tune_report_html(r);
    EXPECT_EQ(test::self_contained_problem(html), "");
    // At most 12 maps; each has its family's cells; the other families are a table row each.
    const size_t drawn = std::min<size_t>(families.size(), 12);
    EXPECT_EQ(count_of(html, "<figure class=\"heat\""), drawn);
    size_t maps = 0;
    const std::string open = "<figure class=\"heat\"", caption = "<figcaption>";
    for (size_t at = html.find(open); at != std::string::npos; at = html.find(open, at + 1)) {
      ++maps;
      const size_t title_at = html.find(caption, at) + caption.size();
      const std::string title =
          html.substr(title_at, html.find("</figcaption>", title_at) - title_at);
      const std::string body = html.substr(title_at, html.find("</figure>", title_at) - title_at);
      ASSERT_TRUE(families.count(title)) << title;
      EXPECT_EQ(count_of(body, "<rect class=\"cell"), families[title].first) << title;
      EXPECT_EQ(count_of(body, "<rect class=\"cell infeasible\""), families[title].second) << title;
      with_infeasible += families[title].second > 0;
    }
    EXPECT_EQ(maps, drawn);
    const size_t other = html.find("<table id=\"other-families\">");
    EXPECT_EQ(other == std::string::npos
                  ? 0
                  : count_of(html.substr(other, html.find("</table>", other) - other), "<tr>") - 1,
              families.size() - drawn);
    // The winner's family is drawn first, its cell outlined.
    EXPECT_EQ(count_of(html, "<rect class=\"cell best\""), r.best() ? 1u : 0u);
    const size_t ranked = html.find("<table id=\"ranked\">");
    ASSERT_NE(ranked, std::string::npos);
    EXPECT_EQ(count_of(html.substr(ranked, html.find("</table>", ranked) - ranked), "<tr>") - 1,
              std::min(s.ranked.size(), static_cast<size_t>(space.top)));
    EXPECT_NE(html.find(r.best() ? "id=\"verdict\">Best: <b>" : "<b>Nothing fits.</b>"),
              std::string::npos);
    // The same page on one thread as on four (the search does not depend on them).
    EXPECT_EQ(tune_report_html(tuned_for_report(job, space, 1)), html);
    with_folds += same > 0;
  }
  EXPECT_GT(with_infeasible, 0);  // the cases exercise what they check
  EXPECT_GT(with_folds, 0);
}

SweepPoint sweep_point_for(const std::string& gpu, int gpus, double tokens_per_s, bool baseline) {
  SweepPoint p;
  p.model = "qwen2.5-7b";
  p.dataset = "lmsys-chat-1m";
  p.gpu = gpu;
  p.gpus = gpus;
  p.max_length = 262144;
  if (tokens_per_s > 0) {
    RankedCandidate best;
    best.candidate.strategy.chunk_size = 8192;
    best.candidate.strategy.k = 2;
    best.candidate.k_covers = 2;
    best.candidate.max_group_size = 4;
    best.metrics.tokens_per_s = tokens_per_s;
    best.metrics.step_time_s = 1e6 / tokens_per_s;
    p.best = best;
    if (baseline) {
      best.candidate.strategy.kind = StrategyKind::kBaseline;
      best.metrics.tokens_per_s = tokens_per_s / 1.25;
      best.metrics.step_time_s = 1.25e6 / tokens_per_s;
      p.baseline = best;
    }
  } else {
    p.closest_miss = "stage 0 needs 90 GiB";
  }
  return p;
}

TEST(SweepReport, CurvesPointsTargetAndTable) {
  SweepResult r;
  r.origin = "sweep.yaml";
  r.target_tokens_per_s = 250000;
  r.points = {sweep_point_for("h100", 8, 0, false),      sweep_point_for("h100", 16, 150000, true),
              sweep_point_for("h100", 32, 280000, true), sweep_point_for("h200", 8, 90000, false),
              sweep_point_for("h200", 16, 170000, true), sweep_point_for("h200", 32, 310000, true)};
  r.target = {{"qwen2.5-7b", "lmsys-chat-1m", "h100", 262144, 32, 280000},
              {"qwen2.5-7b", "lmsys-chat-1m", "h200", 262144, 32, 310000}};
  const std::string html = sweep_report_html(r);
  EXPECT_EQ(test::self_contained_problem(html), "");
  const size_t total = html.find("id=\"tokens\""), each = html.find("id=\"tokens-per-gpu\"");
  ASSERT_NE(total, std::string::npos);
  ASSERT_NE(each, std::string::npos);
  const std::string total_fig = html.substr(total, each - total);
  const std::string each_fig = html.substr(each, html.find("</figure>", each) - each);
  // Curves named by what varies between them (the GPU type); the baseline's dashed, in the
  // same colour.
  EXPECT_EQ(count_of(total_fig, "<path class=\"series"), 4u);
  EXPECT_NE(total_fig.find("class=\"series s0\" data-series=\"h100\""), std::string::npos);
  EXPECT_NE(total_fig.find("class=\"series s0 dashed\" data-series=\"h100 (baseline)\""),
            std::string::npos);
  EXPECT_NE(total_fig.find("class=\"series s1\" data-series=\"h200\""), std::string::npos);
  EXPECT_EQ(count_of(total_fig, "<circle"), 5u + 4u);  // the point that fits nothing is left out
  EXPECT_EQ(count_of(each_fig, "<circle"), 5u);
  EXPECT_NE(each_fig.find("data-tip=\"qwen2.5-7b, lmsys-chat-1m, 32 × h200, 262144 tokens"),
            std::string::npos);
  EXPECT_NE(each_fig.find("310.0K tokens/s (9.7K per GPU)"), std::string::npos);
  // The target line, and one line at the GPU count both groups need.
  EXPECT_NE(total_fig.find(">target 250.0K tokens/s</text>"), std::string::npos);
  EXPECT_EQ(count_of(total_fig, ">32 GPUs</text>"), 1u);
  // Tables: the target's answers and every point.
  EXPECT_EQ(count_of(html, "<td><b>32</b></td>"), 2u);
  EXPECT_NE(html.find("nothing fits: stage 0 needs 90 GiB"), std::string::npos);
  EXPECT_EQ(count_of(html, "<tr>"), 1 + 2 + 1 + 6u);
  EXPECT_EQ(sweep_report_html(r), html);
}

TEST(SweepReport, AContextSweepIsDrawnAgainstTheContext) {
  SweepResult r;
  r.origin = "sweep.yaml";
  for (int64_t length : {32768, 65536, 131072}) {
    SweepPoint p = sweep_point_for("h100", 32, 3e11 / static_cast<double>(length), false);
    p.max_length = length;
    r.points.push_back(p);
  }
  const std::string html = sweep_report_html(r);
  EXPECT_NE(html.find(">context length (tokens)</text>"), std::string::npos);
  for (const char* tick : {">32.8K</text>", ">65.5K</text>", ">131K</text>"})
    EXPECT_NE(html.find(tick), std::string::npos) << tick;
  EXPECT_EQ(count_of(html, "<path class=\"series"), 2u);  // tokens/s and per GPU: one curve each
}

}  // namespace
}  // namespace cf

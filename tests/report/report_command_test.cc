// `simulate --html [--baseline JOB]`, `tune --html` and `sweep --html` end to end: each writes
// a self-contained page (the same bytes on a rerun), says where, names it in --json; a path it
// cannot write or a second job it cannot read is exit 2 before any work, with nothing written.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "tests/support/html_checks.h"
#include "tests/support/subprocess.h"

namespace cf {
namespace {

using test::count_of;
using test::run_chunkflow;

class ReportCommand : public testing::Test {
 protected:
  test::TempDir dir_;
  std::string path(const std::string& name) const { return dir_.path() + "/" + name; }
};

TEST_F(ReportCommand, SimulateWithTheBaselineBesideIt) {
  const std::string html = path("simulate.html");
  const test::CommandResult r =
      run_chunkflow({"simulate", "examples/qwen2.5-7b-32k.yaml", "--baseline",
                     "examples/qwen2.5-7b-32k-baseline.yaml", "--html", html});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* expected :
       {"== ChunkFlow: examples/qwen2.5-7b-32k.yaml", "== Megatron-style baseline: examples/",
        "x the step time of ChunkFlow", "report written to "}) {
    EXPECT_NE(r.out.find(expected), std::string::npos) << expected << "\n" << r.out;
  }
  const std::string page = test::read_text(html);
  EXPECT_EQ(test::self_contained_problem(page), "");
  EXPECT_EQ(count_of(page, "<section class=\"run\""), 2u);
  EXPECT_EQ(count_of(page, "<figure class=\"tl\""), 2u);
  EXPECT_NE(page.find("<body data-report=\"simulate\">"), std::string::npos);
  // The same bytes on a rerun, and nothing else left in the directory.
  ASSERT_EQ(run_chunkflow({"simulate", "examples/qwen2.5-7b-32k.yaml", "--baseline",
                           "examples/qwen2.5-7b-32k-baseline.yaml", "--html", html})
                .exit_code,
            0);
  EXPECT_EQ(test::read_text(html), page);
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir_.path()),
                          std::filesystem::directory_iterator()),
            1);
  // --json names the report and carries the baseline's metrics.
  const test::CommandResult json =
      run_chunkflow({"simulate", "examples/qwen2.5-7b-32k.yaml", "--baseline",
                     "examples/qwen2.5-7b-32k-baseline.yaml", "--html", html, "--json"});
  ASSERT_EQ(json.exit_code, 0) << json.err;
  const nlohmann::json out = nlohmann::json::parse(json.out);
  EXPECT_EQ(out.at("html"), html);
  EXPECT_EQ(out.at("baseline").at("job"), "examples/qwen2.5-7b-32k-baseline.yaml");
  EXPECT_GT(out.at("baseline").at("step_time_s").get<double>(), 0);
}

TEST_F(ReportCommand, BadOutputOrSecondJobIsExit2WithNothingWritten) {
  const test::CommandResult dir_output =
      run_chunkflow({"simulate", "examples/qwen2.5-7b-32k.yaml", "--html", dir_.path()});
  EXPECT_EQ(dir_output.exit_code, 2);
  EXPECT_NE(dir_output.err.find(dir_.path()), std::string::npos) << dir_output.err;
  const std::string html = path("never.html");
  const test::CommandResult missing =
      run_chunkflow({"simulate", "examples/qwen2.5-7b-32k.yaml", "--baseline", path("nope.yaml"),
                     "--html", html});
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_NE(missing.err.find("nope.yaml"), std::string::npos) << missing.err;
  const test::CommandResult tune_dir = run_chunkflow(
      {"tune", "--chunk-sizes", "8192", "--k", "1", "--html", dir_.path(), "--quiet"});
  EXPECT_EQ(tune_dir.exit_code, 2);
  EXPECT_TRUE(tune_dir.out.empty()) << tune_dir.out;  // refused before the search
  const test::CommandResult sweep_dir =
      run_chunkflow({"sweep", "examples/sweep-gpus.yaml", "--html", dir_.path(), "--quiet"});
  EXPECT_EQ(sweep_dir.exit_code, 2);
  EXPECT_FALSE(std::filesystem::exists(html));
  EXPECT_TRUE(std::filesystem::is_empty(dir_.path()));
}

TEST_F(ReportCommand, TuneWritesItsHeatMaps) {
  const std::string html = path("tune.html");
  const std::vector<std::string> args = {"tune", "--chunk-sizes", "4096,8192,16384",
                                         "--k",  "1,2,4",         "--html",
                                         html,   "--quiet",       "--json"};
  const test::CommandResult r = run_chunkflow(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json out = nlohmann::json::parse(r.out);
  EXPECT_EQ(out.at("html"), html);
  const std::string page = test::read_text(html);
  EXPECT_EQ(test::self_contained_problem(page), "");
  EXPECT_NE(page.find("<body data-report=\"tune\">"), std::string::npos);
  // The embedded default job's layout with both layer splits, and both packers: four maps, each
  // with a cell per (ChunkSize, K) of the space (a K folded into a smaller one repeats its
  // value).
  EXPECT_EQ(count_of(page, "<figure class=\"heat\""), 4u);
  EXPECT_EQ(count_of(page, "<rect class=\"cell"), 4u * 3u * 3u);
  EXPECT_EQ(count_of(page, "<rect class=\"cell best\""), 1u);
  EXPECT_NE(page.find("<h2>Why the winner wins</h2>"), std::string::npos);
  ASSERT_EQ(run_chunkflow(args).exit_code, 0);
  EXPECT_EQ(test::read_text(html), page);
}

TEST_F(ReportCommand, SweepWritesItsCurves) {
  const std::string html = path("sweep.html");
  const test::CommandResult r =
      run_chunkflow({"sweep", "examples/sweep-gpus.yaml", "--html", html, "--quiet"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("report written to " + html), std::string::npos) << r.out;
  const std::string page = test::read_text(html);
  EXPECT_EQ(test::self_contained_problem(page), "");
  EXPECT_NE(page.find("<body data-report=\"sweep\">"), std::string::npos);
  // Two GPU types × 4 GPU counts: a curve per type in each chart, the baseline's beside them.
  EXPECT_NE(page.find("data-series=\"h100-sxm-80g\""), std::string::npos);
  EXPECT_NE(page.find("data-series=\"h200-141g (baseline)\""), std::string::npos);
  EXPECT_NE(page.find(">target 300.0K tokens/s</text>"), std::string::npos);
  EXPECT_EQ(count_of(page, "<table id=\"points\">"), 1u);
}

}  // namespace
}  // namespace cf

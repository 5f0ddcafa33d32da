// `chunkflow compare` end to end: traces written in Chrome trace form, the report as text,
// JSON and HTML, exit code 2 for missing or malformed files and for traces of different plans.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "tests/support/compare_fixture.h"
#include "tests/support/subprocess.h"
#include "traces/compare.h"

namespace cf {
namespace {

using test::run_chunkflow;
using test::synthetic_trace;
using test::TempDir;

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

class CompareCli : public ::testing::Test {
 protected:
  void SetUp() override {
    predicted_ = synthetic_trace({2, 3, 5}, "predicted");
    measured_ = synthetic_trace({2, 3, 5}, "measured", [](const TraceOp& op, int64_t planned_ns) {
      return op.pass == Pass::kBackward ? planned_ns * 11 / 10 : planned_ns;
    });
    predicted_.metrics["step_time_s"] = 0.5;
    measured_.metrics["step_time_s"] = 0.4;
    predicted_.peak_memory[{1, 2}] = {.weights = 300, .activations = 900};  // 1200
    measured_.peak_memory[{1, 2}] = {.weights = 500, .activations = 1000};  // 1500
    predicted_path_ = dir_.write("predicted.json", trace_to_chrome_json(predicted_));
    measured_path_ = dir_.write("measured.json", trace_to_chrome_json(measured_));
  }
  TempDir dir_;
  Trace predicted_, measured_;
  std::string predicted_path_, measured_path_;
};

TEST_F(CompareCli, JsonReport) {
  test::CommandResult result =
      run_chunkflow({"compare", predicted_path_, measured_path_, "--json"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const nlohmann::json json = nlohmann::json::parse(result.out);
  EXPECT_DOUBLE_EQ(json["step_time_rel_error"].get<double>(), (0.5 - 0.4) / 0.4);
  EXPECT_DOUBLE_EQ(json["peak_memory_rel_error"].get<double>(), (1200.0 - 1500.0) / 1500.0);
  EXPECT_EQ(json["pass_table"][1]["label"], "B");
  EXPECT_DOUBLE_EQ(json["pass_table"][1]["median_rel_error"].get<double>(), -1.0 / 11.0);
  // The same as the library's report of the same traces: the file round trip loses nothing.
  EXPECT_EQ(result.out, compare_report_json(*compare_traces(predicted_, measured_)));
}

TEST_F(CompareCli, TextReportAndHtmlFile) {
  const std::string html_path = dir_.path() + "/report.html";
  test::CommandResult result =
      run_chunkflow({"compare", predicted_path_, measured_path_, "--html", html_path});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_NE(result.out.find("step time: predicted 0.500000 s (metrics.step_time_s)"),
            std::string::npos)
      << result.out;
  EXPECT_NE(result.out.find("error +25.0%"), std::string::npos) << result.out;
  const std::string html = slurp(html_path);
  EXPECT_NE(html.find("<figure class=\"tl\" id=\"predicted\""), std::string::npos);
  EXPECT_NE(html.find("<figure class=\"tl\" id=\"measured\""), std::string::npos);
  // Byte-identical on a rerun; no temporary file left beside it.
  ASSERT_EQ(
      run_chunkflow({"compare", predicted_path_, measured_path_, "--html", html_path}).exit_code,
      0);
  EXPECT_EQ(slurp(html_path), html);
  int files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir_.path()))
    files += entry.is_regular_file();
  EXPECT_EQ(files, 3);  // predicted.json, measured.json, report.html
}

TEST_F(CompareCli, MissingFileIsBadInput) {
  test::CommandResult result =
      run_chunkflow({"compare", predicted_path_, "/nonexistent/measured.json"});
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_TRUE(result.out.empty());
  EXPECT_NE(result.err.find("/nonexistent/measured.json: cannot open file"), std::string::npos)
      << result.err;
}

// A directory or a device given as a trace is refused before reading (/dev/zero never ends).
TEST_F(CompareCli, NonRegularFileIsBadInput) {
  test::CommandResult zero = run_chunkflow({"compare", predicted_path_, "/dev/zero"});
  EXPECT_EQ(zero.exit_code, 2) << zero.err;
  EXPECT_NE(zero.err.find("/dev/zero: not a regular file (a character device)"), std::string::npos)
      << zero.err;
  // A trace over 2 GiB (sparse: judged by its size, never read).
  const std::string huge = dir_.write("huge.json", "{");
  std::filesystem::resize_file(huge, (int64_t{2} << 30) + 1);
  test::CommandResult big = run_chunkflow({"compare", huge, measured_path_});
  EXPECT_EQ(big.exit_code, 2) << big.err;
  EXPECT_NE(big.err.find(huge + ": 2147483649 bytes, more than the 2147483648 allowed (2 GiB for a "
                                "trace, core/limits.h)"),
            std::string::npos)
      << big.err;
  std::filesystem::remove(huge);
  test::CommandResult directory = run_chunkflow({"compare", dir_.path(), measured_path_});
  EXPECT_EQ(directory.exit_code, 2) << directory.err;
  EXPECT_NE(directory.err.find(dir_.path() + ": not a regular file (a directory)"),
            std::string::npos)
      << directory.err;
}

TEST_F(CompareCli, MalformedTraceIsBadInputNamingTheFile) {
  const std::string bad = dir_.write("bad.json", "{\"traceEvents\": [");
  test::CommandResult result = run_chunkflow({"compare", bad, measured_path_});
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_NE(result.err.find(bad + ":"), std::string::npos) << result.err;
}

TEST_F(CompareCli, BadEventIsBadInputNamingItsIndex) {
  std::string text = trace_to_chrome_json(measured_);
  const std::size_t first_op = text.find("\"ph\":\"X\"");
  ASSERT_NE(first_op, std::string::npos);
  text.replace(first_op, 8, "\"ph\":\"Q\"");
  const std::string bad = dir_.write("bad_event.json", text);
  test::CommandResult result = run_chunkflow({"compare", predicted_path_, bad});
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_NE(result.err.find(bad + ": traceEvents["), std::string::npos) << result.err;
  EXPECT_NE(result.err.find("unsupported phase \"Q\""), std::string::npos) << result.err;
}

TEST_F(CompareCli, DifferentPlansAreBadInput) {
  const std::string other =
      dir_.write("other.json", trace_to_chrome_json(synthetic_trace({2, 2, 5}, "measured")));
  test::CommandResult result = run_chunkflow({"compare", predicted_path_, other});
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_TRUE(result.out.empty());
  EXPECT_NE(
      result.err.find(predicted_path_ + " vs " + other + ": the traces come from different plans"),
      std::string::npos)
      << result.err;
}

TEST_F(CompareCli, BadFlags) {
  EXPECT_EQ(run_chunkflow({"compare", predicted_path_}).exit_code, 2);
  EXPECT_EQ(run_chunkflow({"compare", predicted_path_, measured_path_, "--no-such-flag"}).exit_code,
            2);
  test::CommandResult help = run_chunkflow({"compare", "--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.out.find("--html"), std::string::npos);
}

}  // namespace
}  // namespace cf

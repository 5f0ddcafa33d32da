// The validation matrix's parts that do not measure (executor/calibrate/validation.h): the
// configurations and their job files, the judging of rows (means, the one load factor,
// errors, spreads, targets) and of the tuner's pick on hand-computed numbers, and the text
// and JSON reports. The matrix itself measures this machine: scripts/validate.sh runs it.
#include "executor/calibrate/validation.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

namespace cf {
namespace {

TEST(Validation, MatrixHasTwentyNamedTwoThreadConfigurations) {
  const std::vector<ValidationConfig> matrix = validation_matrix();
  ASSERT_EQ(matrix.size(), 20u);
  std::set<std::string> names;
  for (const ValidationConfig& c : matrix) {
    names.insert(c.name());
    EXPECT_EQ(c.pp * c.dp, 2) << c.name();
  }
  EXPECT_EQ(names.size(), 20u);
  EXPECT_EQ(matrix.front().name(), "lmsys-chat-1m-C128-K1-pp2dp1");
  EXPECT_EQ(matrix[4].name(), "lmsys-chat-1m-baseline-pp2dp1");
  EXPECT_EQ(matrix.back().name(), "chatqa2-long-sft-baseline-pp1dp2");
}

// A table path with a space and a quote survives the job file; the job is the matrix's.
TEST(Validation, JobFileNamesTheTableAndParses) {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / "cf validation_test 'q'";
  std::filesystem::create_directories(dir);
  const std::string table = (dir / "it's a table.json").string();
  std::ofstream(table) << "{}";
  const ValidationConfig c = validation_matrix()[2];  // lmsys-chat-1m C256 K1 pp2 dp1
  StatusOr<Job> job = parse_job(validation_job_yaml(c, table), c.name() + ".yaml");
  std::filesystem::remove_all(dir);
  ASSERT_TRUE(job.ok()) << job.status().message();
  EXPECT_EQ(job->cost_model.table, table);
  EXPECT_EQ(job->parallel.pp, 2);
  EXPECT_EQ(job->parallel.dp, 1);
  EXPECT_EQ(job->strategy.chunk_size, 256);
  EXPECT_EQ(job->strategy.k, 1);
  EXPECT_EQ(job->training.steps, 2);
}

ValidationRow row(const std::string& dataset, bool baseline, int64_t chunk, int k,
                  double predicted_s, std::vector<double> step_times, std::vector<double> loads,
                  double memory_error) {
  ValidationRow r;
  r.config = ValidationConfig{dataset, 6, baseline, chunk, k, 1, 2};
  r.predicted_s = predicted_s;
  r.step_times = std::move(step_times);
  r.loads = std::move(loads);
  r.memory_error = memory_error;
  return r;
}

// Loads {1.0, 1.2, 1.2, 1.6}: matrix mean 1.25, step fit 1.5, so measured times ×1.2.
// Row a: measured 1.0, predicted 1.1 → raw +10%, at the fit's load 1.2 → −1/12.
// Row b: measured 2.0 (runs 1.5 and 2.5: spread 25%), predicted 1.8 → raw −10%, at 2.4 → −25%.
TEST(Validation, RowsAreJudgedAtTheStepFitsLoad) {
  std::vector<ValidationRow> rows = {row("d", false, 128, 1, 1.1, {1.0, 1.0}, {1.0, 1.2}, 0.01),
                                     row("d", false, 256, 2, 1.8, {1.5, 2.5}, {1.2, 1.6}, -0.03)};
  const ValidationSummary s = judge_rows(1.5, &rows);
  EXPECT_DOUBLE_EQ(s.matrix_load, 1.25);
  EXPECT_EQ(s.load_min, 1.0);
  EXPECT_EQ(s.load_max, 1.6);
  EXPECT_DOUBLE_EQ(s.to_fit_load, 1.2);
  EXPECT_DOUBLE_EQ(rows[0].measured_s, 1.0);
  EXPECT_DOUBLE_EQ(rows[0].load, 1.1);
  EXPECT_NEAR(rows[0].step_error, 0.1, 1e-12);
  EXPECT_NEAR(rows[0].at_fit_load_s, 1.2, 1e-12);
  EXPECT_NEAR(rows[0].at_fit_load_error, -1.0 / 12, 1e-12);
  EXPECT_EQ(rows[0].runs_spread, 0.0);
  EXPECT_DOUBLE_EQ(rows[1].measured_s, 2.0);
  EXPECT_NEAR(rows[1].step_error, -0.1, 1e-12);
  EXPECT_NEAR(rows[1].at_fit_load_error, -0.25, 1e-12);
  EXPECT_DOUBLE_EQ(rows[1].runs_spread, 0.25);
  EXPECT_NEAR(s.mean_error, (1.0 / 12 + 0.25) / 2, 1e-12);
  EXPECT_NEAR(s.worst_error, 0.25, 1e-12);
  EXPECT_NEAR(s.mean_raw_error, 0.1, 1e-12);
  EXPECT_NEAR(s.worst_raw_error, 0.1, 1e-12);
  EXPECT_EQ(s.worst_memory_error, 0.03);
  EXPECT_FALSE(s.time_ok);    // mean 16.7% > 10%, worst 25% > 20%
  EXPECT_FALSE(s.memory_ok);  // 3% > 2%

  std::vector<ValidationRow> close = {row("d", false, 128, 1, 1.05, {1.0}, {1.5}, 0.0)};
  const ValidationSummary met = judge_rows(1.5, &close);  // one factor 1: error +5%
  EXPECT_NEAR(met.mean_error, 0.05, 1e-12);
  EXPECT_TRUE(met.time_ok);
  EXPECT_TRUE(met.memory_ok);
}

// Rows predicted exactly (every target met but the ranking's, which is the test's).
std::vector<ValidationRow> measured_rows() {
  std::vector<ValidationRow> rows = {row("d", false, 128, 1, 1.00, {1.00}, {1}, 0),
                                     row("d", false, 256, 2, 0.97, {0.97}, {1}, 0),
                                     row("d", true, 0, 1, 0.50, {0.50}, {1}, 0),  // not a candidate
                                     row("e", false, 128, 1, 0.10, {0.10}, {1}, 0)};
  judge_rows(1, &rows);
  return rows;
}

ValidationConfig pick(int64_t chunk, int k) {
  return ValidationConfig{"", 0, false, chunk, k, 1, 2};
}

TEST(Validation, TheTunersPickAgainstTheBestMeasuredOfItsDataset) {
  const std::vector<ValidationRow> rows = measured_rows();
  StatusOr<RankingCheck> second = judge_ranking(rows, "d", pick(128, 1));
  ASSERT_TRUE(second.ok()) << second.status().message();
  EXPECT_EQ(second->picked, 0u);
  EXPECT_EQ(second->best, 1u);
  EXPECT_NEAR(second->gap, 0.03 / 0.97, 1e-12);
  EXPECT_TRUE(second->ok);  // 3.1% ≤ 5%
  StatusOr<RankingCheck> best = judge_ranking(rows, "d", pick(256, 2));
  ASSERT_TRUE(best.ok());
  EXPECT_EQ(best->gap, 0.0);

  StatusOr<RankingCheck> outside = judge_ranking(rows, "d", pick(512, 2));
  ASSERT_FALSE(outside.ok());
  EXPECT_EQ(outside.status().code(), StatusCode::kRuntime);
  EXPECT_NE(outside.status().message().find("d: the tuner picked ChunkSize 512 K 2 pp 1 dp 2"),
            std::string::npos)
      << outside.status().message();
  EXPECT_FALSE(judge_ranking(rows, "nowhere", pick(128, 1)).ok());

  std::vector<ValidationRow> slow = measured_rows();
  slow[0].measured_s = 1.2;  // the pick 24% slower than the best
  StatusOr<RankingCheck> missed = judge_ranking(slow, "d", pick(128, 1));
  ASSERT_TRUE(missed.ok());
  EXPECT_FALSE(missed->ok);
}

TEST(Validation, ReportsCarryTheVerdict) {
  ValidationResult result;
  result.table = "cal.json";
  result.runs = 1;
  result.rows = measured_rows();
  result.summary = judge_rows(1, &result.rows);
  result.ranking = {*judge_ranking(result.rows, "d", pick(128, 1))};
  ASSERT_TRUE(result.targets_met());
  const std::string text = validation_text(result);
  EXPECT_NE(text.find("d-C128-K1-pp1dp2"), std::string::npos) << text;
  EXPECT_NE(text.find("ranking    d: tune picks d-C128-K1-pp1dp2 (1.0000 s); best measured "
                      "d-C256-K2-pp1dp2 (0.9700 s); gap +3.1% (target ≤ 5%)"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("verdict    all targets met\n"), std::string::npos) << text;
  nlohmann::json j = nlohmann::json::parse(validation_json(result));
  EXPECT_EQ(j.at("verdict"), "all targets met");
  EXPECT_TRUE(j.at("targets_met").get<bool>());
  EXPECT_EQ(j.at("rows").size(), 4u);
  EXPECT_EQ(j.at("rows")[2].at("config").at("strategy"), "baseline");
  EXPECT_EQ(j.at("ranking")[0].at("best"), "d-C256-K2-pp1dp2");

  result.ranking = {*judge_ranking(result.rows, "d", pick(128, 1))};
  result.ranking[0].ok = false;
  EXPECT_FALSE(result.targets_met());
  EXPECT_NE(validation_text(result).find("verdict    TARGET MISSED\n"), std::string::npos);
  j = nlohmann::json::parse(validation_json(result));
  EXPECT_EQ(j.at("verdict"), "TARGET MISSED");
  EXPECT_FALSE(j.at("targets_met").get<bool>());
}

}  // namespace
}  // namespace cf

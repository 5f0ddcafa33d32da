// `chunkflow calibrate` end to end: --quick writes a table that the strict reader loads and
// `simulate` prices a job with (flagging the chunks beyond its small grid); bad flags and an
// unbuilt backend exit 2; a table for another model is refused naming the model.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "sim/calibration_table.h"
#include "tests/support/subprocess.h"

namespace cf {
namespace {

using test::run_chunkflow;
using test::TempDir;

TEST(CalibrateCommand, QuickTableLoadsAndPricesAJob) {
  TempDir dir;
  const std::string table = dir.path() + "/cal.json";
  const test::CommandResult cal = run_chunkflow({"calibrate", "--quick", "-o", table});
  ASSERT_EQ(cal.exit_code, 0) << cal.err;
  EXPECT_NE(cal.out.find("table written to " + table), std::string::npos) << cal.out;
  StatusOr<CalibrationTable> loaded = load_calibration(table);
  ASSERT_TRUE(loaded.ok()) << loaded.status().message();
  EXPECT_EQ(loaded->machine.backend, "cpu");
  EXPECT_EQ(loaded->models.at(0).name, "tiny");

  const std::string job = dir.write("job.yaml",
                                    "model: tiny\n"
                                    "cluster: {gpu: h100-sxm-80g, gpus: 2, gpus_per_node: 2}\n"
                                    "dataset: {lengths: [70, 9, 31, 5], max_length: 128}\n"
                                    "parallel: {tp: 1, pp: 2, dp: 1}\n"
                                    "strategy: {kind: chunkflow, chunk_size: 48, k: 1}\n"
                                    "cost_model: {kind: calibrated, table: " +
                                        table + "}\n");
  const test::CommandResult sim = run_chunkflow({"simulate", job, "--json"});
  ASSERT_EQ(sim.exit_code, 0) << sim.err;
  const nlohmann::json metrics = nlohmann::json::parse(sim.out);
  EXPECT_EQ(metrics.at("cost_model"), "calibrated");
  EXPECT_GT(metrics.at("step_time_s").get<double>(), 0);
  EXPECT_GT(metrics.at("extrapolated_ops").get<int>(), 0);  // 48-token chunks, grid to 32
}

TEST(CalibrateCommand, BadInputExitsTwo) {
  TempDir dir;
  EXPECT_EQ(
      run_chunkflow({"calibrate", "--backend", "cuda", "-o", dir.path() + "/c.json"}).exit_code, 2);
  EXPECT_EQ(run_chunkflow({"calibrate", "--backend", "tpu"}).exit_code, 2);
  const test::CommandResult bad_model =
      run_chunkflow({"calibrate", "--quick", "--model", "no-such-model", "-o", dir.path() + "/c"});
  EXPECT_EQ(bad_model.exit_code, 2);
  EXPECT_NE(bad_model.err.find("no-such-model"), std::string::npos) << bad_model.err;

  const std::string broken = dir.write("broken.json", "{\"format\": \"chunkflow-calibration\"}");
  const std::string job = dir.write("job.yaml",
                                    "model: tiny\n"
                                    "cluster: {gpu: h100-sxm-80g, gpus: 1, gpus_per_node: 1}\n"
                                    "dataset: {lengths: [7, 9], max_length: 64}\n"
                                    "parallel: {tp: 1, pp: 1, dp: 1}\n"
                                    "cost_model: {kind: calibrated, table: " +
                                        broken + "}\n");
  const test::CommandResult sim = run_chunkflow({"simulate", job});
  EXPECT_EQ(sim.exit_code, 2);
  EXPECT_NE(sim.err.find(broken + ": version: required key is missing"), std::string::npos)
      << sim.err;
}

}  // namespace
}  // namespace cf

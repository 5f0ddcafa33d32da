// `chunkflow calibrate` end to end: --quick writes a table that the strict reader loads and
// `simulate` prices a job with (flagging the chunks beyond its small grid); bad flags exit 2; a
// table for another model is refused naming the model. --backend cuda without the CUDA backend
// or without a device exits 1 saying which and writes nothing.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "sim/calibration_table.h"
#include "tests/support/subprocess.h"
#ifdef CHUNKFLOW_HAVE_CUDA
#include "kernels/cuda/cuda_check.h"
#endif

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

TEST(CalibrateCommand, CudaWithoutTheBackendOrADeviceExitsOne) {
#ifdef CHUNKFLOW_HAVE_CUDA
  if (cuda::no_device_reason().empty()) {
    GTEST_SKIP() << "a CUDA device is present: calibrate_cuda_test calibrates it";
  }
  const std::string expected = "chunkflow: error: no CUDA device";
#else
  const std::string expected =
      "chunkflow: error: calibrate --backend cuda: this chunkflow was built without the CUDA "
      "backend (CHUNKFLOW_CUDA=OFF or no nvcc)\n";
#endif
  TempDir dir;
  const std::string out = dir.path() + "/gpu.yaml";
  for (const std::vector<std::string>& extra :
       {std::vector<std::string>{}, std::vector<std::string>{"--quick", "--gpu", "h200-141g"}}) {
    std::vector<std::string> args{"calibrate", "--backend", "cuda", "-o", out};
    args.insert(args.end(), extra.begin(), extra.end());
    const test::CommandResult r = run_chunkflow(args);
    EXPECT_EQ(r.exit_code, 1) << r.err;
    // The sanitizer phase runs another chunkflow (CHUNKFLOW_TEST_PROGRAM), built without CUDA.
    const bool other = test::test_program_replaced() &&
                       r.err.find("built without the CUDA backend") != std::string::npos;
    EXPECT_TRUE(other || r.err.rfind(expected, 0) == 0u) << r.err;
    EXPECT_EQ(r.out, "");
    EXPECT_FALSE(std::filesystem::exists(out));
  }
}

TEST(CalibrateCommand, BadInputExitsTwo) {
  TempDir dir;
  EXPECT_EQ(run_chunkflow({"calibrate", "--backend", "tpu"}).exit_code, 2);
  // --backend cuda's flags are judged before the build or the device is asked.
  const test::CommandResult json =
      run_chunkflow({"calibrate", "--backend", "cuda", "-o", dir.path() + "/c.json"});
  EXPECT_EQ(json.exit_code, 2);
  EXPECT_NE(json.err.find("--backend cuda writes a hardware file"), std::string::npos) << json.err;
  EXPECT_NE(json.err.find("name it .yaml (default gpu-calibrated.yaml)"), std::string::npos);
  const test::CommandResult threads =
      run_chunkflow({"calibrate", "--backend", "cuda", "--threads", "2"});
  EXPECT_EQ(threads.exit_code, 2);
  EXPECT_NE(threads.err.find("--threads: only for --backend cpu"), std::string::npos)
      << threads.err;
  EXPECT_EQ(run_chunkflow({"calibrate", "--backend", "cuda", "--max-tokens", "64"}).exit_code, 2);
  const test::CommandResult gpu_for_cpu = run_chunkflow({"calibrate", "--gpu", "h100-sxm-80g"});
  EXPECT_EQ(gpu_for_cpu.exit_code, 2);
  EXPECT_NE(gpu_for_cpu.err.find("--gpu: a base hardware file is for --backend cuda"),
            std::string::npos);
  const test::CommandResult bad_gpu = run_chunkflow(
      {"calibrate", "--backend", "cuda", "--gpu", "no-such-gpu", "-o", dir.path() + "/g.yaml"});
  EXPECT_EQ(bad_gpu.exit_code, 2);
  EXPECT_NE(bad_gpu.err.find("no-such-gpu"), std::string::npos) << bad_gpu.err;
  const test::CommandResult bad_gpu_model = run_chunkflow(
      {"calibrate", "--backend", "cuda", "--model", "no-such-model", "-o", dir.path() + "/g.yaml"});
  EXPECT_EQ(bad_gpu_model.exit_code, 2);
  EXPECT_NE(bad_gpu_model.err.find("no-such-model"), std::string::npos) << bad_gpu_model.err;
  EXPECT_FALSE(std::filesystem::exists(dir.path() + "/g.yaml"));
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

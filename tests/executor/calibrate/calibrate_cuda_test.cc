// `calibrate --backend cuda` on a device (label cuda): a --quick calibration through the
// library measures every series with positive times and fits a file that parses back to its
// GpuSpec; through the command it writes a hardware file that `simulate` prices a job with;
// under mpirun on two GPUs it fits the links. Each test skips with the reason without a device
// (or without a second one).
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "executor/calibrate/calibrate.h"
#include "kernels/cuda/cuda_check.h"
#include "tests/support/subprocess.h"

namespace cf {
namespace {

#define SKIP_WITHOUT_DEVICE()                            \
  do {                                                   \
    const std::string reason = cuda::no_device_reason(); \
    if (!reason.empty()) GTEST_SKIP() << reason;         \
  } while (0)

TEST(CalibrateCuda, QuickCalibrationMeasuresEverySeries) {
  SKIP_WITHOUT_DEVICE();
  GpuCalibrationRequest request;
  request.quick = true;
  request.gpu = "h100-sxm-80g";  // any device: the datasheet is only the base
  int steps = 0;
  const StatusOr<GpuCalibration> c =
      calibrate_gpu(request, [&](const std::string&, int done, int total) {
        EXPECT_LT(done, total);
        ++steps;
      });
  ASSERT_TRUE(c.ok()) << c.status().message();
  ASSERT_TRUE(c->root);
  const GpuMeasurements& m = c->measured;
  EXPECT_EQ(steps, 10 + 6 + 2 + 1);  // GEMMs, attention points, memory sizes, launches
  EXPECT_EQ(m.gemm.size() + m.skipped.size(), 10u);
  EXPECT_EQ(m.attention.size(), 6u);
  EXPECT_EQ(m.memory.size(), 4u);
  for (const GemmSample& g : m.gemm) EXPECT_GT(g.seconds, 0);
  for (const AttentionSample& a : m.attention) {
    EXPECT_GT(a.forward_s, 0);
    EXPECT_GT(a.backward_s, 0);
  }
  for (const BandwidthSample& b : m.memory) EXPECT_GT(b.seconds, 0);
  EXPECT_GT(m.launch.gpu_s_per_kernel, 0);
  EXPECT_LT(m.launch.gpu_s_per_kernel, 1e-3);
  EXPECT_GT(m.launch.host_s_per_launch, 0);
  EXPECT_FALSE(m.device.name.empty());
  EXPECT_GT(m.device.hbm_total_bytes, int64_t{1} << 30);
  const GpuSpec& s = c->calibrated;
  EXPECT_GT(s.attention_efficiency, 0);
  EXPECT_LE(s.attention_efficiency, 1);
  EXPECT_GT(s.memory_efficiency, 0);
  EXPECT_LE(s.memory_efficiency, 1);
  const StatusOr<GpuSpec> parsed = parse_gpu_yaml(gpu_calibration_yaml(*c), "calibrated");
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  EXPECT_EQ(parsed->gemm_efficiency, s.gemm_efficiency);
  EXPECT_EQ(parsed->hbm_bytes, s.hbm_bytes);
  std::printf("%s", gpu_calibration_summary(*c).c_str());  // the log shows what was measured
}

TEST(CalibrateCuda, CommandWritesAFileTheSimulatorReads) {
  SKIP_WITHOUT_DEVICE();
  test::TempDir dir;
  const std::string gpu = dir.path() + "/gpu.yaml";
  const test::CommandResult cal = test::run_program(
      CHUNKFLOW_BIN,
      {"calibrate", "--backend", "cuda", "--quick", "--gpu", "h100-sxm-80g", "-o", gpu});
  ASSERT_EQ(cal.exit_code, 0) << cal.err;
  EXPECT_NE(cal.out.find("hardware file written to " + gpu), std::string::npos) << cal.out;
  const std::string job = dir.write("job.yaml",
                                    "model: tiny\n"
                                    "cluster: {gpu: " +
                                        gpu +
                                        ", gpus: 2, gpus_per_node: 2}\n"
                                        "dataset: {lengths: [70, 9, 31, 5], max_length: 128}\n"
                                        "parallel: {tp: 1, pp: 2, dp: 1}\n"
                                        "strategy: {kind: chunkflow, chunk_size: 48, k: 1}\n");
  const test::CommandResult sim = test::run_program(CHUNKFLOW_BIN, {"simulate", job, "--json"});
  ASSERT_EQ(sim.exit_code, 0) << sim.err;
  EXPECT_GT(nlohmann::json::parse(sim.out).at("step_time_s").get<double>(), 0);
}

#ifdef CHUNKFLOW_MPIEXEC
TEST(CalibrateCuda, TwoGpusUnderMpirunFitTheLinks) {
  SKIP_WITHOUT_DEVICE();
  int devices = 0;
  ASSERT_EQ(cudaGetDeviceCount(&devices), cudaSuccess);
  if (devices < 2) GTEST_SKIP() << devices << " CUDA device: the links need two";
  test::TempDir dir;
  const std::string gpu = dir.path() + "/gpu.yaml";
  const test::CommandResult cal =
      test::run_program_until(CHUNKFLOW_MPIEXEC,
                              {"--allow-run-as-root", "-np", "2", CHUNKFLOW_BIN, "calibrate",
                               "--backend", "cuda", "--quick", "--gpu", "h100-sxm-80g", "-o", gpu},
                              300);
  ASSERT_EQ(cal.exit_code, 0) << cal.err;
  EXPECT_NE(cal.out.find("collectives over 2 GPUs"), std::string::npos) << cal.out;
  const StatusOr<GpuSpec> loaded = load_gpu(gpu);
  ASSERT_TRUE(loaded.ok()) << loaded.status().message();
}
#endif

}  // namespace
}  // namespace cf

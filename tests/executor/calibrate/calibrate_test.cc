// The calibration's entry point (executor/calibrate/calibrate.h): bad requests are InvalidInput
// before anything is measured; a --quick calibration fills the table (step fit included),
// reports progress in order, and its summary names what it measured. Not the timings' values.
// The GPU's: without the CUDA backend or a device, a runtime failure saying which (a device's
// calibration is tests/executor/calibrate/calibrate_cuda_test.cc).
#include "executor/calibrate/calibrate.h"

#include <gtest/gtest.h>

#ifdef CHUNKFLOW_HAVE_CUDA
#include "kernels/cuda/cuda_check.h"
#endif

namespace cf {
namespace {

TEST(Calibrate, BadRequestsAreInvalidInput) {
  CalibrationRequest tpu;
  tpu.backend = "tpu";
  StatusOr<Calibration> a = calibrate(tpu);
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.status().code(), StatusCode::kInvalidInput);
  EXPECT_NE(a.status().message().find("--backend tpu"), std::string::npos);
  CalibrationRequest model;
  model.models = {"tiny", "no-such-model"};
  StatusOr<Calibration> b = calibrate(model);
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.status().code(), StatusCode::kInvalidInput);
  EXPECT_NE(b.status().message().find("no-such-model"), std::string::npos);
}

TEST(CalibrateGpu, WithoutTheBackendOrADeviceIsARuntimeFailure) {
#ifdef CHUNKFLOW_HAVE_CUDA
  EXPECT_TRUE(cuda_backend_built());
  if (cuda::no_device_reason().empty()) {
    GTEST_SKIP() << "a CUDA device is present: calibrate_cuda_test calibrates it";
  }
  const std::string expected = "no CUDA device";
#else
  EXPECT_FALSE(cuda_backend_built());
  const std::string expected =
      "calibrate --backend cuda: this chunkflow was built without the CUDA backend "
      "(CHUNKFLOW_CUDA=OFF or no nvcc)";
#endif
  GpuCalibrationRequest request;
  request.quick = true;
  for (const std::string gpu : {"", "h100-sxm-80g"}) {
    request.gpu = gpu;
    const StatusOr<GpuCalibration> c = calibrate_gpu(request);
    ASSERT_FALSE(c.ok());
    EXPECT_EQ(c.status().code(), StatusCode::kRuntime);
    EXPECT_EQ(c.status().message().rfind(expected, 0), 0u) << c.status().message();
  }
}

// Bad input is found before the build or the device is asked.
TEST(CalibrateGpu, BadInputIsInvalidInputInEveryBuild) {
  GpuCalibrationRequest model;
  model.models = {"qwen2.5-0.5b", "no-such-model"};
  const StatusOr<GpuCalibration> a = calibrate_gpu(model);
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.status().code(), StatusCode::kInvalidInput);
  EXPECT_NE(a.status().message().find("no-such-model"), std::string::npos);
  GpuCalibrationRequest gpu;
  gpu.gpu = "no-such-gpu";
  const StatusOr<GpuCalibration> b = calibrate_gpu(gpu);
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.status().code(), StatusCode::kInvalidInput);
  EXPECT_NE(b.status().message().find("no-such-gpu"), std::string::npos);
  GpuCalibrationRequest none;
  none.models.clear();
  EXPECT_EQ(calibrate_gpu(none).status().code(), StatusCode::kInvalidInput);
}

TEST(Calibrate, QuickCalibrationFillsTheTable) {
  CalibrationRequest request;
  request.quick = true;
  std::vector<std::string> steps;
  int last_done = -1;
  bool in_order = true;
  const StatusOr<Calibration> c =
      calibrate(request, [&](const std::string& what, int done, int total) {
        steps.push_back(what);
        // The profiler's count restarts at 0 for the step fit's rounds.
        if (what.rfind("step slowdown", 0) != 0) in_order = in_order && done > last_done;
        last_done = done;
        EXPECT_LE(done, total);
      });
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_TRUE(in_order);
  ASSERT_FALSE(steps.empty());
  EXPECT_EQ(steps.back(), "step slowdown, round 1");
  const CalibrationTable& t = c->table;
  EXPECT_EQ(t.method.warmup, 1);
  EXPECT_EQ(t.method.repetitions, 3);
  ASSERT_EQ(t.concurrency_slowdown.size(), 1u);  // quick: one thread
  EXPECT_GT(t.concurrency_slowdown[0], 0);
  EXPECT_GT(t.machine.speed_probe.step_load, 0);
  EXPECT_EQ(t.machine.speed_probe.tokens, 16);
  EXPECT_EQ(c->options.tokens.back(), 32);
  EXPECT_GT(c->seconds, 0);
  ASSERT_EQ(t.models.size(), 1u);
  EXPECT_EQ(t.models[0].name, "tiny");
  const std::string summary = calibration_summary(*c);
  EXPECT_NE(summary.find("1 warm-up + 3 timed runs"), std::string::npos) << summary;
  EXPECT_NE(summary.find("tokens 1..32 (10 points)"), std::string::npos) << summary;
  EXPECT_NE(summary.find("model tiny ("), std::string::npos) << summary;
  EXPECT_NE(summary.find("     32 "), std::string::npos) << summary;  // a breakdown row
}

}  // namespace
}  // namespace cf

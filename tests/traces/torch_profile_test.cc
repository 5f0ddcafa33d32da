// A real PyTorch profile, end to end: tests/traces/make_torch_profile.py trains a two-layer
// MLP for three steps on the CPU under torch.profiler (Debian's python3-torch 1.13 writes the
// legacy event list; torch 2.x a Kineto trace), and `chunkflow profile` must find the three
// ProfilerStep ranges and GEMM time in them. Skipped, with the reason, when no python3 on the
// machine imports torch (scripts/install-deps.sh --test installs python3-torch).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "tests/support/subprocess.h"

namespace cf {
namespace {

TEST(TorchProfile, RealProfileOfThreeTrainingSteps) {
  const std::string python = test::python_with("torch");
  if (python.empty()) {
    GTEST_SKIP() << "no python3 here imports torch (apt-get install python3-torch, or "
                    "scripts/install-deps.sh --test)";
  }
  test::TempDir dir;
  const std::string trace = dir.path() + "/torch_profile.json";
  const test::CommandResult made = test::run_program_until(
      "/usr/bin/env", {python, "tests/traces/make_torch_profile.py", trace}, 300);
  ASSERT_EQ(made.exit_code, 0) << made.err;

  const test::CommandResult r = test::run_chunkflow({"profile", trace, "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json rank = nlohmann::json::parse(r.out)["ranks"][0];
  ASSERT_EQ(rank["steps"].size(), 3u) << made.out << r.out.substr(0, 2000);
  for (const nlohmann::json& step : rank["steps"]) {
    EXPECT_EQ(step["name"].get<std::string>().rfind("ProfilerStep#", 0), 0u);
    EXPECT_GT(step["duration_s"].get<double>(), 0);
  }
  // On the CPU there are no kernels: the classes are CPU op self time, and the two linear
  // layers' addmm / mm are GEMM.
  EXPECT_EQ(rank["has_gpu_kernels"], false);
  EXPECT_EQ(rank["by_class_source"], "cpu_self_time");
  EXPECT_GT(rank["by_class_s"]["gemm"].get<double>(), 0);
  EXPECT_GT(rank["cpu_op_count"].get<int64_t>(), 0);

  const test::CommandResult text = test::run_chunkflow({"profile", trace});
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_NE(text.out.find("this profile has no GPU kernels"), std::string::npos) << text.out;
}

}  // namespace
}  // namespace cf

// The closed loop of issue 16 on a real PyTorch profile: tests/traces/make_qwen2_profile.py
// trains a Qwen2-style model built from tests/traces/data/qwen2-cpu.yaml on the chunks of a
// chunkflow plan, on the CPU under torch.profiler with record_shapes; `chunkflow calibrate
// --from-profile` fits a hardware file to it; `chunkflow simulate` of the same job on that file
// must predict the profiled step within 10%. A legacy export (no shapes) is refused. Skipped,
// with the reason, when no python3 here imports torch and yaml.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/support/subprocess.h"

namespace cf {
namespace {

// The job the script trains and the simulator prices: one stage, packed chunks of at most 256
// tokens over six sequences of odd lengths (684 tokens).
std::string job_yaml(const std::string& gpu) {
  const std::string model = std::filesystem::absolute("tests/traces/data/qwen2-cpu.yaml");
  return fmt::format(
      "model: {}\n"
      "cluster: {{gpu: {}, gpus: 1, gpus_per_node: 1}}\n"
      "dataset: {{lengths: [200, 90, 151, 61, 139, 43], max_length: 256}}\n"
      "training: {{global_batch: 6, steps: 1}}\n"
      "parallel: {{tp: 1, pp: 1, dp: 1, recompute: none, schedule: 1f1b}}\n"
      "strategy: {{kind: chunkflow, chunk_size: 256, k: 1}}\n",
      model, gpu);
}

// The plan of job_yaml's job, trained under the profiler by make_qwen2_profile.py with
// `options`: the profile's path, or "" after a failure reported here.
std::string make_profile(const test::TempDir& dir, const std::string& python,
                         const std::vector<std::string>& options) {
  const test::CommandResult plan =
      test::run_chunkflow({"plan", dir.write("job.yaml", job_yaml("h100-sxm-80g")), "--json"});
  EXPECT_EQ(plan.exit_code, 0) << plan.err;
  if (plan.exit_code != 0) return "";
  const std::string profile = dir.path() + "/profile.json";
  std::vector<std::string> args{
      python,   "tests/traces/make_qwen2_profile.py", "--model", "tests/traces/data/qwen2-cpu.yaml",
      "--plan", dir.write("plan.json", plan.out),     "--out",   profile};
  args.insert(args.end(), options.begin(), options.end());
  const test::CommandResult made = test::run_program_until("/usr/bin/env", args, 600);
  EXPECT_EQ(made.exit_code, 0) << made.err;
  return made.exit_code == 0 ? profile : "";
}

TEST(ProfileLoop, CalibratedFromAProfileTheSimulatorPredictsItsStepWithinTenPercent) {
  const std::string python = test::python_with("torch, yaml");
  if (python.empty()) {
    GTEST_SKIP() << "no python3 here imports torch and yaml (apt-get install python3-torch "
                    "python3-yaml, or scripts/install-deps.sh --test)";
  }
  test::TempDir dir;
  const std::string profile = make_profile(dir, python, {"--marks", "--steps", "3"});
  ASSERT_FALSE(profile.empty());

  const std::string fitted = dir.path() + "/fitted.yaml";
  const test::CommandResult calibrated =
      test::run_chunkflow({"calibrate", "--from-profile", profile, "--gpu",
                           "tests/traces/data/cpu-host.yaml", "--out", fitted});
  ASSERT_EQ(calibrated.exit_code, 0) << calibrated.err;
  EXPECT_NE(calibrated.out.find("gemm_efficiency"), std::string::npos) << calibrated.out;

  const test::CommandResult simulated =
      test::run_chunkflow({"simulate", dir.write("job-fitted.yaml", job_yaml(fitted)), "--json"});
  ASSERT_EQ(simulated.exit_code, 0) << simulated.err;
  const double predicted = nlohmann::json::parse(simulated.out)["step_time_s"].get<double>();

  const test::CommandResult profiled = test::run_chunkflow({"profile", profile, "--json"});
  ASSERT_EQ(profiled.exit_code, 0) << profiled.err;
  const nlohmann::json steps = nlohmann::json::parse(profiled.out)["ranks"][0]["steps"];
  ASSERT_EQ(steps.size(), 3u);
  double measured = 0;
  for (const nlohmann::json& step : steps) measured += step["duration_s"].get<double>();
  measured /= static_cast<double>(steps.size());

  const double error = predicted / measured - 1;
  RecordProperty("predicted_step_s", fmt::format("{:.4f}", predicted));
  RecordProperty("profiled_step_s", fmt::format("{:.4f}", measured));
  std::printf("predicted %.4f s, profiled %.4f s (mean of 3 steps): %+.1f%%\n", predicted, measured,
              100 * error);
  EXPECT_LT(std::abs(error), 0.10)
      << "predicted " << predicted << " s, profiled " << measured << " s\n"
      << calibrated.out;
}

TEST(ProfileLoop, ALegacyExportWithoutShapesIsRefused) {
  const std::string python = test::python_with("torch, yaml");
  if (python.empty()) GTEST_SKIP() << "no python3 here imports torch and yaml";
  test::TempDir dir;
  const std::string profile =
      make_profile(dir, python, {"--steps", "1", "--warmup", "0", "--legacy"});
  ASSERT_FALSE(profile.empty());
  const std::string out = dir.path() + "/never.yaml";
  const test::CommandResult r =
      test::run_chunkflow({"calibrate", "--from-profile", profile, "--gpu",
                           "tests/traces/data/cpu-host.yaml", "--out", out});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("no op records its input shapes"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("record_shapes=True"), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(out));
}

}  // namespace
}  // namespace cf

// A prediction against a real PyTorch profile, end to end: `chunkflow plan` a one-stage job of
// a two-layer Qwen2-style model, tests/traces/make_qwen2_profile.py trains it on the plan's
// chunks for two steps on the CPU under torch.profiler with every op marked
// (chunkflow:F:chunk=C, ...), `chunkflow simulate --trace` predicts the same plan, and
// `chunkflow compare` must match every op of the plan to its mark — in the Kineto form the
// script writes and in torch 1.x's legacy list. Skipped, with the reason, when no python3
// here imports torch and yaml.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "tests/support/subprocess.h"

namespace cf {
namespace {

using test::CommandResult;
using test::run_chunkflow;

// The first interpreter that imports torch and yaml: Debian's, then the one on PATH.
std::string python_with_torch() {
  for (const char* candidate : {"/usr/bin/python3", "python3"}) {
    const CommandResult r =
        test::run_program_until("/usr/bin/env", {candidate, "-c", "import torch, yaml"}, 120);
    if (r.exit_code == 0) return candidate;
  }
  return "";
}

// Qwen2-style, small enough that two steps train in a second on one core.
constexpr const char* kModel = R"(name: qwen2-compare-test
architecture: qwen2
hidden: 64
ffn_hidden: 128
layers: 2
heads: 4
kv_heads: 2
head_dim: 16
vocab: 256
qkv_bias: true
tied_embeddings: false
rope_theta: 10000.0
rms_norm_eps: 1.0e-6
max_position: 1024
attention: unfused
)";

// One stage, one DP rank, sequences no longer than a chunk (the script's conditions).
std::string job_yaml(const std::string& model_path) {
  return "model: " + model_path +
         "\ncluster: {gpu: h100-sxm-80g, gpus: 1, gpus_per_node: 8}\n"
         "dataset: {lengths: [60, 40, 30, 20], max_length: 64}\n"
         "training: {steps: 1}\n"
         "parallel: {tp: 1, pp: 1, dp: 1, recompute: none, schedule: 1f1b}\n"
         "strategy: {kind: chunkflow, chunk_size: 64, k: 1, packer: balanced}\n";
}

TEST(TorchCompare, EveryPlanOpMatchesItsMark) {
  const std::string python = python_with_torch();
  if (python.empty()) {
    GTEST_SKIP() << "no python3 here imports torch and yaml (apt-get install python3-torch "
                    "python3-yaml, or scripts/install-deps.sh --test)";
  }
  test::TempDir dir;
  const std::string job = dir.write("job.yaml", job_yaml(dir.write("model.yaml", kModel)));
  const CommandResult plan = run_chunkflow({"plan", job, "--json"});
  ASSERT_EQ(plan.exit_code, 0) << plan.err;
  const std::string plan_path = dir.write("plan.json", plan.out);
  const std::string predicted = dir.path() + "/predicted.json";
  const CommandResult sim = run_chunkflow({"simulate", job, "--trace", predicted});
  ASSERT_EQ(sim.exit_code, 0) << sim.err;
  const nlohmann::json plan_json = nlohmann::json::parse(plan.out);
  const std::size_t plan_ops = plan_json["ranks"][0]["stages"][0]["ops"].size();
  ASSERT_GT(plan_ops, 0u);

  for (const bool legacy : {false, true}) {
    SCOPED_TRACE(legacy ? "legacy list" : "kineto");
    const std::string profile = dir.path() + (legacy ? "/legacy.json" : "/kineto.json");
    std::vector<std::string> args = {python,    "tests/traces/make_qwen2_profile.py",
                                     "--model", dir.path() + "/model.yaml",
                                     "--plan",  plan_path,
                                     "--out",   profile,
                                     "--steps", "2",
                                     "--marks"};
    if (legacy) args.push_back("--legacy");
    const CommandResult made = test::run_program_until("/usr/bin/env", args, 300);
    ASSERT_EQ(made.exit_code, 0) << made.err;

    const std::string html = dir.path() + "/report.html";
    const CommandResult r =
        run_chunkflow({"compare", predicted, profile, "--json", "--html", html});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const nlohmann::json j = nlohmann::json::parse(r.out);
    ASSERT_EQ(j["step_time"]["steps"].size(), 2u);
    EXPECT_GT(j["step_time"]["measured_s"].get<double>(), 0);
    EXPECT_EQ(j["rank_table"][0]["busy_source"], "cpu_main_thread");
    EXPECT_GT(j["rank_table"][0]["measured_busy_s"].get<double>(), 0);
    EXPECT_GT(j["class_table"]["totals"][0]["measured_s"].get<double>(), 0);  // gemm
    // Every op of the plan (and the optimizer step) is matched to its mark, nothing is left.
    const nlohmann::json& ops = j["ops"];
    ASSERT_EQ(ops["available"], true) << ops["reason"];
    EXPECT_EQ(ops["ranks"][0]["step"], "ProfilerStep#1");
    EXPECT_EQ(ops["ranks"][0]["time_source"], legacy ? "legacy list events" : "user_annotation");
    EXPECT_EQ(ops["matched_ops"].get<std::size_t>(), plan_ops + 1);
    EXPECT_EQ(ops["unmatched"]["only_predicted"]["total"], 0);
    EXPECT_EQ(ops["unmatched"]["only_measured"]["total"], 0);
    EXPECT_TRUE(ops["unknown_marks"].empty());
    EXPECT_TRUE(test::run_program_until("/usr/bin/test", {"-s", html}, 10).exit_code == 0);
  }
}

}  // namespace
}  // namespace cf

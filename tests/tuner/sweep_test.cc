// Sweeps: the strict sweep-file reader (errors with file:line:col and key), the points of a
// small sweep, the smallest GPU count reaching a target, and the CSV.
#include "tuner/sweep.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

namespace cf {
namespace {

const char* kBaseJob =
    "model: qwen2.5-0.5b\ncluster: {gpu: h100-sxm-80g, gpus: 4, gpus_per_node: 8}\n"
    "dataset: {distribution: lmsys-chat-1m, max_length: 16384, seed: 3}\n"
    "training: {global_batch: 63}\n"
    "parallel: {tp: 1, pp: 2, dp: 2}\nstrategy: {kind: chunkflow, chunk_size: 4096, k: 2}\n";

class SweepTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/sweep_test_" + std::to_string(::getpid());
    std::filesystem::create_directories(dir_);
    write("base.yaml", kBaseJob);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string write(const std::string& name, const std::string& text) {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path) << text;
    return path;
  }
  std::string dir_;
};

TEST_F(SweepTest, PointsTargetAndCsv) {
  const std::string path = write("sweep.yaml",
                                 "job: base.yaml\n"
                                 "vary:\n  gpus: [8, 2, 4]\n  max_length: [8192, 16384]\n"
                                 "target_tokens_per_s: 1.0\n"
                                 "tune: {tp: all, pp: all, chunk_sizes: [2048, 4096], k_max: 2}\n");
  StatusOr<SweepSpec> spec = load_sweep(path);
  ASSERT_TRUE(spec.ok()) << spec.status().message();
  EXPECT_EQ(spec->gpu_counts, (std::vector<int64_t>{2, 4, 8}));
  TuneOptions options;
  options.threads = 2;
  int calls = 0;
  StatusOr<SweepResult> result = run_sweep(*spec, options, [&](int i, int n, const std::string&) {
    EXPECT_EQ(i, calls++);
    EXPECT_EQ(n, 6);
  });
  ASSERT_TRUE(result.ok()) << result.status().message();
  ASSERT_EQ(result->points.size(), 6u);
  EXPECT_EQ(calls, 6);
  // Context outer, GPU count inner.
  EXPECT_EQ(result->points[0].max_length, 8192);
  EXPECT_EQ(result->points[0].gpus, 2);
  EXPECT_EQ(result->points[5].gpus, 8);
  for (const SweepPoint& p : result->points) {
    ASSERT_TRUE(p.best.has_value()) << p.error << p.closest_miss;
    const ParallelLayout& l = p.best->candidate.layout;
    EXPECT_EQ(l.tp * l.pp * l.dp, p.gpus);
  }
  // A target of 1 token/s: every group's answer is its smallest GPU count.
  ASSERT_EQ(result->target.size(), 2u);
  EXPECT_EQ(result->target[0].gpus, 2);
  EXPECT_EQ(result->target[1].gpus, 2);
  const std::string csv = sweep_csv(*result);
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 7);
  EXPECT_EQ(csv.rfind("model,dataset,gpu,gpus,max_length,feasible,chunk_size,k,", 0), 0u);
  EXPECT_NE(sweep_table(*result).find("smallest GPU count"), std::string::npos);
  EXPECT_EQ(sweep_json(*result)["points"].size(), 6u);
}

TEST_F(SweepTest, UnreachableTargetAndUnfillableGpuCount) {
  const std::string path = write("sweep.yaml",
                                 "job: base.yaml\nvary:\n  gpus: [3, 4]\n"
                                 "target_tokens_per_s: 1.0e15\n"
                                 "tune: {chunk_sizes: [4096], k: [1]}\n");
  StatusOr<SweepSpec> spec = load_sweep(path);
  ASSERT_TRUE(spec.ok()) << spec.status().message();
  StatusOr<SweepResult> result = run_sweep(*spec, TuneOptions{}, nullptr);
  ASSERT_TRUE(result.ok()) << result.status().message();
  ASSERT_EQ(result->points.size(), 2u);
  EXPECT_FALSE(result->points[0].best.has_value());  // pp 2 does not divide 3 GPUs
  EXPECT_FALSE(result->points[0].error.empty());
  EXPECT_TRUE(result->points[1].best.has_value());
  ASSERT_EQ(result->target.size(), 1u);
  EXPECT_EQ(result->target[0].gpus, 0);
  EXPECT_NE(sweep_table(*result).find("none of the GPU counts swept reaches it"),
            std::string::npos);
}

TEST_F(SweepTest, BadFilesNameLineAndKey) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"job: base.yaml\nvary:\n  gpus: [8]\n  colour: [red]\n", ":4:3: vary.colour: unknown key"},
      {"job: base.yaml\nvary:\n  gpus: [8, -2]\n", ":3:13: vary.gpus: expected a positive integer"},
      {"job: base.yaml\nvary:\n  gpu: [h100-sxm-80g, tpu9]\n",
       ":3:23: vary.gpu: unknown GPU \"tpu9\""},
      {"job: base.yaml\nvary:\n  model: qwen2.5-7b\n",
       ":3:10: vary.model: expected a non-empty list"},
      {"job: missing.yaml\nvary:\n  gpus: [8]\n", ":1:6: job:"},
      {"job: base.yaml\n", ":1:1: vary: required key is missing"},
      {"job: base.yaml\nvary: {gpus: [4]}\ntune: {k_max: 0}\n", ":3:15: tune.k_max"},
      {"job: base.yaml\nvary: {gpus: [4]}\ntarget_tokens_per_s: -5\n",
       ":3:22: target_tokens_per_s"},
  };
  for (const auto& [text, expected] : cases) {
    const std::string path = write("bad.yaml", text);
    StatusOr<SweepSpec> spec = load_sweep(path);
    ASSERT_FALSE(spec.ok()) << text;
    EXPECT_EQ(spec.status().code(), StatusCode::kInvalidInput) << spec.status().message();
    EXPECT_NE(spec.status().message().find(path + expected), std::string::npos)
        << spec.status().message() << "\nexpected: " << path << expected;
  }
}

}  // namespace
}  // namespace cf

// Sweeps: the strict sweep-file reader (errors with file:line:col and key), the points of a
// small sweep, the smallest GPU count reaching a target, the CSV, and the wire form of a
// tuned point (what MPI ranks send each other).
#include "tuner/sweep.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "tuner/sweep_wire.h"

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

// The wire form that carries a tuned point between MPI ranks (tuner/sweep_wire.h): a point
// read back writes the same bytes, prints the same table, CSV and JSON, and keeps doubles
// bit for bit; bytes that are not a point are a runtime error.
TEST(SweepWire, PointsReadBackExactly) {
  StatusOr<SweepSpec> spec = load_sweep("tests/tuner/data/sweep-mpi.yaml");
  ASSERT_TRUE(spec.ok()) << spec.status().message();
  TuneOptions options;
  options.threads = 1;
  StatusOr<SweepResult> tuned = run_sweep(*spec, options, {});
  ASSERT_TRUE(tuned.ok()) << tuned.status().message();
  SweepResult copy = *tuned;
  for (SweepPoint& point : copy.points) {
    const std::vector<uint8_t> bytes = sweep_point_to_wire(point);
    StatusOr<SweepPoint> back = sweep_point_from_wire(bytes);
    ASSERT_TRUE(back.ok()) << back.status().message();
    EXPECT_EQ(sweep_point_to_wire(*back), bytes);
    point = *std::move(back);
  }
  EXPECT_EQ(sweep_table(copy), sweep_table(*tuned));
  EXPECT_EQ(sweep_csv(copy), sweep_csv(*tuned));
  EXPECT_EQ(sweep_json(copy).dump(), sweep_json(*tuned).dump());
  ASSERT_TRUE(copy.points[0].best && copy.points[0].baseline);
  EXPECT_FALSE(copy.points[1].best.has_value());  // 3 GPUs: not tuned, the reason kept
  EXPECT_EQ(copy.points[1].error, tuned->points[1].error);

  // Doubles that print alike at 17 digits or need every bit; every field of a stage.
  SweepPoint tricky = tuned->points[0];
  SimMetrics& m = tricky.best->metrics;
  m.step_time_s = 0.1 + 0.2;
  m.mfu = std::nextafter(0.5, 1.0);
  m.bubble_ratio = 4.9e-324;  // the smallest subnormal
  m.model_flops = 1.7976931348623157e308;
  m.stages[0].peak_breakdown.transient = int64_t{1} << 62;
  m.stages[0].tp_comm_s = -0.0;
  m.kv_offload = "all ≥ 65537 tokens";
  m.kv_offload_min_tokens = 65537;
  tricky.best->candidate.strategy.kv_offload = KvOffload::kAll;
  tricky.best->candidate.strategy.kv_offload_min_tokens = 65537;
  StatusOr<SweepPoint> back = sweep_point_from_wire(sweep_point_to_wire(tricky));
  ASSERT_TRUE(back.ok());
  const SimMetrics& b = back->best->metrics;
  EXPECT_EQ(b.step_time_s, 0.1 + 0.2);
  EXPECT_EQ(b.mfu, std::nextafter(0.5, 1.0));
  EXPECT_EQ(b.bubble_ratio, 4.9e-324);
  EXPECT_EQ(b.model_flops, 1.7976931348623157e308);
  EXPECT_EQ(b.stages[0].peak_breakdown, m.stages[0].peak_breakdown);
  EXPECT_TRUE(std::signbit(b.stages[0].tp_comm_s));
  EXPECT_EQ(back->best->candidate.layout, tricky.best->candidate.layout);
  EXPECT_EQ(back->best->candidate.strategy.chunk_size, tricky.best->candidate.strategy.chunk_size);
  EXPECT_EQ(back->best->candidate.strategy.kv_offload_min_tokens, 65537);
  EXPECT_EQ(b.kv_offload, "all ≥ 65537 tokens");
  EXPECT_EQ(b.kv_offload_min_tokens, 65537);

  std::vector<uint8_t> broken = sweep_point_to_wire(tricky);
  broken.resize(broken.size() / 2);
  StatusOr<SweepPoint> bad = sweep_point_from_wire(broken);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kRuntime);
}

}  // namespace
}  // namespace cf

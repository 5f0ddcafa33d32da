// Random small jobs and search spaces for the tuner's property tests: explicit long-tailed
// sequence lengths (so long ones split into groups), a GPU count with several layouts, and
// a memory-tight GPU so that some candidates do not fit. Fixed seeds; odd sizes.
#pragma once

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "sim/plan/job.h"
#include "tuner/search_space.h"

namespace cf::test {

// A job of `model` on `gpus` GPUs (tp·pp·dp = gpus with tp = pp = 1) whose global batch is
// `sequences` lengths drawn log-uniformly in [16, max_length].
// An empty `model` picks qwen2.5-7b (memory-tight on 4 GPUs) or qwen2.5-0.5b by seed.
inline Job random_job(uint64_t seed, std::string model = "", int gpus = 4) {
  std::mt19937_64 rng(seed);
  if (model.empty()) model = seed % 2 ? "qwen2.5-7b" : "qwen2.5-0.5b";
  const int64_t max_length = std::vector<int64_t>{8192, 16384, 32768, 65536}[rng() % 4];
  const int sequences = 7 + static_cast<int>(rng() % 40);
  std::uniform_real_distribution<double> u(std::log(16.0), std::log(double(max_length)));
  std::string lengths;
  for (int i = 0; i < sequences; ++i) {
    lengths += fmt::format("{}{}", i ? ", " : "", std::llround(std::exp(u(rng))));
  }
  const std::string gpu = rng() % 2 ? "a100-sxm-80g" : "h100-sxm-80g";
  const std::string text = fmt::format(
      "model: {}\ncluster: {{gpu: {}, gpus: {}, gpus_per_node: 8}}\n"
      "dataset: {{lengths: [{}], max_length: {}}}\n"
      "parallel: {{tp: 1, pp: 1, dp: {}}}\n"
      "strategy: {{kind: chunkflow, chunk_size: 4096, k: 1}}\n",
      model, gpu, gpus, lengths, max_length, gpus);
  StatusOr<Job> job = parse_job(text, fmt::format("<random job {}>", seed));
  EXPECT_TRUE(job.ok()) << job.status().message();
  return *job;
}

// A random sub-space: ChunkSizes of the grid from 1K, K up to 1..6, some TP/PP values,
// recompute policies, packers and schedules; a memory margin in [0, 0.3].
inline SearchSpace random_space(const Job& job, uint64_t seed) {
  std::mt19937_64 rng(seed * 7919 + 1);
  SearchSpace space;
  space.chunk_size_min = 1024;
  const int k_max = 1 + static_cast<int>(rng() % 6);
  for (int k = 1; k <= k_max; ++k) space.ks.push_back(k);
  space.tp = rng() % 2 ? IntAxis{true, {}} : IntAxis{false, {1}};
  space.pp = rng() % 2 ? IntAxis{true, {}} : IntAxis{false, {1, 2}};
  const std::vector<Recompute> all = {Recompute::kNone, Recompute::kSelective, Recompute::kFull};
  for (Recompute r : all) {
    if (rng() % 2 || r == Recompute::kFull) space.recomputes.push_back(r);
  }
  space.schedules = {ScheduleKind::kOneFOneB};
  if (rng() % 3 == 0) space.schedules.push_back(ScheduleKind::kGPipe);
  space.packers = {Packer::kBalanced};
  if (rng() % 2) space.packers.push_back(Packer::kFirstFitDecreasing);
  space.memory_margin = 0.3 * static_cast<double>(rng() % 100) / 100.0;
  space.objective = rng() % 4 == 0 ? Objective::kTokensPerS : Objective::kStepTime;
  space.top = 1 + static_cast<int>(rng() % 5);
  return space;
}

}  // namespace cf::test

// Test helpers for the simulator: jobs from inline YAML (the tiny model, an H100 node) and
// plans built from a job or edited by hand.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "sim/plan/job.h"
#include "sim/plan/plan_builder.h"
#include "sim/simulator.h"

namespace cf::test {

// A job on the tiny model (4 layers, 4 heads, 2 KV heads) on H100s: tp·pp·dp GPUs,
// `parallel_extra` adds keys to the parallel section (e.g. "recompute: full"), `strategy` is
// the strategy section, `lengths` the global batch.
inline Job tiny_job(int tp, int pp, int dp, const std::string& parallel_extra,
                    const std::string& strategy, const std::string& lengths,
                    const std::string& cost = "unit") {
  const int gpus = tp * pp * dp;
  int sequences = 1;  // so training.global_batch matches dataset.lengths
  for (char c : lengths) sequences += c == ',';
  const std::string text =
      "model: tiny\n"
      "cluster: {gpu: h100-sxm-80g, gpus: " +
      std::to_string(gpus) + ", gpus_per_node: " + std::to_string(gpus % 8 == 0 ? 8 : gpus) +
      "}\n"
      "dataset: {lengths: [" +
      lengths +
      "], max_length: 1048576}\n"
      "training: {global_batch: " +
      std::to_string(sequences) +
      ", steps: 1}\n"
      "parallel: {tp: " +
      std::to_string(tp) + ", pp: " + std::to_string(pp) + ", dp: " + std::to_string(dp) +
      (parallel_extra.empty() ? "" : ", " + parallel_extra) +
      "}\n"
      "strategy: " +
      strategy +
      "\n"
      "cost_model: {kind: " +
      cost + "}\n";
  StatusOr<Job> job = parse_job(text, "<test>");
  CF_CHECK(job.ok()) << job.status().message() << "\n" << text;
  return *job;
}

inline Plan plan_of(const Job& job) {
  StatusOr<Plan> plan = build_plan(job, 0);
  CF_CHECK(plan.ok()) << plan.status().message();
  return *plan;
}

}  // namespace cf::test

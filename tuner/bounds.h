// Lower bounds that let the tuner skip a candidate without simulating it: a step-time bound
// (each stage's own work with only its unavoidable pipeline fill and drain) and a memory
// bound (model states plus the single chunk that needs the most). Both are built from the
// same cost and memory models as the simulator and never exceed the simulated value
// (tests/tuner/bounds_test.cc). Not the search (tuner.cc).
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <tuple>
#include <vector>

#include "sim/cost_model.h"
#include "sim/plan/job.h"
#include "sim/plan/plan.h"

namespace cf {

// The chunks (baseline: micro-batches) of every sampled step for one chunking, as
// build_plan makes them, before DP distribution.
struct StepChunks {
  std::vector<std::vector<Chunk>> steps;
  int max_group_size = 1;  // largest N of a dependent group over all steps (1: none)
  // Whether the last entry of `steps` is the worst-case batch (sim/plan/job.h
  // worst_case_batch): judged for memory, left out of the step-time average.
  bool worst_case_last = false;
  int timed_steps() const { return static_cast<int>(steps.size()) - (worst_case_last ? 1 : 0); }

  // The DP rank of each chunk of step `step` over `dp` ranks (plan_builder.h's
  // assign_dp_ranks), computed once per (step, dp, pair_weight) for every layout that asks;
  // safe to call from several threads.
  const std::vector<int>& dp_ranks(int step, int dp, double pair_weight) const;

 private:
  // Copies start empty (the assignments belong to the steps they were computed for).
  struct RankCache {
    RankCache() = default;
    RankCache(const RankCache&) {}
    RankCache& operator=(const RankCache&) { return *this; }
    std::mutex mu;
    std::map<std::tuple<int, int, double>, std::vector<int>> ranks;
  };
  mutable RankCache ranks_;
};

struct CandidateBounds {
  double step_time_s = 0;      // ≤ the simulated mean step time (averaged as average_steps does)
  std::vector<double> step_s;  // per sampled step: ≤ its simulated step time
  double tokens_per_s = 0;     // ≥ the simulated tokens/s: Σ tokens / Σ step-time bounds
  int64_t memory_bytes = 0;    // ≤ the simulated peak of the worst stage (reserve not included)
  int memory_stage = 0;        // the stage of memory_bytes
  int64_t model_state_bytes = 0;  // that stage's model states (part of memory_bytes)
  // Every chunk's F* takes at least its F's time on every stage (the cost models here price
  // them alike). Then, with the same layout and chunking, a smaller K never simulates faster:
  // its plan has the same streams with some F turned F* and an R (time ≥ 0) inserted before
  // their B, and the simulator's times only grow when op times grow (search.cc uses this).
  bool slower_with_smaller_k = false;
};

// Bounds for each K in `ks` (ascending) of one layout and chunking. `job` carries the layout
// (parallel) and the model; `cost` is make_cost_model(job). Assumes, as the cost models here
// do, that an op's time does not depend on which DP rank runs it (DP ranks are identical
// hardware). With `memory_budget_bytes` > 0, a layout whose model states alone exceed it gets
// its memory bound only (no chunk priced), and one whose every K's memory bound exceeds it
// no step-time bound: the step bounds 0, step_s empty.
std::vector<CandidateBounds> candidate_bounds(const Job& job, const CostModel& cost,
                                              const StepChunks& chunks, const std::vector<int>& ks,
                                              int64_t memory_budget_bytes = 0);

}  // namespace cf

// Replays the memory of one GPU of a (DP rank, stage) over simulated time: what each op of
// its stream allocates when it starts and frees when it ends (DESIGN.md §4.5). Peaks and
// breakdowns, optionally the full timeline. The byte formulas are memory_model.h.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "sim/memory_model.h"
#include "sim/plan/plan.h"
#include "traces/trace.h"

namespace cf {

struct MemoryBreakdown {
  int64_t weights = 0;
  int64_t gradients = 0;
  int64_t optimizer = 0;
  int64_t activations = 0;  // kept for backward: activations, F* stage inputs
  int64_t state_store = 0;  // K/V of open groups' chunks, fp32 dK/dV being accumulated
  int64_t transient = 0;    // working memory of the op running now
  int64_t total() const {
    return weights + gradients + optimizer + activations + state_store + transient;
  }
  int64_t dynamic() const { return activations + state_store + transient; }
};

struct StageMemoryReplay {
  MemoryBreakdown peak;  // at the moment of the highest total (first such moment)
  int64_t peak_time_ns = 0;
  int64_t min_category_bytes = 0;  // lowest value any dynamic category reached (never < 0)
  int64_t end_dynamic_bytes = 0;   // left allocated after the last op (0: all freed)
};

// What the ops of one stage allocate, per op, from the plan and the memory model.
// `first` / `last`: the op runs the first / last virtual stage (embedding / LM head).
struct OpMemory {
  int64_t activations_at_start = 0;
  int64_t activations_at_end = 0;  // freed (negative) or kept (positive) at the end
  int64_t store_at_start = 0;
  int64_t store_at_end = 0;
  int64_t transient = 0;  // allocated at start, freed at end
};
OpMemory op_memory(const MemoryModel& memory, const Plan& plan, const Op& op, bool first,
                   bool last);

// Replays `ops` (one stage's stream of DP rank `dp_rank`) whose i-th op ran over
// [start_ns[i], end_ns[i]). Appends samples of every category that changed (and "total")
// to `samples` when it is not null.
StageMemoryReplay replay_stage_memory(const MemoryModel& memory, const Plan& plan, int dp_rank,
                                      int stage, const std::vector<Op>& ops,
                                      const int64_t* start_ns, const int64_t* end_ns,
                                      std::vector<MemorySample>* samples);

}  // namespace cf

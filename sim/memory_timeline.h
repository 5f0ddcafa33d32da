// Replays the memory of one GPU of a (DP rank, stage) over simulated time: what each op of
// its stream allocates when it starts and frees when it ends (DESIGN.md §4.5). Peaks and
// breakdowns, optionally the full timeline. The bytes come from a memory source
// (memory_source.h).
#pragma once

#include <cstdint>
#include <vector>

#include "sim/memory_source.h"
#include "sim/plan/plan_index.h"
#include "traces/trace.h"

namespace cf {

struct StageMemoryReplay {
  MemoryBreakdown peak;  // at the moment of the highest total (first such moment)
  int64_t peak_time_ns = 0;
  int64_t min_category_bytes = 0;  // lowest value any dynamic category reached (never < 0)
  int64_t end_dynamic_bytes = 0;   // left allocated after the last op (0: all freed)
  // The stage's allocations could add up past 2^62 bytes (core/numeric.h): not replayed.
  bool too_large = false;
  int64_t host_peak_bytes = 0;  // offloaded K/V and dK/dV held in host memory at most
};

// Replays the stream of (dp_rank, stage), whose op i (an index of `index`) ran over
// [start_ns[i], end_ns[i]). Appends samples of every category that changed (and the total)
// to `samples` when it is not null. Empty start_ns and end_ns: the peak without its time
// (peak_time_ns 0) and no samples (a peak depends only on the ops' order).
StageMemoryReplay replay_stage_memory(const OpMemorySource& memory, const PlanIndex& index,
                                      int dp_rank, int stage, const std::vector<int64_t>& start_ns,
                                      const std::vector<int64_t>& end_ns,
                                      std::vector<MemorySample>* samples);

}  // namespace cf

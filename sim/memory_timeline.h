// Replays the memory of one GPU of a (DP rank, stage) over simulated time: what each op of
// its stream allocates when it starts and frees when it ends (DESIGN.md §4.5). Peaks and
// breakdowns, optionally the full timeline. The byte formulas are memory_model.h.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "sim/memory_model.h"
#include "sim/plan/plan_index.h"
#include "traces/trace.h"

namespace cf {

struct StageMemoryReplay {
  MemoryBreakdown peak;  // at the moment of the highest total (first such moment)
  int64_t peak_time_ns = 0;
  int64_t min_category_bytes = 0;  // lowest value any dynamic category reached (never < 0)
  int64_t end_dynamic_bytes = 0;   // left allocated after the last op (0: all freed)
};

// What op `i` of the plan allocates, from the plan and the memory model.
struct OpMemory {
  int64_t activations_at_start = 0;
  int64_t activations_at_end = 0;  // freed (negative) or kept (positive) at the end
  int64_t store_at_start = 0;
  int64_t store_at_end = 0;
  int64_t transient = 0;  // allocated at start, freed at end
};
OpMemory op_memory(const MemoryModel& memory, const PlanIndex& index, int i);
// Megatron-LM's accounting of a pass of `chunk` over the layers of `place`, the plan's K being
// `k` (which decides the pieces that run F*): what op_memory gives for such an op, and what
// the tuner's bounds price chunks by before a plan exists.
OpMemory megatron_op_memory(const MemoryModel& memory, Pass pass, const Chunk& chunk, int k,
                            const StagePlace& place);

// Replays the stream of (dp_rank, stage), whose op i (an index of `index`) ran over
// [start_ns[i], end_ns[i]). Appends samples of every category that changed (and the total)
// to `samples` when it is not null.
StageMemoryReplay replay_stage_memory(const MemoryModel& memory, const PlanIndex& index,
                                      int dp_rank, int stage, const std::vector<int64_t>& start_ns,
                                      const std::vector<int64_t>& end_ns,
                                      std::vector<MemorySample>* samples);

}  // namespace cf

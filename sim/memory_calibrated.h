// The memory of the fp32 executor (executor/), as its measuring allocator counts it, for the
// calibrated cost model: model states in fp32 (weights, gradients, AdamW m and v, nothing
// sharded) and, per op, the exact sequence of buffers executor/stage.cc, layer.cc, head.cc and
// state_store.cc allocate and free, replayed to get the op's peak and what it leaves held.
// Not the GPU (Megatron, bf16) accounting of memory_model.h.
#pragma once

#include <cstdint>

#include "models/model.h"
#include "sim/plan/plan.h"
#include "traces/kinds.h"

namespace cf {

// fp32 weights, fp32 gradients, AdamW m and v (fp32) of a stage's parameters.
MemoryBreakdown executor_model_states(const ModelConfig& model, int pp, int vpp, int stage);

// One op of a stage's stream, relative to what the stage held when it began: the highest
// total it reached while running (`peak_bytes` ≥ 0) and what it left held afterwards, by
// category (a forward keeps activations and K/V; a backward frees them and, as the first
// backward of a group, leaves the fp32 dK/dV of the earlier pieces in the store).
struct ExecutorOpBytes {
  int64_t peak_bytes = 0;
  int64_t activations_delta = 0;
  int64_t store_delta = 0;
};

// `first` / `last`: the op runs the first / last virtual stage (embedding / LM head).
ExecutorOpBytes executor_op_bytes(const ModelConfig& model, const Plan& plan, const Op& op,
                                  bool first, bool last);

}  // namespace cf

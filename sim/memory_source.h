// Where the simulator's memory replay gets its bytes: the model states of each stage and what
// each op of a stream allocates and frees. Two sources, chosen by the job's memory_model:
// Megatron-LM's accounting on GPUs (memory_model.h's formulas, here) and the CPU executor's own
// allocator, counted by running the executor's code without arithmetic
// (executor/calibrate/executor_memory.h) — which this library cannot link, so the program
// installs it (set_executor_memory_factory). Not the replay itself (memory_timeline.h).
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "core/status.h"
#include "sim/memory_model.h"
#include "sim/plan/job.h"
#include "sim/plan/plan_index.h"
#include "traces/kinds.h"

namespace cf {

// What one op allocates: at its start (kept past the op, or transient for its duration) and
// at its end (positive: kept; negative: freed).
struct OpMemory {
  int64_t activations_at_start = 0;
  int64_t activations_at_end = 0;
  int64_t store_at_start = 0;
  int64_t store_at_end = 0;
  int64_t transient = 0;  // allocated at start, freed at end
  // Host memory of offloaded K/V and dK/dV (strategy.kv_offload): as the store's, on the host.
  int64_t host_at_start = 0;
  int64_t host_at_end = 0;
  bool operator==(const OpMemory&) const = default;
};

class OpMemorySource {
 public:
  virtual ~OpMemorySource() = default;
  // Per GPU (or executor stage): weights, gradients and optimizer states; the rest 0.
  virtual MemoryBreakdown model_states(int stage) const = 0;
  // What each op of the stream of (dp_rank, stage) of `index` allocates, in stream order.
  virtual std::vector<OpMemory> stream(const PlanIndex& index, int dp_rank, int stage) const = 0;
};

// Megatron-LM's accounting of a pass of `chunk` over the layers of `place`, the plan's K being
// `k` (which decides the pieces that run F*). Lifetimes (DESIGN.md §4.2, §4.5):
//   F   keeps the chunk's activations until its B; a dependent chunk's K/V go to the store.
//   F*  keeps the stage input (for R) until its B; its K/V go to the store.
//   R   restores the activations until its B.
//   B   frees them, and the chunk's K/V. The group's first backward (highest index)
//       allocates fp32 dK/dV for every earlier piece (its prefix); B of piece j frees
//       piece j's dK/dV, which it consumed.
// A dependent chunk's K/V are counted in the store, not in its activations. What the tuner's
// bounds price chunks by before a plan exists.
// With `offload` (strategy.kv_offload) a dependent piece's K/V stay on the GPU only while the
// forward that makes them runs and then move to the host; the fp32 dK/dV are allocated on the
// host; every op that reads a prefix streams it through two piece-sized buffers (K/V, and
// dK/dV in a backward), and a backward streams its own K/V back in: transient memory.
OpMemory megatron_op_memory(const MemoryModel& memory, Pass pass, const Chunk& chunk, int k,
                            const StagePlace& place, bool offload = false);

class MegatronMemory final : public OpMemorySource {
 public:
  // Offloads the pieces of the sequences `offload` names (by their length in the plan).
  explicit MegatronMemory(MemoryModel model, KvOffloadPolicy offload = {})
      : model_(std::move(model)), offload_(offload) {}
  MemoryBreakdown model_states(int stage) const override { return model_.model_states(stage); }
  std::vector<OpMemory> stream(const PlanIndex& index, int dp_rank, int stage) const override;
  const MemoryModel& model() const { return model_; }

 private:
  MemoryModel model_;
  KvOffloadPolicy offload_;
};

using MemorySourceFactory = std::function<StatusOr<std::unique_ptr<OpMemorySource>>(const Job&)>;
// Installs the executor's accounting (memory_model: executor). Call before simulating, not
// concurrently with it (the chunkflow program does at start).
void set_executor_memory_factory(MemorySourceFactory factory);

// The source the job's memory_model names. InvalidInput naming the key when it is the
// executor's and none is installed.
StatusOr<std::unique_ptr<OpMemorySource>> make_memory_source(const Job& job);

}  // namespace cf

// The CPU executor's memory as the simulator's memory source (sim/memory_source.h): every op
// of a stream counted by running the executor's own op code on the counting backend
// (executor/counting_backend.h) — the buffers a real run allocates and frees, without storage
// or arithmetic — so the replayed peaks are the measured ones by construction, not by a second
// statement of the executor's allocation order. Used with memory_model: executor (the default
// with the calibrated cost model, which prices the same executor).
#pragma once

#include <memory>
#include <vector>

#include "core/status.h"
#include "executor/executor.h"
#include "executor/stage.h"
#include "sim/memory_source.h"
#include "sim/plan/job.h"

namespace cf {

class ExecutorMemory final : public OpMemorySource {
 public:
  // InvalidInput when the job is not one the executor runs (validate_for_executor).
  static StatusOr<std::unique_ptr<ExecutorMemory>> create(const Job& job);

  // fp32 weights and gradients, AdamW m and v: what a stage's parameters allocate.
  MemoryBreakdown model_states(int stage) const override;
  std::vector<OpMemory> stream(const PlanIndex& index, int dp_rank, int stage) const override;

 private:
  explicit ExecutorMemory(const Job& job)
      : model_(job.model),
        split_(layer_split(job.model.layers, job.parallel)),
        cp_(job.parallel.cp),
        kv_offload_(kv_offload_policy(job)) {}
  ModelConfig model_;
  LayerSplit split_;
  int cp_;
  KvOffloadPolicy kv_offload_;  // which sequences' K/V live in the host pool
};

// What an op did to memory, as the replay applies it: a forward keeps what it added (at its
// start) and holds the rest of its peak as transient; a backward holds its peak as transient
// and frees (or, as a group's first backward, leaves dK/dV) at its end; the host pool (K/V
// offload) rises to its peak within the op at the start and falls from it at the end. CHECKs
// a forward that frees or an op whose peak is under what it keeps.
OpMemory op_memory_of(const OpMemoryRecord& record);

// Installs ExecutorMemory as the source of memory_model: executor (set_executor_memory_factory).
void install_executor_memory();

}  // namespace cf

// One pipeline stage of one DP rank (and, with context parallelism, one CP rank): its
// parameters, state store, measuring allocator and backend stream, and the op runner that
// executes its op stream of a Plan — F, F*, R and B (DESIGN.md §4.2) — on its CP rank's rows of
// every chunk (context_parallel.h), then the gradient sums and the optimizer step, timing every
// op for the measured trace and recording its memory. Not the launch of stages (executor.h,
// mpi_run.h).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <utility>
#include <vector>

#include "executor/backend.h"
#include "executor/context_parallel.h"
#include "executor/cpu_backend.h"
#include "executor/head.h"
#include "executor/layer.h"
#include "executor/memory.h"
#include "executor/params.h"
#include "executor/state_store.h"
#include "executor/tokens.h"
#include "executor/transport.h"
#include "kernels/cpu/adamw.h"
#include "models/model.h"
#include "sim/plan/plan.h"
#include "sim/plan/plan_index.h"
#include "traces/trace.h"

namespace cf {

using StepClock = std::chrono::steady_clock;

// What one op of a stage's stream did to the stage's memory, bytes by category (memory.h):
// live at its start (before its input is received), the highest total reached while it ran
// with the breakdown at that first moment, and live at its end. A step's records, in stream
// order, chain (one's end is the next one's start) and their highest peak is the step's.
struct OpMemoryRecord {
  int op_id = 0;  // Op::id in the plan
  Pass pass = Pass::kForward;
  int chunk = 0;
  int model_chunk = 0;
  MemoryBreakdown live_at_start;
  int64_t peak_bytes = 0;  // ≥ the totals of both ends
  MemoryBreakdown at_peak;
  MemoryBreakdown live_at_end;
  // The host pool's live bytes at both ends and its peak within the op (K/V offload; 0
  // without): a backward adds its prefix's dK/dV before it frees its own piece.
  int64_t host_at_start = 0;
  int64_t host_peak = 0;
  int64_t host_at_end = 0;
  bool operator==(const OpMemoryRecord&) const = default;
};

class StageWorker {
 public:
  // Stage `stage` of `split` (its layers, the pipeline's pp and vpp; plans it runs must split
  // the same way). The stage's buffers come from, and its work runs on, a stream of `backend`
  // (which must outlive the worker). Every CP rank of `cp` runs the same op stream on its rows.
  StageWorker(const ModelConfig& model, const LayerSplit& split, int dp_rank, int stage,
              Backend* backend = &cpu_backend(), CpRank cp = {});

  // Runs this stage's op stream of `plan` on `batch`, then sums gradients over the tied
  // embedding pair and the dp·cp ranks of the stage. Loss scale 1 / (loss tokens of the batch).
  // Op times are recorded relative to `origin` when `record` (with memory samples at every op
  // boundary). `transport` may be null when pp = dp = cp = 1. Transports get storage after a
  // synchronize.
  void run_step(const Plan& plan, const TokenBatch& batch, Transport* transport,
                StepClock::time_point origin, bool record);
  // AdamW step `step` (≥ 1), then zeroes the gradients; recorded as an "optimizer" op.
  void optimizer_step(const AdamWHyper& hyper, int64_t step, StepClock::time_point origin,
                      bool record);

  double loss_sum() const { return loss_sum_; }  // Σ scaled token losses of the last step
  int dp_rank() const { return dp_rank_; }
  int cp_rank() const { return cp_.rank; }
  int stage() const { return stage_; }
  StageParams& params() { return params_; }
  const StageParams& params() const { return params_; }
  MemoryTracker& tracker() { return tracker_; }
  Stream& stream() { return *stream_; }
  // The memory records of the last step's ops (every op, whether or not `record`).
  const std::vector<OpMemoryRecord>& op_memory() const { return op_memory_; }
  // Trace ops and memory samples recorded since the last clear.
  std::vector<TraceOp>& trace_ops() { return trace_ops_; }
  std::vector<MemorySample>& memory_samples() { return memory_samples_; }
  void clear_trace();
  // Called before each op with the number of ops this worker has run so far, over all steps:
  // the MPI driver's fault-injection test hook (fault_injection.h). Empty by default.
  void set_before_op(std::function<void(int64_t ops_run)> hook) { before_op_ = std::move(hook); }
  // K/V offload (strategy.kv_offload: all): the state store's pieces in a host pool with its
  // own tracker (state_store.h). Between steps only.
  void set_kv_offload(const KvOffloadPolicy& offload) {
    store_.offload_to_host(offload.enabled ? &host_tracker_ : nullptr, offload.min_tokens);
  }
  const MemoryTracker& host_tracker() const { return host_tracker_; }
  const StateStore& store() const { return store_; }

 private:
  // Activations of one (chunk, model chunk) on this stage between its forward and backward.
  struct ChunkState {
    FloatBuffer stage_input;  // (t, h) layer 0's input; what R recomputes from
    std::vector<LayerActs> layers;
    HeadActs head;
  };
  // One op of the stream, where the plan's rules put it (plan_index.h).
  struct OpContext {
    const PlanIndex* index;
    int at;  // the op's index in `index`
    const Op* op;
    const Chunk* chunk;
    const ChunkInputs* inputs;  // this CP rank's rows of the chunk
    const StagePlace* place;    // its layers; first: embedding; last: head and loss
  };

  // One op of the stream: receive its input, run it, record its time and memory.
  void run_op(const PlanIndex& index, int at, const TokenBatch& batch, Transport* transport,
              StepClock::time_point origin);
  FloatBuffer receive(const OpContext& ctx, Transport* transport, StepClock::time_point origin);
  // Sends the op's output `data` (t, h) — this CP rank's rows — to the op on another stage that
  // needs it (on the same CP rank), if any.
  void send(const OpContext& ctx, const float* data, Transport* transport);
  void sum_gradients(const Plan& plan, Transport* transport, StepClock::time_point origin);
  void run_forward(const OpContext& ctx, FloatBuffer input, Pass pass, Transport* transport);
  void run_backward(const OpContext& ctx, FloatBuffer dout, Transport* transport);
  // Runs the layers of the op's model chunk over st->stage_input; `keep`: activations are
  // kept in st->layers (F, R), otherwise dropped layer by layer (F*). Returns the output.
  FloatBuffer forward_layers(const OpContext& ctx, ChunkState* st, bool keep, bool store_kv);
  LayerCall layer_call(const OpContext& ctx, int64_t layer);
  FloatBuffer buffer(MemoryCategory category, int64_t count);
  float* weights_at(int64_t offset) { return storage_at(params_.weights(), offset); }
  float* gradients_at(int64_t offset) { return storage_at(params_.gradients(), offset); }
  int64_t now_ns(StepClock::time_point origin) const;
  void record_op(const OpContext& ctx, int64_t start_ns, int64_t end_ns);
  void record_other(OpKind kind, int64_t start_ns, int64_t end_ns);
  void sample_memory(int64_t time_ns, bool all);

  ModelConfig model_;
  LayerDims dims_;
  HeadDims head_dims_;
  LayerSplit split_;
  int pp_, dp_rank_, stage_;
  CpRank cp_;
  MemoryTracker tracker_;           // before the buffers it counts (declaration order)
  MemoryTracker host_tracker_;      // the host pool of offloaded K/V
  std::unique_ptr<Stream> stream_;  // before the buffers whose storage it gives
  StageParams params_;
  StateStore store_;
  std::map<std::pair<int, int>, ChunkState> states_;  // (chunk, model chunk)
  std::map<int, ChunkInputs> inputs_;                 // chunk → inputs, for the current step
  Transport* transport_ = nullptr;                    // of the current step
  float loss_scale_ = 0;
  double loss_sum_ = 0;
  bool record_ = false;
  StepClock::time_point origin_;  // of the current step's op times
  std::vector<TraceOp> trace_ops_;
  std::vector<MemorySample> memory_samples_;
  std::vector<OpMemoryRecord> op_memory_;
  MemoryBreakdown sampled_;
  int64_t sampled_total_ = -1;
  std::function<void(int64_t)> before_op_;
  int64_t ops_run_ = 0;
};

}  // namespace cf

// The cost-model interface (DESIGN.md §4.5): time of each thing the simulator replays, asked
// per op. Implementations: unit (cost_unit.h), analytical (cost_analytical.h); a calibrated
// model (cost_calibrated.h: tables measured on a machine, interpolated) behind the same queries.
// Memory is not a cost here (memory_model.h).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include "core/status.h"
#include "sim/plan/job.h"
#include "sim/plan/plan.h"
#include "sim/plan/plan_index.h"
#include "traces/trace.h"

namespace cf {

// One compute op of the plan on one stage: a pass of a chunk through `layers` consecutive
// transformer layers (plus the embedding on the first virtual stage, the LM head and loss
// on the last).
struct OpQuery {
  Pass pass = Pass::kForward;
  int dp_rank = 0;
  int stage = 0;
  int model_chunk = 0;
  int64_t layers = 0;
  bool embedding = false;
  bool lm_head = false;
  int64_t tokens = 0;  // Σ q_len
  std::span<const AttentionSpan> spans;
  bool dependent = false;  // a piece of a split sequence (its span's prefix is its offset)
  bool offloaded = false;  // ... whose K/V state lives in host memory (strategy.kv_offload)
};

// An op's time and the parts of it the metrics report.
struct OpTime {
  int64_t total_ns = 0;
  int64_t recompute_ns = 0;  // forward work redone inside this op (selective / full policy)
  int64_t comm_ns = 0;       // TP and CP collectives inside this op, as far as not overlapped
  // Table-based models: how far outside its measured grid the op's farthest lookup fell
  // (1 inside; 2 = twice the largest, or half the smallest, size measured).
  double extrapolation = 1;
  // total_ns by the class of the kernels that would run it (gemm, attention, collective,
  // elementwise; other: launch overheads and time the host, not the GPU, sets), summing to
  // total_ns: what `compare` holds a profile's kernel classes against. Models that price an op
  // as one number (unit, calibrated) leave it empty.
  std::optional<ClassNs> class_ns;
  // K/V offload (sim/offload_cost.h): bytes the op moves over the host link (both ways), and
  // the time the op waits for them beyond its compute (part of total_ns).
  int64_t host_bytes = 0;
  int64_t offload_stall_ns = 0;
};

// A pipeline transfer of `bytes` from one stage to another within DP rank `dp_rank`.
struct P2pQuery {
  int dp_rank = 0;
  int from_stage = 0;
  int to_stage = 0;
  int64_t bytes = 0;
};

class CostModel {
 public:
  virtual ~CostModel() = default;
  virtual std::string name() const = 0;
  // The contract the simulator relies on to price each kind of op of a chunk once: the time
  // depends on the query's pass, layers, embedding, lm_head, tokens and spans, not on where
  // it runs (dp_rank, stage, model_chunk are there for reports and future models).
  virtual OpTime op_time(const OpQuery& query) const = 0;
  // Several ops of one chunk — queries alike in tokens and spans (the same span memory),
  // differing in pass and place — into `out` (as many): each what op_time gives it. A model
  // prices what they share once (the analytical model: one layer's costs for the chunk).
  virtual void op_times(std::span<const OpQuery> queries, std::span<OpTime> out) const;
  virtual int64_t p2p_time_ns(const P2pQuery& query) const = 0;
  // Gradient reduction over the DP group of the parameters held by `stage` (reduce-scatter
  // with the distributed optimizer, all-reduce without), after its last backward.
  virtual int64_t dp_reduce_time_ns(int stage) const = 0;
  // The optimizer step of `stage`'s parameters (its shard with the distributed optimizer),
  // including the parameter all-gather the distributed optimizer needs.
  virtual int64_t optimizer_time_ns(int stage) const = 0;
  // Bytes of one activation element in a pipeline message of the machine priced: bf16 on
  // GPUs; the CPU executor sends fp32.
  virtual int message_element_bytes() const { return 2; }
};

// The query for `pass` of a chunk of `tokens` tokens whose attention is `spans`, over the
// layers of `place` (model chunk `model_chunk` of `stage`): what the simulator asks for each
// op of a plan and the tuner's bounds for each chunk before a plan exists.
OpQuery op_query(Pass pass, int dp_rank, int stage, int model_chunk, const StagePlace& place,
                 int64_t tokens, std::span<const AttentionSpan> spans);

// The cost model a job asks for (cost_model.kind). InvalidInput for a kind this build has no
// model for, naming it.
StatusOr<std::unique_ptr<CostModel>> make_cost_model(const Job& job);

}  // namespace cf

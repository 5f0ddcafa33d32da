// What a simulated step reports (DESIGN.md §6): step time, tokens/s, MFU, bubbles, busy time,
// recompute share, peak memory per stage with its breakdown, the feasibility verdict; as JSON
// and as a readable table. Averaging over steps too. Not how they are computed (simulator.cc).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/units.h"
#include "traces/kinds.h"
#include "traces/trace.h"

namespace cf {

struct StageMetrics {
  int stage = 0;
  double busy_s = 0;        // compute time on the stage, mean over DP ranks
  double bubble_ratio = 0;  // 1 − busy / pipeline time, mean over DP ranks
  double recompute_s = 0;   // R passes plus the policy's recompute inside B, mean over DP
  double tp_comm_s = 0;     // TP and CP collectives inside ops (exposed), mean over DP ranks
  double dp_reduce_s = 0;   // gradient reduction after the stage's last backward
  double optimizer_s = 0;
  int64_t peak_memory_bytes = 0;  // max over DP ranks; model states included, reserve not
  MemoryBreakdown peak_breakdown;
  // K/V offload (strategy.kv_offload): offloaded bytes held in host memory at most (max over
  // DP ranks), bytes moved over the host link in the step and the compute stalled waiting for
  // them (means over DP ranks).
  int64_t host_peak_bytes = 0;
  int64_t host_traffic_bytes = 0;
  double offload_stall_s = 0;
};

struct SimMetrics {
  std::string strategy;        // "chunkflow" | "baseline"
  std::string cost_model;      // "unit" | "analytical" | ...
  int steps = 1;               // steps averaged
  double step_time_s = 0;      // pipeline, then DP reduction and optimizer
  double pipeline_time_s = 0;  // last compute op's end
  double tokens_per_s = 0;
  double mfu = 0;              // model FLOPs (3 × forward, recompute not counted) / peak
  double bubble_ratio = 0;     // 1 − Σ busy / (dp · pp · pipeline time)
  double recompute_share = 0;  // recompute time / busy time, all stages
  int64_t tokens = 0;          // per step
  double model_flops = 0;      // per step
  int chunks = 0;              // chunks (baseline: micro-batches) per step
  int ops = 0;                 // plan ops per step
  int64_t events = 0;          // engine events per step
  int gpus = 0;
  int64_t memory_capacity_bytes = 0;      // the GPU's HBM
  int64_t reserved_bytes = 0;             // CUDA context, NCCL buffers, fragmentation
  int64_t memory_min_category_bytes = 0;  // lowest any memory category went (0 when sound)
  int64_t memory_left_bytes = 0;          // left allocated after the step (0 when sound)
  // "none" | "all" | "all ≥ N tokens", prefixed "auto: " where kv_offload: auto chose it
  std::string kv_offload = "none";
  int64_t kv_offload_min_tokens = 0;  // sequences of fewer tokens keep their K/V on the GPU
  int64_t host_bytes_per_node = 0;    // offloaded K/V a node's host memory holds, at most
  int64_t host_memory_bytes = 0;      // per node
  bool feasible = true;               // the sampled steps and the worst case fit
  // false: only the memory was replayed (SimOptions::memory_only / memory_budget_bytes), the
  // step's times are not computed.
  bool timed = true;
  std::string infeasible_reason;
  // The worst case (sim/plan/job.h worst_case_batch): the longest sequence the data can
  // produce in a step's batch; 0 when the sampled batches already hold it.
  int64_t worst_case_length = 0;
  int64_t worst_case_peak_bytes = 0;  // its worst stage's peak (reserve not included)
  bool worst_case_feasible = true;
  // The calibrated cost model: ops priced outside the measured tables (per step, mean over
  // steps) and the farthest factor outside (1: every op inside the tables).
  int extrapolated_ops = 0;
  double worst_extrapolation = 1;
  std::vector<StageMetrics> stages;
  // The chain of ops that sets the step time (of the first step, when asked for: SimOptions):
  // compute ops and the transfers between them, each starting when the one before it ends,
  // then the DP reduction and optimizer step of the stage that finishes last.
  std::vector<TraceOp> critical_path;
};

// Metrics of several steps: times, rates and ratios averaged; memory and infeasibility the
// worst step's.
SimMetrics average_steps(const std::vector<SimMetrics>& steps);

// Folds the worst-case step's memory into `m`: its peak and fit, and m is feasible only when
// the worst case fits too (its reason then names the sequence).
void apply_worst_case(const SimMetrics& worst, int64_t length, SimMetrics* m);

// JSON with the keys of DESIGN.md §6: step_time_s, tokens_per_s, mfu, bubble_ratio,
// feasible, infeasible_reason, and `stages` with busy_s, peak_memory_bytes and
// peak_memory_breakdown per stage; `critical_path` when it was computed.
nlohmann::json metrics_to_json(const SimMetrics& metrics);
// {"weights": B, ..., "transient": B}: a breakdown as the JSON outputs write it.
nlohmann::json breakdown_json(const MemoryBreakdown& breakdown);
// The highest peak of any stage (model states included, reserve not).
int64_t worst_stage_peak_bytes(const SimMetrics& metrics);
// A readable summary and a per-stage table.
std::string metrics_table(const SimMetrics& metrics);

}  // namespace cf

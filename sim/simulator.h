// The simulator (DESIGN.md §2): replays a Plan on the discrete-event engine with a cost model
// and a memory model, and returns metrics and, when asked, a predicted Trace. The entry
// point the CLI and the tuner share; it never prints and never exits.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <tuple>
#include <utility>

#include "core/status.h"
#include "sim/cost_model.h"
#include "sim/engine.h"
#include "sim/metrics.h"
#include "sim/plan/job.h"
#include "sim/plan/plan.h"
#include "sim/plan/plan_index.h"
#include "traces/trace.h"

namespace cf {

struct SimOptions {
  bool record_trace = false;            // fill SimResult::trace with every op
  bool record_memory_timeline = false;  // and the memory counter samples (with record_trace)
  bool critical_path = false;           // fill SimMetrics::critical_path
  // Memory before time: each stage's peak depends only on its ops' order, so the replay runs
  // before the engine. With memory_only the run ends there; with memory_budget_bytes > 0 it
  // ends there when a stage's peak exceeds the budget. Such a result has the stages' peaks and
  // feasibility and timed = false (no times: step_time_s and the rest are 0). For the tuner's
  // worst-case step and its over-budget candidates.
  bool memory_only = false;
  int64_t memory_budget_bytes = 0;
  // > 0 (and no trace or critical path): the DP ranks run one at a time, the heaviest first,
  // and the run stops as soon as the step provably takes longer than this — timed = false and
  // step_time_s that lower bound. A run that finishes gives the same result as without it.
  int64_t give_up_above_ns = 0;
};

struct SimResult {
  SimMetrics metrics;
  std::optional<Trace> trace;  // set when SimOptions::record_trace
};

// Reusable: keeps the engine's buffers between runs, so a tuner looping over plans allocates
// little. One Simulator per thread.
class Simulator {
 public:
  // One step: `plan` (built from `job`, or by hand with the same pp/vpp/dp/layers) replayed
  // with `cost`. The job gives the model, GPU, cluster and parallel configuration.
  // InvalidInput when the plan does not match the job or lacks an op another op needs;
  // Runtime when the plan deadlocks, naming each waiting stage, its op and what it waits on.
  // An infeasible plan (over memory) is a result with feasible = false, not an error.
  StatusOr<SimResult> run(const Job& job, const Plan& plan, const CostModel& cost,
                          const SimOptions& options = {});

 private:
  struct Step;  // one run's inputs and what its named steps pass on (simulator.cc)
  void prepare_prices(const Step& step);
  void build_graph(Step& step, int first, int last);
  void wire_inputs(Step& step, int first, int last);
  Status run_engine(Step& step, int first, const EngineGraph& graph, EngineResult* result);
  StatusOr<bool> run_by_rank(Step& step, SimMetrics* m);
  int64_t exposed_dp_reduce_ns(const Step& step, int stage,
                               const std::vector<char>* ran = nullptr) const;
  void collect_stage_metrics(Step& step, SimMetrics* m);
  // `timed`: with the engine's start and end times (the memory timeline of a trace).
  Status replay_memory(Step& step, bool timed, SimResult* out);
  void collect_step_metrics(Step& step, SimMetrics* m);
  void trace_critical_path(Step& step, SimMetrics* m);
  void emit_trace(Step& step, SimResult* out);

  PlanIndex index_;
  EngineGraph graph_;
  EngineResult result_;
  EngineResult rank_result_;  // one DP rank's run (run_by_rank)
  Engine engine_;
  std::vector<OpTime> task_time_;  // per task = per op of the plan index
  // The distinct op prices of each chunk (cost_model.h: an op's price depends on its pass,
  // layers, embedding / LM head and the chunk's tokens and spans only), so that the ops of a
  // chunk on every stage and DP rank are priced once per kind, and the pieces of split
  // sequences with the same tokens and offset once for all of them.
  struct PricedOp {
    Pass pass;
    int64_t layers;
    bool embedding, lm_head;
    OpTime time;
  };
  std::vector<std::vector<PricedOp>> chunk_prices_;  // per price slot
  std::vector<int> price_slot_;                      // per chunk of the plan
  // (tokens, offset, offloaded) of a piece
  std::map<std::tuple<int64_t, int64_t, bool>, int> piece_slots_;
  const OpTime& price(const CostModel& cost, const OpQuery& query, int chunk);
  std::vector<int> input_edge_;  // per task: the engine edge of its input, -1 for none
};

StatusOr<SimResult> simulate(const Job& job, const Plan& plan, const CostModel& cost,
                             const SimOptions& options = {});

// The whole job: builds the job's cost model and, for each of training.steps, the plan of
// that step's global batch; metrics averaged over steps (memory the worst), the trace of
// step 0. Each plan passes check_plan before it is simulated (a failure is a Runtime error),
// and step 0's ops × training.steps must stay within limits::kMaxSimulatedOps. `on_step`
// (optional) hears (step, steps) as each step starts, and (steps, steps) at the end.
StatusOr<SimResult> simulate_job(const Job& job, const SimOptions& options = {},
                                 const std::function<void(int, int)>& on_step = {});
// simulate_job of a job whose K/V placement is given (strategy.kv_offload none or all; CHECKs
// it is not auto, which simulate_job resolves with it: sim/simulate_job.cc).
StatusOr<SimResult> simulate_job_placed(const Job& job, const SimOptions& options = {},
                                        const std::function<void(int, int)>& on_step = {});

// The job's K/V placement in words: "none", "all" or "all ≥ N tokens", prefixed "auto: " where
// kv_offload: auto chose it (the job given is the one it chose).
std::string kv_offload_label(const Job& job, bool automatic = false);
// Writes kv_offload_label and kv_offload_min_tokens into the metrics.
void label_kv_offload(const Job& job, SimMetrics* m, bool automatic = false);

// Where kv_offload: auto may draw its line: the lengths of the sequences longer than
// `chunk_size` (split, so holding K/V state) in `batches`, longest first, each once.
std::vector<int64_t> offload_lines(const std::vector<std::vector<int64_t>>& batches,
                                   int64_t chunk_size);
// The same over the job's sampled steps and its worst-case batch.
std::vector<int64_t> offload_lines(const Job& job);
// Where kv_offload: auto draws its line when the job does not fit with its K/V on the device:
// the fewest sequences offloaded — the longest first, theirs being the most K/V state — for
// which `fits(min_tokens)` holds, by bisection over `lines` (offload_lines; a sequence
// offloads when it has min_tokens or more). Returns that line, or 0 (every split sequence)
// when only the shortest's line fits, or none does. `fits` is asked O(log n) times.
StatusOr<int64_t> bisect_offload_line(const std::vector<int64_t>& lines,
                                      const std::function<StatusOr<bool>(int64_t)>& fits);

}  // namespace cf

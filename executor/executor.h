// The executor's entry points: run a job's training steps with real kernels, every pipeline
// stage of every (DP rank, CP rank) a StageWorker, and report step time, tokens/s, loss, peak
// memory per stage and (optionally) the gradient error against whole-sequence training. This
// file runs stages as threads of one process; mpi_run.h runs them as MPI ranks. Both order the
// workers as rank_layout.h says. Not the CLI's output.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "executor/backend.h"
#include "executor/memory.h"
#include "executor/reference.h"
#include "executor/stage.h"
#include "executor/tokens.h"
#include "executor/transport.h"
#include "kernels/cpu/adamw.h"
#include "sim/plan/job.h"
#include "sim/plan/plan.h"
#include "traces/trace.h"

namespace cf {

struct ExecutorOptions {
  uint64_t seed = 0;       // weights and synthetic tokens
  float init_std = 0.02f;  // standard deviation of the initial weights (norms start at 1)
  AdamWHyper adamw{1e-3f, 0.9f, 0.95f, 1e-8f, 0.0f};
  std::string tokens_path;  // JSONL token file; empty: synthetic tokens
  bool check_reference = false;
  bool record_trace = true;  // the measured trace of step 0
  // Under mpirun: seconds a rank waits for a peer before it ends the job; 0 waits forever.
  double mpi_timeout_s = kDefaultPeerTimeoutS;
  // Where the kernels run: "cpu" (the reference) or "cuda" (one GPU per process, in process
  // every stage on it; under mpirun each rank on GPU local rank mod devices), and how a CUDA
  // backend computes: "fp32" (exact) or "bf16" (tensor cores, fp32 accumulation).
  std::string backend = "cpu";
  std::string math = "fp32";
  // A device backend's memory need on each device, from the executor's accounting replayed on
  // the job's plans (run_memory.h); checked against the device's free memory before any
  // buffer is allocated. 0: not checked.
  int64_t device_bytes_needed = 0;
};

// The backend of `options` for this process: the CPU backend (shared) or a CUDA backend on
// `device` (−1: the MPI local rank mod the devices, else 0). Runtime when the CUDA backend is
// not built or no device is usable ("no CUDA device: ..."); InvalidInput for an unknown name.
StatusOr<std::shared_ptr<Backend>> open_backend(const ExecutorOptions& options, int device = -1);

// InvalidInput when options.device_bytes_needed exceeds what `backend`'s device has free now
// (naming the job, the device and both sizes); Ok for host backends.
Status check_device_memory(const Job& job, const ExecutorOptions& options, const Backend& backend);

// Peak memory of one pipeline stage over the run (the worst DP or CP rank and step): the
// total's peak, the breakdown at that moment, and each category's own peak.
struct StageMemoryReport {
  int stage = 0;
  int dp_rank = 0;  // where the peak was measured
  int64_t peak_bytes = 0;
  MemoryBreakdown at_peak;
  MemoryBreakdown category_peaks;  // each category's own peak
  // K/V offload: the host pool's peak and the bytes moved into and out of it over the run, and
  // the time those copies took (the worst DP / CP rank of the stage).
  int64_t host_peak_bytes = 0;
  int64_t host_copy_bytes = 0;
  double host_copy_s = 0;
};

struct StepReport {
  int64_t step = 0;
  int64_t tokens = 0;
  int chunks = 0;
  double step_time_s = 0;  // pipeline ops, gradient sums and optimizer (not the reference)
  double loss = 0;         // global-batch mean token loss
  std::optional<GradientCheck> check;
};

struct RunReport {
  std::vector<StepReport> steps;
  std::vector<StageMemoryReport> stages;  // pp entries
  // Measured, step 0 (empty unless record_trace): CP rank 0's ops, which every CP rank of its
  // stage runs too, so the trace joins the plan's ops one to one.
  Trace trace;
  // Step 0's per-op memory records of each stage (CP rank 0), index dp_rank·pp + stage (stage.h).
  std::vector<std::vector<OpMemoryRecord>> op_memory;
  std::string backend = "cpu";  // Backend::description() of the run's backend (rank 0's)
  // A device backend's memory after the last step (rank 0's device): the executor's peak on
  // the device against the allocator's and the driver's.
  std::optional<DeviceMemoryReport> device_memory;

  double step_time_s() const;   // mean over steps
  double tokens_per_s() const;  // Σ tokens / Σ step time
  double loss() const;          // mean over steps
  std::optional<GradientCheck> worst_check() const;
};

// What the executor can run (every backend): tp = 1 (no tensor parallelism), recompute: none (F*/R
// are ChunkFlow's own recompute), and context parallelism (cp > 1) with cp_comm: all_gather only
// (context_parallel.h). InvalidInput naming the key otherwise.
Status validate_for_executor(const Job& job);

// Token batches of a job: synthetic (dataset lengths, seeded) or from options.tokens_path.
class TokenSource {
 public:
  static StatusOr<TokenSource> open(const Job& job, const ExecutorOptions& options);
  TokenBatch batch(int64_t step) const;
  // The plan of a step's batch (the job's plan inputs with the batch's lengths).
  StatusOr<Plan> plan(int64_t step, const TokenBatch& batch) const;

 private:
  const Job* job_ = nullptr;
  uint64_t seed_ = 0;
  std::vector<std::vector<int32_t>> file_sequences_;
};

// Raises the report of `peak`'s stage to it where it is higher: the total's peak (with its
// breakdown and DP rank) and each category's own peak.
void merge_stage_peak(const StageMemoryReport& peak, std::vector<StageMemoryReport>* stages);

// Merges per-stage parts into the measured trace: ops sorted by (dp_rank, stage, start),
// memory samples, peaks and the step's metrics.
void finish_trace(const std::vector<StageMemoryReport>& step0_peaks_by_worker,
                  const StepReport& step0, Trace* trace);

// Called after each step with its report (progress display); may be empty.
using StepCallback = std::function<void(const StepReport&, int64_t steps)>;

// Runs every step with dp × cp × pp threads. Bad input (job, token file, plan) is a Status.
StatusOr<RunReport> run_in_process(const Job& job, const ExecutorOptions& options,
                                   const StepCallback& on_step = {});

}  // namespace cf

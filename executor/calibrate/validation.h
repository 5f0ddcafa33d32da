// The validation matrix (docs/VALIDATION.md): for each configuration (dataset, strategy,
// ChunkSize, K, pp, dp) of the tiny model on the CPU backend, simulate with the calibrated
// cost model, run the executor (round-robin over the matrix, each run with the calibration's
// speed probe around its steps), compare the mean step time of the runs — raw, and brought
// to the load the table's step fit was measured at — and peak memory, write both traces, and
// judge against the targets. The tuner's pick is the caller's (ValidationRequest::tuner_pick:
// cf_calibrate does not link the tuner). Not printing (the report functions format, cli/ prints).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "core/status.h"
#include "sim/plan/job.h"

namespace cf {

// The targets the matrix is judged against (docs/VALIDATION.md, "Where the targets stand").
inline constexpr double kMeanStepErrorTarget = 0.10;   // mean |error| at the fit's load
inline constexpr double kWorstStepErrorTarget = 0.20;  // worst |error| at the fit's load
inline constexpr double kPeakMemoryErrorTarget = 0.02;
inline constexpr double kRankingGapTarget = 0.05;  // tune's pick over the best measured

struct ValidationConfig {
  std::string dataset;
  int64_t global_batch = 16;
  bool baseline = false;
  int64_t chunk_size = 0;  // ChunkFlow only
  int k = 1;               // ChunkFlow only
  int pp = 1;
  int dp = 1;
  std::string name() const;  // "lmsys-chat-1m-C128-K2-pp2dp1", "...-baseline-pp1dp2"
};

// The matrix's axes: the tiny model, max_length 512, 2 sampled global batches, seed 7; per
// dataset and layout, ChunkFlow over ChunkSize × K, then the baseline (packed to 512).
struct ValidationAxes {
  std::vector<std::pair<std::string, int64_t>> datasets;  // name, sequences per global batch
  std::vector<std::pair<int, int>> layouts;               // (pp, dp), two stage threads each
  std::vector<int64_t> chunk_sizes;
  std::vector<int> ks;
};
const ValidationAxes& validation_axes();
std::vector<ValidationConfig> validation_matrix();
// The job file of one configuration, priced by the calibration table at `table`.
std::string validation_job_yaml(const ValidationConfig& config, const std::string& table);

struct ValidationRow {
  ValidationConfig config;
  int64_t tokens = 0;
  double predicted_s = 0;  // mean over the sampled steps
  int64_t predicted_peak = 0;
  int64_t measured_peak = 0;
  double memory_error = 0;      // (predicted − measured) / measured, the worst stage by |·|
  double trace_step_error = 0;  // step 0 of the first run, from the trace comparison
  int extrapolated_ops = 0;
  std::vector<double> step_times;  // mean step time of each executor run, s
  std::vector<double> loads;       // each run's load (profiler.h ProbedRun)
  // Filled by judge_rows:
  double measured_s = 0;         // mean of step_times
  double step_error = 0;         // (predicted − measured) / measured
  double load = 1;               // mean of loads
  double at_fit_load_s = 0;      // measured_s at the step fit's load: judged
  double at_fit_load_error = 0;  // (predicted − at_fit_load) / at_fit_load
  double runs_spread = 0;        // half the range of step_times over their mean
};

struct ValidationSummary {
  double step_load = 1;    // the table's: the step fit's runs over the fastest probe
  double matrix_load = 1;  // the mean load of every run of the matrix
  double load_min = 1, load_max = 1;
  double to_fit_load = 1;                  // step_load / matrix_load: one factor for every row
  double mean_error = 0, worst_error = 0;  // |at_fit_load_error|
  double mean_raw_error = 0, worst_raw_error = 0;
  double worst_memory_error = 0;
  bool time_ok = false;
  bool memory_ok = false;
};

// The tuner's pick for one dataset against the best ChunkFlow configuration measured.
struct RankingCheck {
  std::string dataset;
  size_t picked = 0;  // index into the rows
  size_t best = 0;
  double gap = 0;  // (picked − best) / best, raw measured step times
  bool ok = false;
};

struct ValidationResult {
  std::string table;
  int runs = 0;
  std::vector<ValidationRow> rows;
  ValidationSummary summary;
  std::vector<RankingCheck> ranking;
  bool targets_met() const;
};

// The configuration the tuner ranks first for `job` (a dataset's first ChunkFlow row, with the
// calibrated cost model) over the axes' ChunkFlow configurations: ChunkSize, K and layouts.
using TunerPick = std::function<StatusOr<ValidationConfig>(const Job& job)>;

struct ValidationRequest {
  std::string table;                       // a calibration table from `chunkflow calibrate`
  std::string out_dir = "validation-out";  // each row's job file and both traces
  int runs = 5;                            // executor runs per configuration, ≥ 1
  TunerPick tuner_pick;                    // required
  std::function<void(const std::string& what)> progress;  // before each run
};

// InvalidInput for a table that does not load or an output folder that cannot be made;
// Runtime for a failed run, a trace that cannot be written, or a pick outside the matrix.
// A missed target is a result (ValidationResult::targets_met), not an error. Installs the
// executor's memory source (executor_memory.h), which its calibrated jobs simulate with.
StatusOr<ValidationResult> run_validation(const ValidationRequest& request);

// The rows' means, errors and spreads at the step fit's load, and the summary over them.
ValidationSummary judge_rows(double step_load, std::vector<ValidationRow>* rows);
// `pick` (the tuner's) among `dataset`'s ChunkFlow rows against the fastest of them measured.
StatusOr<RankingCheck> judge_ranking(const std::vector<ValidationRow>& rows,
                                     const std::string& dataset, const ValidationConfig& pick);

// The table, the summary and the verdict as `chunkflow validate` prints them.
std::string validation_text(const ValidationResult& result);
// The same as JSON (`chunkflow validate --json`).
std::string validation_json(const ValidationResult& result);

}  // namespace cf

// The validation matrix (validation.h): the configurations, each row's simulation, first run
// and trace comparison, the further runs round-robin, and the judging of rows and ranking.
// The text and JSON reports are validation_report.cc.
#include "executor/calibrate/validation.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "core/check.h"
#include "executor/calibrate/executor_memory.h"
#include "executor/calibrate/profiler.h"
#include "executor/executor.h"
#include "sim/calibration_table.h"
#include "sim/simulator.h"
#include "traces/compare.h"
#include "traces/trace.h"

namespace cf {
namespace {

constexpr int64_t kMaxLength = 512;
constexpr int kSteps = 2;

// A YAML single-quoted scalar: any path survives it.
std::string yaml_quoted(const std::string& text) {
  std::string out = "'";
  for (char c : text) out += c == '\'' ? std::string("''") : std::string(1, c);
  return out + "'";
}

Status write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) return Status::Runtime(fmt::format("{}: cannot write", path));
  return Status::Ok();
}

StatusOr<Job> config_job(const ValidationConfig& c, const std::string& table) {
  return parse_job(validation_job_yaml(c, table), c.name() + ".yaml");
}

// The row's prediction, its first executor run (memory, the trace comparison, the first step
// time) and both traces and the job written to `out_dir`.
StatusOr<ValidationRow> first_run(const ValidationConfig& c, const std::string& table,
                                  const SpeedProbe& probe, const std::string& out_dir) {
  ValidationRow row;
  row.config = c;
  CF_ASSIGN_OR_RETURN(Job job, config_job(c, table));
  SimOptions sim_options;
  sim_options.record_trace = true;
  sim_options.record_memory_timeline = true;
  CF_ASSIGN_OR_RETURN(SimResult predicted, simulate_job(job, sim_options));
  ExecutorOptions exec;
  exec.seed = 1;
  CF_ASSIGN_OR_RETURN(ProbedRun run,
                      run_with_speed_probe(job, exec, probe.reference_ns, probe.tokens));
  const RunReport& measured = run.report;
  row.step_times = {measured.step_time_s()};
  row.loads = {run.load};
  row.tokens = predicted.metrics.tokens;
  row.predicted_s = predicted.metrics.step_time_s;
  row.extrapolated_ops = predicted.metrics.extrapolated_ops;
  for (const StageMetrics& st : predicted.metrics.stages) {
    const int64_t meas = measured.stages[static_cast<size_t>(st.stage)].peak_bytes;
    const double error = static_cast<double>(st.peak_memory_bytes - meas) / meas;
    if (std::abs(error) >= std::abs(row.memory_error)) {
      row.memory_error = error;
      row.predicted_peak = st.peak_memory_bytes;
      row.measured_peak = meas;
    }
  }
  CF_ASSIGN_OR_RETURN(CompareReport report, compare_traces(*predicted.trace, measured.trace));
  row.trace_step_error = report.step.rel_error.value_or(0);
  const std::string base = out_dir + "/" + c.name();
  CF_RETURN_IF_ERROR(write_text(base + ".yaml", validation_job_yaml(c, table)));
  CF_RETURN_IF_ERROR(write_text(base + ".predicted.json", trace_to_chrome_json(*predicted.trace)));
  CF_RETURN_IF_ERROR(write_text(base + ".measured.json", trace_to_chrome_json(measured.trace)));
  return row;
}

// Another executor run of the row's job, its mean step time and load appended.
Status run_again(const std::string& table, const SpeedProbe& probe, ValidationRow* row) {
  CF_ASSIGN_OR_RETURN(Job job, config_job(row->config, table));
  ExecutorOptions exec;
  exec.seed = 1;
  exec.record_trace = false;
  CF_ASSIGN_OR_RETURN(ProbedRun again,
                      run_with_speed_probe(job, exec, probe.reference_ns, probe.tokens));
  row->step_times.push_back(again.report.step_time_s());
  row->loads.push_back(again.load);
  return Status::Ok();
}

// Every row once (first_run), then the further runs round-robin over the matrix, so a change
// in the machine's load while it is measured spreads over every configuration instead of
// bending the ones measured then.
StatusOr<std::vector<ValidationRow>> run_matrix(const ValidationRequest& request,
                                                const std::string& table, const SpeedProbe& probe) {
  auto progress = [&](int run, const ValidationConfig& c) {
    if (request.progress)
      request.progress(fmt::format("run {}/{}  {}", run, request.runs, c.name()));
  };
  std::vector<ValidationRow> rows;
  for (const ValidationConfig& c : validation_matrix()) {
    progress(1, c);
    CF_ASSIGN_OR_RETURN(ValidationRow row, first_run(c, table, probe, request.out_dir));
    rows.push_back(std::move(row));
  }
  for (int run = 2; run <= request.runs; ++run) {
    for (ValidationRow& row : rows) {
      progress(run, row.config);
      CF_RETURN_IF_ERROR(run_again(table, probe, &row));
    }
  }
  return rows;
}

// The tuner's pick for each dataset, judged against the rows.
StatusOr<std::vector<RankingCheck>> rank(const ValidationRequest& request,
                                         const std::vector<ValidationRow>& rows,
                                         const std::string& table) {
  std::vector<RankingCheck> out;
  for (const auto& [dataset, batch] : validation_axes().datasets) {
    const auto first = std::find_if(rows.begin(), rows.end(), [&](const ValidationRow& r) {
      return r.config.dataset == dataset && !r.config.baseline;
    });
    CF_CHECK(first != rows.end()) << dataset;
    CF_ASSIGN_OR_RETURN(
        Job job, parse_job(validation_job_yaml(first->config, table), dataset + " tune.yaml"));
    CF_ASSIGN_OR_RETURN(ValidationConfig pick, request.tuner_pick(job));
    CF_ASSIGN_OR_RETURN(RankingCheck check, judge_ranking(rows, dataset, pick));
    out.push_back(std::move(check));
  }
  return out;
}

}  // namespace

std::string ValidationConfig::name() const {
  const std::string strategy = baseline ? "baseline" : fmt::format("C{}-K{}", chunk_size, k);
  return fmt::format("{}-{}-pp{}dp{}", dataset, strategy, pp, dp);
}

const ValidationAxes& validation_axes() {
  // lmsys-chat-1m: short-dominated (packed chunks with many segments); chatqa2-long-sft:
  // long-tailed (dependent groups). Every layout runs two stage threads, as many as the
  // machine of docs/VALIDATION.md has cores.
  static const ValidationAxes axes{
      {{"lmsys-chat-1m", 24}, {"chatqa2-long-sft", 6}}, {{2, 1}, {1, 2}}, {128, 256}, {1, 2}};
  return axes;
}

std::vector<ValidationConfig> validation_matrix() {
  const ValidationAxes& axes = validation_axes();
  std::vector<ValidationConfig> out;
  for (const auto& [dataset, batch] : axes.datasets) {
    for (const auto& [pp, dp] : axes.layouts) {
      for (const int64_t chunk : axes.chunk_sizes) {
        for (const int k : axes.ks) out.push_back({dataset, batch, false, chunk, k, pp, dp});
      }
      out.push_back({dataset, batch, true, 0, 1, pp, dp});
    }
  }
  return out;
}

std::string validation_job_yaml(const ValidationConfig& c, const std::string& table) {
  const std::string strategy =
      c.baseline ? "{kind: baseline, micro_batching: pack}"
                 : fmt::format("{{kind: chunkflow, chunk_size: {}, k: {}}}", c.chunk_size, c.k);
  return fmt::format(
      "model: tiny\n"
      "cluster: {{gpu: h100-sxm-80g, gpus: {}, gpus_per_node: {}}}\n"
      "dataset: {{distribution: {}, max_length: {}, seed: 7}}\n"
      "training: {{global_batch: {}, steps: {}}}\n"
      "parallel: {{tp: 1, pp: {}, dp: {}}}\n"
      "strategy: {}\n"
      "cost_model: {{kind: calibrated, table: {}}}\n",
      c.pp * c.dp, c.pp * c.dp, c.dataset, kMaxLength, c.global_batch, kSteps, c.pp, c.dp, strategy,
      yaml_quoted(table));
}

bool ValidationResult::targets_met() const {
  return summary.time_ok && summary.memory_ok &&
         std::all_of(ranking.begin(), ranking.end(), [](const RankingCheck& r) { return r.ok; });
}

ValidationSummary judge_rows(double step_load, std::vector<ValidationRow>* rows) {
  CF_CHECK(!rows->empty());
  ValidationSummary s;
  s.step_load = step_load;
  // One factor for the whole matrix: the load moves between calibration and the matrix's
  // runs; a run's own few probes are too noisy to correct one row by (docs/VALIDATION.md).
  std::vector<double> all_loads;
  for (const ValidationRow& r : *rows)
    all_loads.insert(all_loads.end(), r.loads.begin(), r.loads.end());
  s.matrix_load = mean(all_loads);
  s.load_min = *std::min_element(all_loads.begin(), all_loads.end());
  s.load_max = *std::max_element(all_loads.begin(), all_loads.end());
  s.to_fit_load = step_load / s.matrix_load;
  double sum = 0, sum_raw = 0;
  for (ValidationRow& r : *rows) {
    r.measured_s = mean(r.step_times);
    r.load = mean(r.loads);
    r.step_error = (r.predicted_s - r.measured_s) / r.measured_s;
    r.at_fit_load_s = r.measured_s * s.to_fit_load;
    r.at_fit_load_error = (r.predicted_s - r.at_fit_load_s) / r.at_fit_load_s;
    // A row cannot be predicted closer than its own runs agree.
    const auto [low, high] = std::minmax_element(r.step_times.begin(), r.step_times.end());
    r.runs_spread = 0.5 * (*high - *low) / r.measured_s;
    sum += std::abs(r.at_fit_load_error);
    s.worst_error = std::max(s.worst_error, std::abs(r.at_fit_load_error));
    sum_raw += std::abs(r.step_error);
    s.worst_raw_error = std::max(s.worst_raw_error, std::abs(r.step_error));
    s.worst_memory_error = std::max(s.worst_memory_error, std::abs(r.memory_error));
  }
  const double n = static_cast<double>(rows->size());
  s.mean_error = sum / n;
  s.mean_raw_error = sum_raw / n;
  s.time_ok = s.mean_error <= kMeanStepErrorTarget && s.worst_error <= kWorstStepErrorTarget;
  s.memory_ok = s.worst_memory_error <= kPeakMemoryErrorTarget;
  return s;
}

StatusOr<RankingCheck> judge_ranking(const std::vector<ValidationRow>& rows,
                                     const std::string& dataset, const ValidationConfig& pick) {
  RankingCheck check{dataset, rows.size(), rows.size(), 0, false};
  for (size_t i = 0; i < rows.size(); ++i) {
    const ValidationConfig& c = rows[i].config;
    if (c.dataset != dataset || c.baseline) continue;
    if (check.best == rows.size() || rows[i].measured_s < rows[check.best].measured_s) {
      check.best = i;
    }
    if (c.chunk_size == pick.chunk_size && c.k == pick.k && c.pp == pick.pp && c.dp == pick.dp) {
      check.picked = i;
    }
  }
  if (check.best == rows.size()) {
    return Status::Runtime(fmt::format("{}: no ChunkFlow configuration in the matrix", dataset));
  }
  if (check.picked == rows.size()) {
    return Status::Runtime(
        fmt::format("{}: the tuner picked ChunkSize {} K {} pp {} dp {}, outside the matrix",
                    dataset, pick.chunk_size, pick.k, pick.pp, pick.dp));
  }
  const double best_s = rows[check.best].measured_s;
  check.gap = (rows[check.picked].measured_s - best_s) / best_s;
  check.ok = check.gap <= kRankingGapTarget;
  return check;
}

StatusOr<ValidationResult> run_validation(const ValidationRequest& request) {
  CF_CHECK(request.tuner_pick) << "the tuner's pick is the caller's";
  CF_CHECK_GE(request.runs, 1);
  install_executor_memory();  // the calibrated jobs' memory_model: executor
  CF_ASSIGN_OR_RETURN(CalibrationTable calibration, load_calibration(request.table));
  std::error_code ec;
  std::filesystem::create_directories(request.out_dir, ec);
  if (ec) {
    return Status::InvalidInput(
        fmt::format("{}: cannot create the output folder: {}", request.out_dir, ec.message()));
  }
  // The jobs name the table by its absolute path, so the job files written beside the traces
  // run from anywhere.
  const std::string table = std::filesystem::absolute(request.table, ec).string();
  if (ec) return Status::InvalidInput(fmt::format("{}: {}", request.table, ec.message()));
  const SpeedProbe& probe = calibration.machine.speed_probe;
  ValidationResult result;
  result.table = request.table;
  result.runs = request.runs;
  CF_ASSIGN_OR_RETURN(result.rows, run_matrix(request, table, probe));
  result.summary = judge_rows(probe.step_load, &result.rows);
  CF_ASSIGN_OR_RETURN(result.ranking, rank(request, result.rows, table));
  return result;
}

}  // namespace cf

// The validation matrix (docs/VALIDATION.md): for each configuration (dataset, strategy,
// ChunkSize, K, pp, dp) of the tiny model on the CPU backend, simulate with the calibrated
// cost model, run the executor (five times, round-robin over the matrix, each run with the
// calibration's speed probe around its steps), compare the mean step time of the runs —
// raw, and brought to the load the table's step fit was measured at (the matrix's mean load
// over the fit's, calibration_table.h SpeedProbe::step_load), judged against the targets —
// and peak memory (and write both traces), then check that `tune` with the calibrated
// simulator picks a configuration whose measured step time is within 5% of the best measured.
// Prints one table; exit 3 when a target is missed (a measurement of this machine, not a
// failure of the code), 1 on a runtime failure, 2 on bad input. Not a unit test: it measures
// this machine.
#include <fmt/format.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>

#include "executor/executor.h"
#include "executor/calibrate/profiler.h"
#include "sim/calibration_table.h"
#include "sim/simulator.h"
#include "traces/compare.h"
#include "tuner/tuner.h"

namespace cf {

// Exit code when the matrix ran but a prediction target was missed.
constexpr int kTargetMissed = 3;
namespace {

struct Config {
  std::string dataset;
  int64_t global_batch = 16;
  bool baseline = false;
  int64_t chunk_size = 0;
  int k = 1;
  int pp = 1;
  int dp = 1;
  std::string name() const {
    const std::string strategy = baseline ? "baseline" : fmt::format("C{}-K{}", chunk_size, k);
    return fmt::format("{}-{}-pp{}dp{}", dataset, strategy, pp, dp);
  }
};

struct Row {
  Config config;
  int64_t tokens = 0;
  double predicted_s = 0;
  double measured_s = 0;
  double step_error = 0;  // (predicted − measured) / measured: mean step, mean run
  int64_t predicted_peak = 0;
  int64_t measured_peak = 0;
  double memory_error = 0;      // worst stage by |·|
  double trace_step_error = 0;  // step 0, from the trace comparison
  int extrapolated_ops = 0;
  std::vector<double> step_times;  // mean step time of each executor run
  std::vector<double> loads;       // each run's load (profiler.h ProbedRun)
  double load = 1;                 // mean over the runs
  double at_fit_load_s = 0;        // measured_s at the step fit's load: judged
  double at_fit_load_error = 0;    // (predicted − at_fit_load) / at_fit_load
};

constexpr int64_t kMaxLength = 512;
constexpr int kSteps = 2;

std::string job_yaml(const Config& c, const std::string& table) {
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
      table);
}

// Two datasets (short-dominated, long-tailed), ChunkSize × K × layout, and the baseline.
std::vector<Config> matrix() {
  const std::vector<std::pair<std::string, int64_t>> datasets = {{"lmsys-chat-1m", 24},
                                                                 {"chatqa2-long-sft", 6}};
  std::vector<Config> out;
  for (const auto& [dataset, batch] : datasets) {
    for (const auto& [pp, dp] : {std::pair{2, 1}, std::pair{1, 2}}) {
      for (const int64_t chunk : {128, 256}) {
        for (const int k : {1, 2}) out.push_back(Config{dataset, batch, false, chunk, k, pp, dp});
      }
      out.push_back(Config{dataset, batch, true, 0, 1, pp, dp});
    }
  }
  return out;
}

StatusOr<Row> validate(const Config& c, const std::string& table, const SpeedProbe& probe,
                       const std::string& out_dir) {
  Row row;
  row.config = c;
  CF_ASSIGN_OR_RETURN(Job job, parse_job(job_yaml(c, table), c.name() + ".yaml"));
  SimOptions sim_options;
  sim_options.record_trace = true;
  sim_options.record_memory_timeline = true;
  CF_ASSIGN_OR_RETURN(SimResult predicted, simulate_job(job, sim_options));
  // The first executor run: memory, the trace, the first step time (more runs: run_again).
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
  std::ofstream(base + ".yaml") << job_yaml(c, table);
  std::ofstream(base + ".predicted.json") << trace_to_chrome_json(*predicted.trace);
  std::ofstream(base + ".measured.json") << trace_to_chrome_json(measured.trace);
  return row;
}

// One status line rewritten in place on a terminal; nothing when stderr is a log.
void progress(const std::string& what) {
  if (isatty(fileno(stderr))) std::fprintf(stderr, "\r\033[K%s", what.c_str());
}
void progress_done() {
  if (isatty(fileno(stderr))) std::fprintf(stderr, "\r\033[K");
}

// Another executor run of the row's job, its mean step time appended.
Status run_again(const std::string& table, const SpeedProbe& probe, Row* row) {
  CF_ASSIGN_OR_RETURN(Job job, parse_job(job_yaml(row->config, table), row->config.name()));
  ExecutorOptions exec;
  exec.seed = 1;
  exec.record_trace = false;
  CF_ASSIGN_OR_RETURN(ProbedRun again,
                      run_with_speed_probe(job, exec, probe.reference_ns, probe.tokens));
  row->step_times.push_back(again.report.step_time_s());
  row->loads.push_back(again.load);
  return Status::Ok();
}

// The tuner over one dataset's ChunkFlow configurations of the matrix (exhaustive, the
// calibrated simulator); returns the index of the row it picks.
StatusOr<size_t> tuned_pick(const std::vector<Row>& rows, const std::string& dataset,
                            const std::string& table) {
  const Row* first = nullptr;
  for (const Row& r : rows) {
    if (r.config.dataset == dataset && !r.config.baseline) {
      first = &r;
      break;
    }
  }
  CF_CHECK(first != nullptr);
  CF_ASSIGN_OR_RETURN(Job job, parse_job(job_yaml(first->config, table), dataset + " tune"));
  SpaceFlags flags;
  flags.chunk_sizes = "128,256";
  flags.k = "1,2";
  flags.tp = "1";
  flags.pp = "1,2";
  flags.recompute = "none";
  flags.packer = "balanced";
  CF_ASSIGN_OR_RETURN(SearchSpace space, read_search_space(job, flags));
  TuneOptions options;
  options.exhaustive = true;
  options.baseline = false;  // its layouts need recompute policies the CPU backend lacks
  options.threads = 1;
  CF_ASSIGN_OR_RETURN(TuneResult result, tune(job, space, options));
  if (result.best() == nullptr) return Status::Runtime(dataset + ": the tuner found nothing");
  const Candidate& best = result.best()->candidate;
  for (size_t i = 0; i < rows.size(); ++i) {
    const Config& c = rows[i].config;
    if (c.dataset == dataset && !c.baseline && c.chunk_size == best.strategy.chunk_size &&
        c.k == best.strategy.k && c.pp == best.layout.pp && c.dp == best.layout.dp) {
      return i;
    }
  }
  return Status::Runtime(
      fmt::format("{}: the tuner picked a configuration outside the matrix", dataset));
}

int run(const std::string& table, const std::string& out_dir, int runs) {
  std::filesystem::create_directories(out_dir);
  StatusOr<CalibrationTable> calibration = load_calibration(table);
  if (!calibration.ok()) {
    std::fprintf(stderr, "validate: %s\n", calibration.status().message().c_str());
    return calibration.status().exit_code();
  }
  const SpeedProbe& probe = calibration->machine.speed_probe;
  std::vector<Row> rows;
  for (const Config& c : matrix()) {
    progress(fmt::format("run 1/{}  {}", runs, c.name()));
    StatusOr<Row> row = validate(c, table, probe, out_dir);
    if (!row.ok()) {
      std::fprintf(stderr, "\nvalidate: %s\n", row.status().message().c_str());
      return row.status().exit_code();
    }
    rows.push_back(*std::move(row));
  }
  // Further runs round-robin over the matrix, so a change in the machine's load while it is
  // measured spreads over every configuration instead of bending the ones measured then.
  for (int i = 1; i < runs; ++i) {
    for (Row& r : rows) {
      progress(fmt::format("run {}/{}  {}", i + 1, runs, r.config.name()));
      if (Status s = run_again(table, probe, &r); !s.ok()) {
        std::fprintf(stderr, "\nvalidate: %s\n", s.message().c_str());
        return s.exit_code();
      }
    }
  }
  progress_done();
  std::printf("%-37s %6s %8s %8s %7s %5s %8s %7s %6s %9s %8s %7s %4s\n", "configuration",
              "tokens", "pred s", "meas s", "error", "load", "at fit s", "error", "runs ±",
              "step0 err", "peak MiB", "mem err", "extr");
  // One factor for the whole matrix: the load moves between calibration and the matrix's
  // runs; a run's own few probes are too noisy to correct one row by (docs/VALIDATION.md).
  std::vector<double> all_loads;
  for (const Row& r : rows) all_loads.insert(all_loads.end(), r.loads.begin(), r.loads.end());
  const double matrix_load = mean(all_loads);
  const double to_fit_load = calibration->machine.speed_probe.step_load / matrix_load;
  for (Row& r : rows) {
    r.measured_s = mean(r.step_times);
    r.load = mean(r.loads);
    r.step_error = (r.predicted_s - r.measured_s) / r.measured_s;
    r.at_fit_load_s = r.measured_s * to_fit_load;
    r.at_fit_load_error = (r.predicted_s - r.at_fit_load_s) / r.at_fit_load_s;
    // How far this configuration's runs spread: half their range over their mean. A row
    // cannot be predicted closer than its own runs agree.
    const auto [low, high] = std::minmax_element(r.step_times.begin(), r.step_times.end());
    const double spread = 0.5 * (*high - *low) / r.measured_s;
    std::printf(
        "%-37s %6lld %8.4f %8.4f %+6.1f%% %5.2f %8.4f %+6.1f%% %5.1f%% %+8.1f%% %8.3f %+6.3f%% "
        "%4d\n",
        r.config.name().c_str(), static_cast<long long>(r.tokens), r.predicted_s, r.measured_s,
        100 * r.step_error, r.load, r.at_fit_load_s, 100 * r.at_fit_load_error, 100 * spread,
        100 * r.trace_step_error, r.measured_peak / 1048576.0, 100 * r.memory_error,
        r.extrapolated_ops);
  }
  double sum = 0, worst = 0, sum_raw = 0, worst_raw = 0, worst_memory = 0;
  double load_min = rows.front().loads.front(), load_max = load_min;
  for (const Row& r : rows) {
    sum += std::abs(r.at_fit_load_error);
    worst = std::max(worst, std::abs(r.at_fit_load_error));
    sum_raw += std::abs(r.step_error);
    worst_raw = std::max(worst_raw, std::abs(r.step_error));
    worst_memory = std::max(worst_memory, std::abs(r.memory_error));
    for (double v : r.loads) {
      load_min = std::min(load_min, v);
      load_max = std::max(load_max, v);
    }
  }
  const double n = static_cast<double>(rows.size());
  const double mean = sum / n, mean_raw = sum_raw / n;
  bool ranking_ok = true;
  std::string ranking;
  for (const std::string dataset : {"lmsys-chat-1m", "chatqa2-long-sft"}) {
    StatusOr<size_t> pick = tuned_pick(rows, dataset, table);
    if (!pick.ok()) {
      std::fprintf(stderr, "validate: %s\n", pick.status().message().c_str());
      return pick.status().exit_code();
    }
    const Row* best = nullptr;
    for (const Row& r : rows) {
      if (r.config.dataset == dataset && !r.config.baseline &&
          (best == nullptr || r.measured_s < best->measured_s)) {
        best = &r;
      }
    }
    const Row& picked = rows[*pick];
    const double gap = (picked.measured_s - best->measured_s) / best->measured_s;
    ranking_ok = ranking_ok && gap <= 0.05;
    ranking += fmt::format(
        "ranking    {}: tune picks {} ({:.4f} s); best measured {} ({:.4f} s); gap {:+.1f}% "
        "(target ≤ 5%)\n",
        dataset, picked.config.name(), picked.measured_s, best->config.name(), best->measured_s,
        100 * gap);  // one factor for all rows: the order is the raw one
  }
  const bool time_ok = mean <= 0.10 && worst <= 0.20;
  const bool memory_ok = worst_memory <= 0.02;
  const SpeedProbe& cal = calibration->machine.speed_probe;
  std::printf(
      "\nload       the runs' probes over calibration's fastest: mean ×%.2f (×%.2f..×%.2f); the "
      "step fit's: ×%.2f; measured times ×%.3f to the fit's load\n",
      matrix_load, load_min, load_max, cal.step_load, to_fit_load);
  std::printf(
      "step time  at the fit's load: mean |error| %.1f%% (target ≤ 10%%), worst %.1f%% (target "
      "≤ 20%%)\n"
      "           raw (the machine's load as it was): mean |error| %.1f%%, worst %.1f%%\n",
      100 * mean, 100 * worst, 100 * mean_raw, 100 * worst_raw);
  std::printf("memory     worst peak error %.3f%% (target ≤ 2%%)\n", 100 * worst_memory);
  std::fputs(ranking.c_str(), stdout);
  std::printf("verdict    %s\n",
              time_ok && memory_ok && ranking_ok ? "all targets met" : "TARGET MISSED");
  return time_ok && memory_ok && ranking_ok ? 0 : kTargetMissed;
}

}  // namespace
}  // namespace cf

int main(int argc, char** argv) {
  CLI::App app{"Simulate, run and compare the validation matrix with a calibration table"};
  std::string table, out_dir = "validation-out";
  app.add_option("table", table, "calibration table from `chunkflow calibrate`")->required();
  app.add_option("-o,--out", out_dir, "folder for each configuration's job and traces");
  int runs = 5;
  app.add_option("-r,--runs", runs, "executor runs per configuration (their mean step time)")
      ->check(CLI::Range(1, 99));
  CLI11_PARSE(app, argc, argv);
  return cf::run(table, out_dir, runs);
}

// `chunkflow sweep SWEEP.yaml [--csv FILE] [--html FILE] [--json]`: what-if capacity planning —
// every point of the sweep (GPU count, GPU type, context, model, dataset) tuned, shown as a table
// (or JSON), written as CSV, with the smallest GPU count reaching the target tokens/s. Under
// `mpirun -np N` the points are spread over the ranks and the output is the same, byte for byte.
#include <fmt/format.h>

#include <cmath>
#include <cstdio>
#include <memory>
#include <optional>

#include "cli/command.h"
#include "cli/progress.h"
#include "tuner/report_html.h"
#include "tuner/sweep.h"

#ifdef CHUNKFLOW_HAVE_MPI
#include "executor/mpi_run.h"
#include "tuner/sweep_mpi.h"
#endif

namespace cf::cli {
namespace {

struct SweepCliOptions {
  std::string sweep_path;
  std::string csv_path;
  std::string html_path;
  std::optional<double> target_tokens_per_s;
  bool exhaustive = false;
  bool no_baseline = false;
  int threads = 0;
  bool json = false;
  bool quiet = false;
};

// The sweep file with --target applied.
StatusOr<SweepSpec> load_spec(const SweepCliOptions& options) {
  CF_ASSIGN_OR_RETURN(SweepSpec spec, load_sweep(options.sweep_path));
  // An output that will be refused is refused before the sweep.
  if (!options.csv_path.empty()) CF_RETURN_IF_ERROR(check_output_path(options.csv_path));
  if (!options.html_path.empty()) CF_RETURN_IF_ERROR(check_output_path(options.html_path));
  if (options.target_tokens_per_s) {
    const double target = *options.target_tokens_per_s;
    if (!(target > 0 && std::isfinite(target))) {  // NaN fails the comparison
      return Status::InvalidInput(
          fmt::format("--target: must be a positive number of tokens/s, got {}", target));
    }
    spec.target_tokens_per_s = target;
  }
  return spec;
}

TuneOptions tune_options_of(const SweepCliOptions& options) {
  TuneOptions tune_options;
  tune_options.threads = options.threads;
  tune_options.exhaustive = options.exhaustive;
  tune_options.baseline = !options.no_baseline;
  return tune_options;
}

// The CSV (when asked for) and the table or JSON on stdout.
int write_outputs(const SweepCliOptions& options, const SweepResult& result) {
  if (!options.csv_path.empty()) {
    if (Status s = write_file_atomic(options.csv_path, sweep_csv(result)); !s.ok())
      return report(s);
  }
  if (!options.html_path.empty()) {
    if (Status s = write_file_atomic(options.html_path, sweep_report_html(result)); !s.ok())
      return report(s);
  }
  if (options.json) {
    nlohmann::json out = sweep_json(result);
    if (!options.csv_path.empty()) out["csv"] = options.csv_path;
    if (!options.html_path.empty()) out["html"] = options.html_path;
    std::fputs((out.dump(2) + "\n").c_str(), stdout);
    return 0;
  }
  std::string text = fmt::format("chunkflow sweep  {} ({} points, each tuned)\n\n",
                                 options.sweep_path, result.points.size());
  text += sweep_table(result);
  if (!options.csv_path.empty()) text += fmt::format("\nCSV written to {}\n", options.csv_path);
  if (!options.html_path.empty()) text += fmt::format("report written to {}\n", options.html_path);
  std::fputs(text.c_str(), stdout);
  return 0;
}

// One process: every point here.
int run_sweep_here(const SweepCliOptions& options) {
  StatusOr<SweepSpec> spec = load_spec(options);
  if (!spec.ok()) return report(spec.status());
  TuneOptions tune_options = tune_options_of(options);
  ProgressDisplay display(show_progress(options.quiet, options.json), "sweep",
                          spec->space.objective);
  display.attach(&tune_options);
  auto on_point = [&display](int i, int n, const std::string& label) {
    display.begin_point(i, n, label);
  };
  StatusOr<SweepResult> result = run_sweep(*spec, tune_options, on_point);
  display.finish();
  if (!result.ok()) return report(result.status());
  return write_outputs(options, *result);
}

#ifdef CHUNKFLOW_HAVE_MPI
// Under mpirun: the points spread over the ranks (tuner/sweep_mpi.h); rank 0 prints, draws the
// progress of the points it tunes, and writes the CSV; every rank exits with the same code.
int run_sweep_on_ranks(const SweepCliOptions& options) {
  MpiSession session;
  const bool root = session.rank() == 0;
  StatusOr<SweepSpec> spec = load_spec(options);  // every rank reads the same file
  if (!spec.ok()) return root ? report(spec.status()) : spec.status().exit_code();
  TuneOptions tune_options = tune_options_of(options);
  if (tune_options.threads == 0) tune_options.threads = mpi_threads_per_rank();
  ProgressDisplay display(root && show_progress(options.quiet, options.json),
                          session.size() > 1 ? fmt::format("sweep rank 0 of {}:", session.size())
                                             : std::string("sweep"),
                          spec->space.objective);
  display.attach(&tune_options);
  auto on_point = [&display](int k, int n, const std::string& label) {
    display.begin_point(k, n, label);
  };
  StatusOr<MpiSweep> swept = run_sweep_mpi(*spec, tune_options, on_point);
  display.finish();
  if (!swept.ok()) return root ? report(swept.status()) : swept.status().exit_code();
  return root ? write_outputs(options, swept->result) : 0;
}
#endif

int run_sweep_command(const SweepCliOptions& options) {
#ifdef CHUNKFLOW_HAVE_MPI
  if (launched_by_mpirun()) return run_sweep_on_ranks(options);
#endif
  return run_sweep_here(options);
}

}  // namespace

void add_sweep_command(CLI::App& app, RunFn* run) {
  auto o = std::make_shared<SweepCliOptions>();
  CLI::App* cmd = app.add_subcommand(
      "sweep",
      "What-if capacity planning: tune every point of a sweep over GPU count, GPU type, "
      "context length, model and dataset (under mpirun -np N: the points spread over the "
      "ranks, the same output)");
  cmd->add_option("sweep", o->sweep_path, "sweep YAML file (see examples/sweep-*.yaml)")
      ->required();
  cmd->add_option("--csv", o->csv_path, "write one CSV row per point here");
  cmd->add_option("--html", o->html_path,
                  "write a self-contained HTML report: tokens/s and tokens/s per GPU against the "
                  "varied axis, the target line and the smallest GPU count meeting it");
  cmd->add_option("--target", o->target_tokens_per_s,
                  "tokens/s to reach (overrides target_tokens_per_s of the file)");
  cmd->add_flag("-e,--exhaustive", o->exhaustive, "simulate every candidate (no pruning)");
  cmd->add_flag("--no-baseline", o->no_baseline, "skip tuning the Megatron-style baseline");
  cmd->add_option("-t,--threads", o->threads,
                  "worker threads per process (default: all cores; under mpirun, the cores of a "
                  "machine shared by its ranks)")
      ->check(CLI::Range(1, 1024));
  cmd->add_flag("-j,--json", o->json, "print the points as JSON");
  cmd->add_flag("-q,--quiet", o->quiet,
                "no progress line (shown on a terminal's stderr, never with --json)");
  cmd->callback([run, o] { *run = [o] { return run_sweep_command(*o); }; });
}

}  // namespace cf::cli

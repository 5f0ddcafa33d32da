// `chunkflow simulate JOB.yaml [--json] [--trace FILE] [--html FILE] [--baseline JOB]
// [--strategy chunkflow|baseline]`: one training step (averaged over training.steps) replayed by
// the simulator; metrics as a table or JSON, the predicted timeline as a Chrome trace, the HTML
// report (sim/report_html.h), with a second job (the baseline) simulated beside the first. Not
// the tuner's search.
#include <fmt/format.h>

#include <cstdio>
#include <vector>

#include "cli/command.h"
#include "cli/progress.h"
#include "sim/report_html.h"
#include "sim/simulator.h"
#include "traces/trace.h"

namespace cf::cli {
namespace {

struct SimulateOptions {
  std::string job_path;
  bool json = false;
  std::string trace_path;
  std::string html_path;
  std::string baseline_path;
  std::string strategy;  // "" keeps the job's
};

// "ChunkFlow" / "Megatron-style baseline": a run's title in the report.
std::string run_label(const Job& job) {
  return job.strategy.kind == StrategyKind::kBaseline ? "Megatron-style baseline" : "ChunkFlow";
}

// `label`: "simulate" for the job, "simulate --baseline" for the second one.
StatusOr<SimResult> simulate_one(const Job& job, const SimOptions& sim_options, bool json,
                                 const std::string& label) {
  // Steps one by one on a terminal (a job may ask for up to 1,000 sampled steps).
  ProgressDisplay progress(show_progress(false, json) && job.training.steps > 1, label + ": steps",
                           Objective::kStepTime);
  StatusOr<SimResult> result =
      simulate_job(job, sim_options, [&](int step, int steps) { progress.advance(step, steps); });
  progress.finish();
  return result;
}

int run_simulate(const SimulateOptions& options) {
  StatusOr<Job> loaded = load_job(options.job_path);
  if (!loaded.ok()) return report(loaded.status());
  Job job = *loaded;
  if (!options.strategy.empty()) {
    job.strategy.kind =
        options.strategy == "baseline" ? StrategyKind::kBaseline : StrategyKind::kChunkFlow;
    if (Status status = validate_job(job); !status.ok()) {
      return report(Status::InvalidInput(fmt::format("{} with --strategy {}: {}", job.origin,
                                                     options.strategy, status.message())));
    }
  }
  std::vector<Job> jobs = {job};
  if (!options.baseline_path.empty()) {
    StatusOr<Job> baseline = load_job(options.baseline_path);
    if (!baseline.ok()) return report(baseline.status());
    jobs.push_back(*baseline);
  }
  // Outputs that will be refused are refused before the simulation.
  if (!options.html_path.empty()) {
    if (Status s = check_output_path(options.html_path); !s.ok()) return report(s);
  }
  SimOptions sim_options;
  sim_options.record_trace = !options.trace_path.empty() || !options.html_path.empty();
  sim_options.record_memory_timeline = sim_options.record_trace;
  sim_options.critical_path = true;
  std::vector<SimulatedJob> runs;
  for (const Job& j : jobs) {
    StatusOr<SimResult> result = simulate_one(j, sim_options, options.json,
                                              runs.empty() ? "simulate" : "simulate --baseline");
    if (!result.ok()) return report(result.status());
    runs.push_back({run_label(j), j, std::move(*result)});
  }
  if (runs.size() == 2 && runs[0].label == runs[1].label) runs[1].label += " (--baseline)";

  if (!options.trace_path.empty()) {
    const Status s = write_with_resolved_job(options.trace_path,
                                             trace_to_chrome_json(*runs[0].result.trace), job);
    if (!s.ok()) return report(s);
  }
  if (!options.html_path.empty()) {
    if (Status s = write_file_atomic(options.html_path, simulate_report_html(runs)); !s.ok()) {
      return report(s);
    }
  }
  if (options.json) {
    nlohmann::json out = metrics_to_json(runs[0].result.metrics);
    out["job"] = job.origin;
    if (!options.trace_path.empty()) out["trace"] = options.trace_path;
    if (!options.html_path.empty()) out["html"] = options.html_path;
    if (runs.size() == 2) {
      out["baseline"] = metrics_to_json(runs[1].result.metrics);
      out["baseline"]["job"] = runs[1].job.origin;
    }
    std::fputs(out.dump(2).c_str(), stdout);
    std::fputs("\n", stdout);
    return 0;
  }
  std::string text;
  for (const SimulatedJob& run : runs) {
    if (runs.size() > 1) text += fmt::format("== {}: {}\n", run.label, run.job.origin);
    text += resolved_table(run.job) + "\n" + metrics_table(run.result.metrics);
    if (runs.size() > 1) text += "\n";
  }
  if (runs.size() == 2 && runs[0].result.metrics.step_time_s > 0) {
    text += fmt::format("{} takes {:.3g}x the step time of {}\n", runs[1].label,
                        runs[1].result.metrics.step_time_s / runs[0].result.metrics.step_time_s,
                        runs[0].label);
  }
  if (!options.trace_path.empty()) text += written_note(options.trace_path);
  if (!options.html_path.empty())
    text += fmt::format("\nreport written to {}\n", options.html_path);
  std::fputs(text.c_str(), stdout);
  return 0;
}

}  // namespace

void add_simulate_command(CLI::App& app, RunFn* run) {
  auto options = std::make_shared<SimulateOptions>();
  CLI::App* cmd = app.add_subcommand(
      "simulate", "Predict step time, throughput, MFU, bubbles and peak memory of a job");
  cmd->add_option("job", options->job_path, "job YAML file")->required();
  cmd->add_flag("-j,--json", options->json, "print the metrics as JSON");
  cmd->add_option("-t,--trace", options->trace_path,
                  "write the predicted timeline as Chrome Trace Event JSON (opens in Perfetto); "
                  "the resolved job is saved beside it as NAME.job.yaml");
  cmd->add_option("--html", options->html_path,
                  "write a self-contained HTML report: timelines with the critical path, "
                  "bubbles and recompute per stage, memory over time against the capacity, the "
                  "breakdown at the peak, the resolved job");
  cmd->add_option("-b,--baseline", options->baseline_path,
                  "a second job (e.g. examples/*-baseline.yaml) simulated beside this one: both "
                  "in the table and, one above the other, in the HTML report");
  cmd->add_option("-s,--strategy", options->strategy,
                  "override strategy.kind with the job's parallel section")
      ->check(CLI::IsMember({"chunkflow", "baseline"}));
  cmd->callback([run, options] { *run = [options] { return run_simulate(*options); }; });
}

}  // namespace cf::cli

// `chunkflow simulate JOB.yaml [--json] [--trace FILE] [--strategy chunkflow|baseline]`:
// one training step (averaged over training.steps) replayed by the simulator; metrics as a
// table or JSON, the predicted timeline as a Chrome trace. Not the tuner's search.
#include <fmt/format.h>

#include <cstdio>

#include "cli/command.h"
#include "cli/progress.h"
#include "sim/simulator.h"
#include "traces/trace.h"

namespace cf::cli {
namespace {

struct SimulateOptions {
  std::string job_path;
  bool json = false;
  std::string trace_path;
  std::string strategy;  // "" keeps the job's
};

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
  SimOptions sim_options;
  sim_options.record_trace = !options.trace_path.empty();
  sim_options.record_memory_timeline = sim_options.record_trace;
  sim_options.critical_path = true;
  // Steps one by one on a terminal (a job may ask for up to 1,000 sampled steps).
  ProgressDisplay progress(show_progress(false, options.json) && job.training.steps > 1,
                           "simulate: steps", Objective::kStepTime);
  StatusOr<SimResult> result =
      simulate_job(job, sim_options, [&](int step, int steps) { progress.advance(step, steps); });
  progress.finish();
  if (!result.ok()) return report(result.status());

  if (!options.trace_path.empty()) {
    const Status s =
        write_with_resolved_job(options.trace_path, trace_to_chrome_json(*result->trace), job);
    if (!s.ok()) return report(s);
  }
  if (options.json) {
    nlohmann::json out = metrics_to_json(result->metrics);
    out["job"] = job.origin;
    if (!options.trace_path.empty()) out["trace"] = options.trace_path;
    std::fputs(out.dump(2).c_str(), stdout);
    std::fputs("\n", stdout);
  } else {
    std::fputs(resolved_table(job).c_str(), stdout);
    std::fputs("\n", stdout);
    std::fputs(metrics_table(result->metrics).c_str(), stdout);
    if (!options.trace_path.empty()) {
      std::fputs(written_note(options.trace_path).c_str(), stdout);
    }
  }
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
  cmd->add_option("-s,--strategy", options->strategy,
                  "override strategy.kind with the job's parallel section")
      ->check(CLI::IsMember({"chunkflow", "baseline"}));
  cmd->callback([run, options] { *run = [options] { return run_simulate(*options); }; });
}

}  // namespace cf::cli

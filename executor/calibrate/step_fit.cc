// The step fit (step_fit.h): the fixed jobs, their predictions from the op curves with no
// slowdown, then their runs round-robin and the mean ratio per thread count.
#include "executor/calibrate/step_fit.h"

#include <fmt/format.h>

#include <algorithm>
#include <memory>
#include <utility>

#include "executor/calibrate/profiler.h"
#include "executor/executor.h"
#include "sim/cost_calibrated.h"
#include "sim/plan/plan_builder.h"
#include "sim/simulator.h"

namespace cf {

StatusOr<std::vector<Job>> step_jobs(const std::string& model, int64_t max_tokens, int pp, int dp) {
  std::string lengths;
  for (int i = 1; i <= 15; ++i) {
    lengths += fmt::format("{}, ", std::max<int64_t>(1, max_tokens * i / 16));
  }
  lengths += fmt::format("{}", max_tokens);
  std::vector<Job> jobs;
  for (const std::string& strategy : {std::string("{kind: baseline, micro_batching: per_sequence}"),
                                      fmt::format("{{kind: chunkflow, chunk_size: {}, k: 2}}",
                                                  std::max<int64_t>(1, max_tokens / 4))}) {
    CF_ASSIGN_OR_RETURN(
        Job job,
        parse_job(fmt::format("model: {}\n"
                              "cluster: {{gpu: h100-sxm-80g, gpus: {}, gpus_per_node: {}}}\n"
                              "dataset: {{lengths: [{}], max_length: {}}}\n"
                              "training: {{global_batch: 16, steps: 2}}\n"
                              "parallel: {{tp: 1, pp: {}, dp: {}}}\n"
                              "strategy: {}\n",
                              model, pp * dp, pp * dp, lengths, max_tokens, pp, dp, strategy),
                  "calibration job"));
    jobs.push_back(std::move(job));
  }
  return jobs;
}

namespace {

// One fixed job of the fit: its thread count, its predicted mean step time, and what its
// runs measured.
struct FitJob {
  int k = 1;
  Job job;
  double predicted_s = 0;
  std::vector<double> ratios;  // measured over predicted, one per run
  std::vector<double> loads;   // each run's load
};

// Every job for k = 1 .. max_threads, predicted from `table`'s curves with no slowdown.
StatusOr<std::vector<FitJob>> predicted_jobs(const CalibrationTable& table,
                                             const std::string& model, int64_t max_tokens,
                                             int max_threads) {
  CalibrationTable flat = table;
  flat.concurrency_slowdown.assign(static_cast<size_t>(max_threads), 1.0);
  CF_ASSIGN_OR_RETURN(std::vector<Job> one, step_jobs(model, max_tokens, 1, 1));
  const int64_t layers = one.front().model.layers;
  std::vector<FitJob> fits;
  for (int k = 1; k <= max_threads; ++k) {
    std::vector<std::pair<int, int>> layouts = {{1, k}};
    if (k > 1 && layers % k == 0) layouts.emplace_back(k, 1);
    for (const auto& [pp, dp] : layouts) {
      CF_ASSIGN_OR_RETURN(std::vector<Job> jobs, step_jobs(model, max_tokens, pp, dp));
      for (Job& job : jobs) {
        CF_ASSIGN_OR_RETURN(std::unique_ptr<CalibratedCostModel> cost,
                            CalibratedCostModel::create(job, flat, "the table being measured"));
        FitJob fit{k, std::move(job), 0, {}, {}};
        const int64_t steps = fit.job.training.steps;
        for (int64_t step = 0; step < steps; ++step) {
          CF_ASSIGN_OR_RETURN(Plan plan, build_plan(fit.job, step));
          CF_ASSIGN_OR_RETURN(SimResult sim, simulate(fit.job, plan, *cost));
          fit.predicted_s += sim.metrics.step_time_s / static_cast<double>(steps);
        }
        fits.push_back(std::move(fit));
      }
    }
  }
  return fits;
}

}  // namespace

StatusOr<StepFit> measure_step_slowdown(const CalibrationTable& table, const std::string& model,
                                        int64_t max_tokens, int max_threads, int rounds,
                                        uint64_t seed, const std::function<void(int)>& progress) {
  CF_ASSIGN_OR_RETURN(std::vector<FitJob> fits,
                      predicted_jobs(table, model, max_tokens, max_threads));
  const SpeedProbe& probe = table.machine.speed_probe;
  for (int round = 0; round < rounds; ++round) {
    if (progress) progress(round);
    for (FitJob& fit : fits) {
      ExecutorOptions exec;
      exec.seed = seed + static_cast<uint64_t>(round);
      exec.record_trace = false;
      CF_ASSIGN_OR_RETURN(ProbedRun run,
                          run_with_speed_probe(fit.job, exec, probe.reference_ns, probe.tokens));
      fit.ratios.push_back(run.report.step_time_s() / fit.predicted_s);
      fit.loads.push_back(run.load);
    }
  }
  StepFit out;
  std::vector<double> loads;
  for (int k = 1; k <= max_threads; ++k) {
    std::vector<double> ratios;
    for (const FitJob& fit : fits) {
      if (fit.k == k) ratios.insert(ratios.end(), fit.ratios.begin(), fit.ratios.end());
    }
    out.slowdown.push_back(mean(ratios));
  }
  for (const FitJob& fit : fits) loads.insert(loads.end(), fit.loads.begin(), fit.loads.end());
  out.load = mean(loads);
  return out;
}

}  // namespace cf

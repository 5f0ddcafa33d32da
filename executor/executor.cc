// In-process execution of a job (executor.h): one thread per (DP rank, stage), the in-process
// transport, the reference check between the gradient sums and the optimizer step.
#include "executor/executor.h"

#include <fmt/format.h>

#include <algorithm>
#include <memory>
#include <thread>

#include "core/check.h"
#include "executor/inproc_transport.h"
#include "executor/memory.h"
#include "executor/stage.h"
#include "sim/plan/plan_builder.h"

namespace cf {

double RunReport::step_time_s() const {
  double total = 0;
  for (const StepReport& s : steps) total += s.step_time_s;
  return steps.empty() ? 0 : total / static_cast<double>(steps.size());
}

double RunReport::tokens_per_s() const {
  double tokens = 0, seconds = 0;
  for (const StepReport& s : steps) {
    tokens += static_cast<double>(s.tokens);
    seconds += s.step_time_s;
  }
  return seconds > 0 ? tokens / seconds : 0;
}

double RunReport::loss() const {
  double total = 0;
  for (const StepReport& s : steps) total += s.loss;
  return steps.empty() ? 0 : total / static_cast<double>(steps.size());
}

std::optional<GradientCheck> RunReport::worst_check() const {
  std::optional<GradientCheck> worst;
  for (const StepReport& s : steps) {
    if (s.check && (!worst || !(s.check->rel_error <= worst->rel_error))) worst = s.check;
  }
  return worst;
}

Status validate_for_executor(const Job& job) {
  if (job.parallel.tp != 1) {
    return Status::InvalidInput(fmt::format(
        "{}: parallel.tp: the cpu backend has no tensor parallelism (tp must be 1, got {})",
        job.origin, job.parallel.tp));
  }
  if (job.parallel.cp != 1) {
    return Status::InvalidInput(fmt::format(
        "{}: parallel.cp: the cpu backend has no context parallelism yet (cp must be 1, got {})",
        job.origin, job.parallel.cp));
  }
  if (job.parallel.recompute != Recompute::kNone) {
    return Status::InvalidInput(fmt::format(
        "{}: parallel.recompute: the cpu backend runs recompute: none (got {}); ChunkFlow's "
        "F*/R recompute is part of the plan",
        job.origin, to_string(job.parallel.recompute)));
  }
  return Status::Ok();
}

StatusOr<TokenSource> TokenSource::open(const Job& job, const ExecutorOptions& options) {
  TokenSource source;
  source.job_ = &job;
  source.seed_ = options.seed;
  if (!options.tokens_path.empty()) {
    CF_ASSIGN_OR_RETURN(source.file_sequences_,
                        read_token_file(options.tokens_path, job.model.vocab));
  }
  return source;
}

TokenBatch TokenSource::batch(int64_t step) const {
  if (!file_sequences_.empty()) {
    return token_file_batch(file_sequences_, job_->training.global_batch, step);
  }
  return synthetic_tokens(job_global_batch(*job_, step), job_->model.vocab, seed_, step);
}

StatusOr<Plan> TokenSource::plan(int64_t step, const TokenBatch& batch) const {
  PlanInputs inputs = plan_inputs_from_job(*job_, step);
  inputs.sequence_lengths = batch.lengths();
  return build_plan(inputs);
}

void merge_stage_peak(const StageMemoryReport& peak, std::vector<StageMemoryReport>* stages) {
  StageMemoryReport& worst = (*stages)[static_cast<size_t>(peak.stage)];
  const MemoryBreakdown category_peaks = worst.category_peaks;
  if (peak.peak_bytes > worst.peak_bytes) worst = peak;
  for (MemoryCategory c : kAllMemoryCategories) {
    worst.category_peaks[c] = std::max(category_peaks[c], peak.category_peaks[c]);
  }
}

void finish_trace(const std::vector<StageMemoryReport>& peaks, const StepReport& step0,
                  Trace* trace) {
  trace->source = "measured";
  std::stable_sort(trace->ops.begin(), trace->ops.end(), [](const TraceOp& a, const TraceOp& b) {
    return std::tie(a.dp_rank, a.stage, a.start_ns) < std::tie(b.dp_rank, b.stage, b.start_ns);
  });
  for (const StageMemoryReport& p : peaks) {
    CF_CHECK_EQ(p.at_peak.total(), p.peak_bytes) << "the breakdown at the peak";
    trace->peak_memory[{p.dp_rank, p.stage}] = p.at_peak;
  }
  trace->metrics = {{"step_time_s", step0.step_time_s},
                    {"tokens_per_s", step0.step_time_s > 0 ? step0.tokens / step0.step_time_s : 0},
                    {"loss", step0.loss}};
}

namespace {

StageMemoryReport worker_peak(StageWorker& worker) {
  MemoryTracker& t = worker.tracker();
  return StageMemoryReport{worker.stage(), worker.dp_rank(), t.peak_total(), t.breakdown_at_peak(),
                           t.category_peaks()};
}

// Runs fn(worker) on one thread per worker and waits for all.
template <typename Fn>
void on_every_worker(std::vector<std::unique_ptr<StageWorker>>& workers, Fn fn) {
  std::vector<std::thread> threads;
  threads.reserve(workers.size());
  for (auto& w : workers) threads.emplace_back([&fn, &w] { fn(*w); });
  for (std::thread& t : threads) t.join();
}

double seconds_between(StepClock::time_point a, StepClock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

}  // namespace

StatusOr<RunReport> run_in_process(const Job& job, const ExecutorOptions& options,
                                   const StepCallback& on_step) {
  CF_RETURN_IF_ERROR(validate_for_executor(job));
  retain_freed_memory();
  CF_ASSIGN_OR_RETURN(TokenSource source, TokenSource::open(job, options));
  const int dp = job.parallel.dp, pp = job.parallel.pp, vpp = job.parallel.vpp;
  InProcessFabric fabric(dp, pp);
  std::vector<std::unique_ptr<StageWorker>> workers;  // index dp_rank·pp + stage
  std::vector<std::unique_ptr<InProcessTransport>> transports;
  for (int r = 0; r < dp; ++r) {
    for (int s = 0; s < pp; ++s) {
      workers.push_back(std::make_unique<StageWorker>(job.model, pp, vpp, r, s));
      transports.push_back(std::make_unique<InProcessTransport>(&fabric, r, s));
    }
  }
  on_every_worker(workers,
                  [&](StageWorker& w) { w.params().initialise(options.seed, options.init_std); });

  RunReport report;
  report.stages.resize(static_cast<size_t>(pp));
  for (int s = 0; s < pp; ++s) report.stages[static_cast<size_t>(s)].stage = s;
  for (int64_t step = 0; step < job.training.steps; ++step) {
    const TokenBatch batch = source.batch(step);
    CF_ASSIGN_OR_RETURN(Plan plan, source.plan(step, batch));
    const bool record = options.record_trace && step == 0;
    StepReport sr;
    sr.step = step;
    sr.tokens = plan.total_tokens();
    sr.chunks = static_cast<int>(plan.chunks.size());

    const StepClock::time_point t0 = StepClock::now();
    on_every_worker(workers, [&](StageWorker& w) {
      w.run_step(plan, batch, transports[static_cast<size_t>(w.dp_rank() * pp + w.stage())].get(),
                 t0, record);
    });
    const StepClock::time_point t1 = StepClock::now();
    CF_CHECK_EQ(fabric.undelivered(), 0u) << "messages sent that no op received";
    if (options.check_reference) {
      std::vector<const StageParams*> stages;
      for (int s = 0; s < pp; ++s) stages.push_back(&workers[static_cast<size_t>(s)]->params());
      sr.check = check_against_reference(job.model, stages, batch);
    }
    // The optimizer's clock continues where the pipeline's stopped (the check is not timed).
    const StepClock::time_point t2 = StepClock::now();
    const StepClock::time_point origin = t2 - (t1 - t0);
    on_every_worker(workers, [&](StageWorker& w) {
      w.optimizer_step(options.adamw, step + 1, origin, record);
    });
    const StepClock::time_point t3 = StepClock::now();
    sr.step_time_s = seconds_between(t0, t1) + seconds_between(t2, t3);
    for (auto& w : workers) {
      if (w->stage() == pp - 1) sr.loss += w->loss_sum();
    }

    std::vector<StageMemoryReport> peaks;
    for (auto& w : workers) {
      peaks.push_back(worker_peak(*w));
      merge_stage_peak(peaks.back(), &report.stages);
    }
    if (step == 0) {
      for (auto& w : workers) report.op_memory.push_back(w->op_memory());
    }
    if (record) {
      for (auto& w : workers) {
        report.trace.ops.insert(report.trace.ops.end(), w->trace_ops().begin(),
                                w->trace_ops().end());
        report.trace.memory.insert(report.trace.memory.end(), w->memory_samples().begin(),
                                   w->memory_samples().end());
        w->clear_trace();
      }
      finish_trace(peaks, sr, &report.trace);
    }
    if (on_step) on_step(sr, job.training.steps);
    report.steps.push_back(std::move(sr));
  }
  return report;
}

}  // namespace cf

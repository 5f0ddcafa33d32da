// The whole job (simulator.h simulate_job): its sampled steps, each a plan the simulator runs,
// averaged, and the worst-case batch replayed for memory; kv_offload: auto (docs/BEYOND.md),
// which draws the line of the sequences whose K/V leave the GPU; and the metrics' word for
// where the K/V state lived.
#include <fmt/format.h>

#include <algorithm>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "core/limits.h"
#include "sim/cost_model.h"
#include "sim/metrics.h"
#include "sim/plan/plan_builder.h"
#include "sim/plan/plan_checker.h"
#include "sim/simulator.h"

namespace cf {

std::string kv_offload_label(const Job& job, bool automatic) {
  const KvOffloadPolicy offload = kv_offload_policy(job);
  std::string label = std::string(automatic ? "auto: " : "") + to_string(kv_offload_of(job));
  if (offload.enabled && offload.min_tokens > 0) {
    label += fmt::format(" ≥ {} tokens", offload.min_tokens);
  }
  return label;
}

void label_kv_offload(const Job& job, SimMetrics* m, bool automatic) {
  const KvOffloadPolicy offload = kv_offload_policy(job);
  m->kv_offload_min_tokens = offload.enabled ? offload.min_tokens : 0;
  m->kv_offload = kv_offload_label(job, automatic);
}

namespace {

// Whether the stages' peaks (the sampled steps' and the worst case's) fit the GPU, whatever
// the host memory.
bool fits_device(const Job& job, const SimMetrics& m) {
  const int64_t usable = job.cluster.gpu.hbm_bytes - job.cluster.gpu.reserved_bytes;
  return std::max(worst_stage_peak_bytes(m), m.worst_case_peak_bytes) <= usable;
}

}  // namespace

std::vector<int64_t> offload_lines(const std::vector<std::vector<int64_t>>& batches,
                                   int64_t chunk_size) {
  std::set<int64_t, std::greater<>> lengths;
  for (const std::vector<int64_t>& batch : batches) {
    for (const int64_t length : batch) {
      if (length > chunk_size) lengths.insert(length);
    }
  }
  return {lengths.begin(), lengths.end()};
}

std::vector<int64_t> offload_lines(const Job& job) {
  std::vector<std::vector<int64_t>> batches;
  for (int step = 0; step < job.training.steps; ++step) {
    batches.push_back(plan_inputs_from_job(job, step).sequence_lengths);
  }
  batches.push_back(worst_case_batch(job, plan_inputs_from_job(job, 0).sequence_lengths));
  return offload_lines(batches, job.strategy.chunk_size);
}

StatusOr<int64_t> bisect_offload_line(const std::vector<int64_t>& lengths,
                                      const std::function<StatusOr<bool>(int64_t)>& fits) {
  // lengths[hi] is a line that fits (or the last one); lines above lengths[lo] do not.
  size_t lo = 0, hi = lengths.empty() ? 0 : lengths.size() - 1;
  while (lo < hi) {
    const size_t mid = lo + (hi - lo) / 2;
    CF_ASSIGN_OR_RETURN(const bool fit, fits(lengths[mid]));
    if (fit) {
      hi = mid;
    } else {
      lo = mid + 1;
    }
  }
  // The shortest split sequence's line offloads every one: kv_offload: all.
  return hi + 1 < lengths.size() ? lengths[hi] : 0;
}

// kv_offload auto (docs/BEYOND.md): the job as it is; when it does not fit the GPU, the line
// bisect_offload_line draws, each probe replaying memory only.
// Offloading a sequence frees its whole store and costs a few piece-sized streaming buffers, so
// the GPU's peak falls as the line does, all but to within those buffers: a line the full run
// finds over the GPU gives way to every sequence offloaded, when that fits.
StatusOr<SimResult> simulate_job(const Job& job, const SimOptions& options,
                                 const std::function<void(int, int)>& on_step) {
  if (kv_offload_of(job) != KvOffload::kAuto) {
    return simulate_job_placed(job, options, on_step);
  }
  Job on_device = job;
  on_device.strategy.kv_offload = KvOffload::kNone;
  CF_ASSIGN_OR_RETURN(SimResult result, simulate_job_placed(on_device, options, on_step));
  if (result.metrics.feasible) {
    label_kv_offload(on_device, &result.metrics, /*automatic=*/true);
    return result;
  }
  Job offloaded = job;
  offloaded.strategy.kv_offload = KvOffload::kAll;
  SimOptions probe;
  probe.memory_only = true;
  auto fits = [&](int64_t line) -> StatusOr<bool> {
    Job tried_job = offloaded;
    tried_job.strategy.kv_offload_min_tokens = line;
    CF_ASSIGN_OR_RETURN(const SimResult tried, simulate_job_placed(tried_job, probe, nullptr));
    return fits_device(tried_job, tried.metrics);
  };
  CF_ASSIGN_OR_RETURN(offloaded.strategy.kv_offload_min_tokens,
                      bisect_offload_line(offload_lines(job), fits));
  CF_ASSIGN_OR_RETURN(result, simulate_job_placed(offloaded, options, on_step));
  if (offloaded.strategy.kv_offload_min_tokens > 0 && !fits_device(offloaded, result.metrics)) {
    Job all = offloaded;
    all.strategy.kv_offload_min_tokens = 0;
    CF_ASSIGN_OR_RETURN(SimResult everything, simulate_job_placed(all, options, on_step));
    if (fits_device(all, everything.metrics)) offloaded = all, result = std::move(everything);
  }
  label_kv_offload(offloaded, &result.metrics, /*automatic=*/true);
  return result;
}

StatusOr<SimResult> simulate_job_placed(const Job& job, const SimOptions& options,
                                        const std::function<void(int, int)>& on_step) {
  StatusOr<std::unique_ptr<CostModel>> cost = make_cost_model(job);
  if (!cost.ok()) return cost.status();
  Simulator simulator;
  std::vector<SimMetrics> steps;
  SimResult first;
  for (int step = 0; step < job.training.steps; ++step) {
    if (on_step) on_step(step, job.training.steps);
    StatusOr<Plan> plan = build_plan(job, step);
    if (!plan.ok()) return plan.status();
    CF_RETURN_IF_ERROR(require_valid_plan(*plan, step));
    if (step == 0) {
      // The work of every step, estimated from the first, is bounded before the rest runs.
      const int64_t ops = plan->op_count();
      if (ops * job.training.steps > limits::kMaxSimulatedOps) {
        return Status::InvalidInput(fmt::format(
            "{}: training.steps: {} steps of ~{} ops are ~{} ops to simulate, more than the {} "
            "one simulate may run (~10 minutes, core/limits.h): lower training.steps",
            job.origin, job.training.steps, ops, ops * job.training.steps,
            limits::kMaxSimulatedOps));
      }
      if (options.record_trace && ops > limits::kMaxTraceOps) {
        return Status::InvalidInput(fmt::format(
            "{}: --trace: step 0 has {} ops, more than the {} a trace may hold (core/limits.h: "
            "its events would not fit in memory nor open in a trace viewer); simulate without "
            "--trace, or a job with fewer chunks",
            job.origin, ops, limits::kMaxTraceOps));
      }
    }
    // Later steps are simulated for their metrics only (a memory-only run replays memory only).
    SimOptions later;
    later.memory_only = options.memory_only;
    StatusOr<SimResult> result = simulator.run(job, *plan, **cost, step == 0 ? options : later);
    if (!result.ok()) return result.status().prefixed(job.origin);
    if (step == 0 && options.record_trace &&
        result->metrics.step_time_s * 1e9 >= static_cast<double>(kMaxTraceTimeNs)) {
      return Status::InvalidInput(fmt::format(
          "{}: --trace: the predicted step lasts {:.3g} days, longer than a trace holds (2^50 ns, "
          "13 days, traces/trace.h); simulate without --trace",
          job.origin, result->metrics.step_time_s / 86400));
    }
    steps.push_back(result->metrics);
    if (step == 0) first = std::move(*result);
  }
  if (on_step) on_step(job.training.steps, job.training.steps);
  first.metrics = average_steps(steps);
  // Memory must also hold the longest sequence the data can produce (job.h worst_case_batch).
  PlanInputs worst = plan_inputs_from_job(job, 0);
  worst.sequence_lengths = worst_case_batch(job, worst.sequence_lengths);
  if (!worst.sequence_lengths.empty()) {
    StatusOr<Plan> plan = build_plan(worst);
    if (!plan.ok()) return plan.status();
    SimOptions memory_only;
    memory_only.memory_only = true;
    StatusOr<SimResult> result = simulator.run(job, *plan, **cost, memory_only);
    if (!result.ok()) return result.status();
    apply_worst_case(result->metrics, longest_sequence(job), &first.metrics);
  }
  label_kv_offload(job, &first.metrics);
  return first;
}

}  // namespace cf

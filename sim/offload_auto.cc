// kv_offload: auto (docs/BEYOND.md) and the metrics' word for where the K/V state lived: the
// simulate_job that resolves auto, over simulator.cc's simulate_job_placed.
#include <fmt/format.h>

#include <algorithm>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "sim/metrics.h"
#include "sim/plan/plan_builder.h"
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

}  // namespace cf

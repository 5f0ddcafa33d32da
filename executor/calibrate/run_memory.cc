// The memory a CPU run needs against what this machine has (run_memory.h).
#include "executor/calibrate/run_memory.h"

#include <fmt/format.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "sim/simulator.h"

namespace cf {
namespace {

// A "Key:   N kB" line of /proc/meminfo, in bytes; -1 when absent.
int64_t meminfo_bytes(const std::string& key) {
  std::ifstream in("/proc/meminfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key + ":", 0) != 0) continue;
    std::istringstream fields(line.substr(key.size() + 1));
    int64_t kib = -1;
    fields >> kib;
    return kib >= 0 ? kib * 1024 : -1;
  }
  return -1;
}

// This process's mapped address space (the first field of /proc/self/statm, in pages).
int64_t address_space_bytes() {
  std::ifstream in("/proc/self/statm");
  int64_t pages = 0;
  in >> pages;
  return pages * static_cast<int64_t>(::sysconf(_SC_PAGESIZE));
}

std::string gib(int64_t bytes) { return fmt::format("{:.2f} GiB", bytes / 1073741824.0); }

}  // namespace

AvailableMemory available_memory() {
  AvailableMemory out{meminfo_bytes("MemAvailable"), "MemAvailable in /proc/meminfo"};
  if (out.bytes < 0) out = {meminfo_bytes("MemTotal"), "MemTotal in /proc/meminfo"};
  rlimit limit{};
  if (::getrlimit(RLIMIT_AS, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY) {
    const int64_t left =
        std::max<int64_t>(0, static_cast<int64_t>(limit.rlim_cur) - address_space_bytes());
    if (out.bytes < 0 || left < out.bytes) out = {left, "the address-space limit (ulimit -v)"};
  }
  return out;
}

StatusOr<RunMemoryNeed> run_memory_need(const Job& job, bool in_process, int local_ranks) {
  // The executor's accounting replayed on every step's plan; times are not needed.
  Job counted = job;
  counted.memory_model = MemoryModelKind::kExecutor;
  counted.cost_model.kind = CostModelKind::kUnit;
  counted.cost_model.table.clear();
  SimOptions options;
  options.memory_only = true;
  CF_ASSIGN_OR_RETURN(const SimResult result, simulate_job(counted, options));
  RunMemoryNeed need;
  int64_t sum_over_stages = 0, host_over_stages = 0;
  for (const StageMetrics& stage : result.metrics.stages) {
    sum_over_stages += stage.peak_memory_bytes;
    need.largest_stage_bytes = std::max(need.largest_stage_bytes, stage.peak_memory_bytes);
    host_over_stages += stage.host_peak_bytes;
    need.largest_stage_host_bytes = std::max(need.largest_stage_host_bytes, stage.host_peak_bytes);
  }
  // The worst-case batch's peak (its worst stage) where it exceeds the sampled steps'.
  const int64_t worst_extra =
      std::max<int64_t>(0, result.metrics.worst_case_peak_bytes - need.largest_stage_bytes);
  need.largest_stage_bytes += worst_extra;
  const int64_t replicas = int64_t{job.parallel.dp} * job.parallel.cp;
  if (in_process) {
    // Every stage of every DP and CP rank is a thread of this process; each peaks at most once.
    need.instances = static_cast<int>(replicas * job.parallel.pp);
    need.bytes = replicas * (sum_over_stages + worst_extra);
    need.host_pool_bytes = replicas * host_over_stages;
  } else {
    need.instances = std::max(1, local_ranks);
    need.bytes = need.instances * need.largest_stage_bytes;
    need.host_pool_bytes = need.instances * need.largest_stage_host_bytes;
  }
  return need;
}

StatusOr<Job> resolve_run_offload(const Job& job, std::optional<int64_t> device_free_bytes,
                                  bool in_process, std::string* label) {
  if (kv_offload_of(job) != KvOffload::kAuto) return job;
  Job placed = job;
  placed.strategy.kv_offload = KvOffload::kNone;
  placed.strategy.kv_offload_min_tokens = 0;
  auto fits = [&](const Job& tried) -> StatusOr<bool> {
    CF_ASSIGN_OR_RETURN(const RunMemoryNeed need, run_memory_need(tried, in_process, 1));
    return (in_process ? need.bytes : need.largest_stage_bytes) <= *device_free_bytes;
  };
  bool on_device = !device_free_bytes.has_value();
  if (!on_device) {
    CF_ASSIGN_OR_RETURN(on_device, fits(placed));
  }
  if (!on_device) {
    placed.strategy.kv_offload = KvOffload::kAll;
    auto line_fits = [&](int64_t line) {
      Job tried = placed;
      tried.strategy.kv_offload_min_tokens = line;
      return fits(tried);
    };
    // A line above 0 is one a probe found fitting: the same count the run is checked by.
    CF_ASSIGN_OR_RETURN(placed.strategy.kv_offload_min_tokens,
                        bisect_offload_line(offload_lines(job), line_fits));
  }
  if (label != nullptr) *label = kv_offload_label(placed, /*automatic=*/true);
  return placed;
}

Status check_run_memory(const Job& job, bool in_process, int local_ranks) {
  CF_ASSIGN_OR_RETURN(const RunMemoryNeed need, run_memory_need(job, in_process, local_ranks));
  const AvailableMemory have = available_memory();
  // On the CPU backend the host pool of offloaded K/V is the same RAM as the stages'.
  const int64_t bytes = need.bytes + need.host_pool_bytes;
  if (have.bytes < 0 || bytes <= have.bytes) return Status::Ok();
  return Status::InvalidInput(fmt::format(
      "{}: run: needs {} on the CPU backend ({} stage instance{} here, the largest {}: fp32 "
      "weights, gradients, AdamW states, activations and K/V state, as the executor's own "
      "accounting counts them{}), this machine has {} ({}); nothing was allocated. Use a "
      "smaller model, more ranks on more hosts, or `chunkflow simulate` for the prediction",
      job.origin, gib(bytes), need.instances, need.instances == 1 ? "" : "s",
      gib(need.largest_stage_bytes),
      need.host_pool_bytes > 0
          ? fmt::format("; {} of it offloaded K/V in the host pools", gib(need.host_pool_bytes))
          : "",
      gib(have.bytes), have.source));
}

Status check_host_pool_memory(const Job& job, const RunMemoryNeed& need) {
  const AvailableMemory have = available_memory();
  if (need.host_pool_bytes == 0 || have.bytes < 0 || need.host_pool_bytes <= have.bytes) {
    return Status::Ok();
  }
  return Status::InvalidInput(fmt::format(
      "{}: run: strategy.kv_offload: all needs {} of pinned host memory for the offloaded K/V "
      "({} stage instance{} here, the largest {}), this machine has {} ({}); nothing was "
      "allocated. Use kv_offload: none if the K/V fit on the device, or more hosts",
      job.origin, gib(need.host_pool_bytes), need.instances, need.instances == 1 ? "" : "s",
      gib(need.largest_stage_host_bytes), gib(have.bytes), have.source));
}

}  // namespace cf

// Resources before work: the memory a CPU run of a job will allocate, known from the
// executor's own accounting (executor_memory.h) replayed on the job's plans, held against
// what this machine can give before a single buffer is allocated. Used by `chunkflow run`.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "core/status.h"
#include "sim/plan/job.h"

namespace cf {

// What this process may still allocate: MemAvailable of /proc/meminfo, or less where an
// address-space limit (ulimit -v) leaves less. `source` says which bound it is.
struct AvailableMemory {
  int64_t bytes = 0;
  std::string source;
};
AvailableMemory available_memory();

// The bytes this host's part of a CPU run of `job` will hold at its peaks, from the
// executor's stage peaks (fp32 weights, gradients, AdamW states, activations, the state
// store, transients; the worst-case batch included, max over DP ranks): in process, every
// dp·cp·pp stage instance at its own stage's peak; under mpirun, `local_ranks` one-stage
// ranks on this host, each at the largest stage's peak.
// With K/V offload (strategy.kv_offload: all) the stages' host pools likewise, apart.
struct RunMemoryNeed {
  int64_t bytes = 0;  // what this host's processes will hold at their peaks
  int64_t largest_stage_bytes = 0;
  int64_t host_pool_bytes = 0;  // offloaded K/V: the host pools at their peaks
  int64_t largest_stage_host_bytes = 0;
  int instances = 0;  // stage instances counted
};
StatusOr<RunMemoryNeed> run_memory_need(const Job& job, bool in_process, int local_ranks);

// strategy.kv_offload: auto for a run, decided on the executor's own accounting: a device
// backend (`device_free_bytes`: what each device has free, known) keeps the K/V on the
// device when the need (in process every stage on one device; under mpirun the largest
// stage's) fits it, else offloads the sequences bisect_offload_line picks, or all of them
// (when even that is over, check_device_memory refuses the run); a host backend (nullopt)
// keeps it where it is, since its host pool is the same RAM and offloading frees none of it.
// The job returned has kv_offload none or all (with its line); `label` (optional) gets
// kv_offload_label's "auto: ..." words. Jobs that are not auto come back as they are.
StatusOr<Job> resolve_run_offload(const Job& job, std::optional<int64_t> device_free_bytes,
                                  bool in_process, std::string* label = nullptr);

// InvalidInput "JOB: run: needs N GiB ..., this machine has M GiB (source)" when the need
// (the host pools included: the same RAM) exceeds what is available; Ok otherwise. Requires
// install_executor_memory().
Status check_run_memory(const Job& job, bool in_process, int local_ranks);
// A device run's host pools (pinned host memory) against what this machine has: InvalidInput
// naming both when they do not fit; Ok otherwise.
Status check_host_pool_memory(const Job& job, const RunMemoryNeed& need);

}  // namespace cf

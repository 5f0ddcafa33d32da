// Resources before work: the memory a CPU run of a job will allocate, known from the
// executor's own accounting (executor_memory.h) replayed on the job's plans, held against
// what this machine can give before a single buffer is allocated. Used by `chunkflow run`.
#pragma once

#include <cstdint>
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

// InvalidInput "JOB: run: needs N GiB ..., this machine has M GiB (source)" when the need
// (the host pools included: the same RAM) exceeds what is available; Ok otherwise. Requires
// install_executor_memory().
Status check_run_memory(const Job& job, bool in_process, int local_ranks);
// A device run's host pools (pinned host memory) against what this machine has: InvalidInput
// naming both when they do not fit; Ok otherwise.
Status check_host_pool_memory(const Job& job, const RunMemoryNeed& need);

}  // namespace cf

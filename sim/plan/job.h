// The job file (DESIGN.md §6) as typed structs with defaults, loaded strictly: unknown keys,
// wrong types, out-of-range or inconsistent values are errors naming file:line:col and key.
// Also prints the resolved configuration as a table and writes it back as YAML.
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "models/hardware.h"
#include "models/model.h"
#include "traces/distribution.h"

namespace cf {

struct ClusterConfig {
  std::string gpu_name;  // as written in the job
  GpuSpec gpu;
  int gpus = 8;
  int gpus_per_node = 8;
};

struct DatasetConfig {
  std::string distribution;      // name or path; empty when `lengths` is given
  LengthDistribution dist;       // loaded
  std::vector<int64_t> lengths;  // explicit global batch (non-empty means "use these")
  int64_t max_length = 32768;
  uint64_t seed = 0;
};

struct TrainingConfig {
  int64_t global_batch = 256;  // sequences per step
  int steps = 1;               // global batches sampled
};

enum class Recompute { kNone, kSelective, kFull };
enum class ScheduleKind { kOneFOneB, kGPipe, kInterleaved };

struct ParallelConfig {
  int tp = 1;
  int pp = 1;
  int dp = 1;
  bool sp = false;  // sequence parallelism (with tp > 1)
  Recompute recompute = Recompute::kNone;
  ScheduleKind schedule = ScheduleKind::kOneFOneB;
  int vpp = 1;  // virtual stages per rank (interleaved only)
  bool distributed_optimizer = true;
};

enum class StrategyKind { kChunkFlow, kBaseline };
enum class Packer { kBalanced, kFirstFitDecreasing };
enum class MicroBatching { kPack, kPerSequence };

struct StrategyConfig {
  StrategyKind kind = StrategyKind::kChunkFlow;
  int64_t chunk_size = 8192;
  int k = 1;
  Packer packer = Packer::kBalanced;
  MicroBatching micro_batching = MicroBatching::kPack;  // baseline only
};

enum class CostModelKind { kAnalytical, kUnit, kCalibrated };

struct CostModelConfig {
  CostModelKind kind = CostModelKind::kAnalytical;
  std::string table;  // calibrated only
};

// Whose bytes the simulator counts: Megatron-LM's on GPUs (bf16 weights, Korthikanti et al.
// activations: sim/memory_model.h) or the fp32 CPU executor's own allocator. The job key
// `memory_model`; absent, executor with the calibrated cost model (which prices that executor)
// and megatron otherwise.
enum class MemoryModelKind { kMegatron, kExecutor };

struct Job {
  std::string origin;      // file the job came from
  std::string model_name;  // as written
  ModelConfig model;
  ClusterConfig cluster;
  DatasetConfig dataset;
  TrainingConfig training;
  ParallelConfig parallel;
  StrategyConfig strategy;
  CostModelConfig cost_model;
  MemoryModelKind memory_model = MemoryModelKind::kMegatron;
  // The optional `tune:` section, kept as parsed (with its line marks) and read strictly by
  // the tuner (tuner/), which owns its keys. Null when absent.
  YAML::Node tune;
};

StatusOr<Job> load_job(const std::string& path);
StatusOr<Job> parse_job(const std::string& text, const std::string& origin);
// Consistency rules across sections (also used after programmatic edits, e.g. by the tuner).
Status validate_job(const Job& job);

std::string to_string(Recompute r);        // "none" | "selective" | "full"
std::string to_string(ScheduleKind s);     // "1f1b" | "gpipe" | "interleaved"
std::string to_string(StrategyKind s);     // "chunkflow" | "baseline"
std::string to_string(Packer p);           // "balanced" | "ffd"
std::string to_string(MicroBatching m);    // "pack" | "per_sequence"
std::string to_string(CostModelKind c);    // "analytical" | "unit" | "calibrated"
std::string to_string(MemoryModelKind m);  // "megatron" | "executor"

// The resolved configuration as a two-column table (key path, value).
std::string resolved_table(const Job& job);
// The resolved configuration as a job YAML that parse_job reads back to the same Job.
std::string resolved_yaml(const Job& job);

// The global batch (sequence lengths) of step `step` of the job.
std::vector<int64_t> job_global_batch(const Job& job, int64_t step);

}  // namespace cf

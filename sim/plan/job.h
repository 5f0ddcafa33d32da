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

// The dtype gradients are accumulated and reduced in (Megatron-LM's
// --accumulate-allreduce-grads-in-fp32, which its bf16 recipe turns on: fp32; Megatron-Core's
// DDP grad_reduce_in_fp32 = false, as NeMo's recipes run: bf16).
enum class GradDtype { kFp32, kBf16 };
// How the loss's softmax is computed: unfused keeps an fp32 copy of the logits for the
// backward; fused (Megatron's --cross-entropy-loss-fusion) computes the gradient in place.
enum class CrossEntropy { kUnfused, kFused };

struct TrainingConfig {
  int64_t global_batch = 256;  // sequences per step
  int steps = 1;               // global batches sampled
  GradDtype grad_accumulation_dtype = GradDtype::kFp32;
  CrossEntropy cross_entropy = CrossEntropy::kUnfused;
};

enum class Recompute { kNone, kSelective, kFull };
// Context parallelism's communication (Megatron-Core cp_comm_type): p2p, the load-balanced
// ring passing K/V blocks around the cp ranks overlapped with attention; all_gather, K/V
// gathered before attention (Llama 3); a2a, Ulysses' all-to-all over heads.
enum class CpComm { kP2p, kAllGather, kA2a };
enum class ScheduleKind { kOneFOneB, kGPipe, kInterleaved };

struct ParallelConfig {
  int tp = 1;
  int pp = 1;
  int dp = 1;
  int cp = 1;  // context parallel: each sequence (or chunk) spread over cp GPUs
  CpComm cp_comm = CpComm::kP2p;
  bool sp = false;  // sequence parallelism (with tp > 1)
  Recompute recompute = Recompute::kNone;
  ScheduleKind schedule = ScheduleKind::kOneFOneB;
  int vpp = 1;  // virtual stages per rank (interleaved only)
  bool distributed_optimizer = true;
  // Layers of each pipeline stage (pp entries, vpp = 1), from `layers_per_stage` or
  // Megatron-LM's `first_stage_layers` / `last_stage_layers`; empty: L/(pp·vpp) per model chunk
  // (sim/plan/layer_split.h).
  std::vector<int64_t> layers_per_stage;
};

enum class StrategyKind { kChunkFlow, kBaseline };
// How short sequences are packed into standalone chunks: tokens balanced, first-fit-decreasing,
// or predicted time balanced (cost: tokens + pair_weight · attention pairs, chunking.h).
enum class Packer { kBalanced, kFirstFitDecreasing, kCost };
// How a long sequence is cut into its ceil(length / chunk_size) dependent pieces: equal tokens
// (the last piece the remainder), or equal predicted cost (later pieces, which attend to more
// keys, shorter; each at most chunk_size tokens).
enum class SequenceSplit { kTokens, kCost };
// Where the K/V of a split sequence's finished pieces (and their fp32 dK/dV) live: on the GPU,
// in host memory (offloaded after the forward that makes them, streamed back to every later
// op that reads them, docs/BEYOND.md), or in host memory only when the job does not fit on
// the GPU otherwise.
enum class KvOffload { kNone, kAll, kAuto };
enum class MicroBatching { kPack, kPerSequence };

struct StrategyConfig {
  StrategyKind kind = StrategyKind::kChunkFlow;
  int64_t chunk_size = 8192;
  int k = 1;
  Packer packer = Packer::kBalanced;
  SequenceSplit split = SequenceSplit::kTokens;
  KvOffload kv_offload = KvOffload::kNone;
  // With kv_offload: all, only sequences of at least this many tokens are offloaded (0: every
  // split sequence); kv_offload: auto picks it.
  int64_t kv_offload_min_tokens = 0;
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

// Communication overlapped with compute (Megatron's --tp-comm-overlap,
// --overlap-grad-reduce, --overlap-param-gather, --overlap-p2p-communication).
struct OverlapConfig {
  bool tp_comm = false;
  bool grad_reduce = false;
  bool param_gather = false;
  bool p2p = false;
};

struct Job {
  std::string origin;      // file the job came from
  std::string model_name;  // as written
  ModelConfig model;
  ClusterConfig cluster;
  DatasetConfig dataset;
  TrainingConfig training;
  ParallelConfig parallel;
  OverlapConfig overlap;
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

std::string to_string(Recompute r);      // "none" | "selective" | "full"
std::string to_string(ScheduleKind s);   // "1f1b" | "gpipe" | "interleaved"
std::string to_string(CpComm c);         // "p2p" | "all_gather" | "a2a"
std::string to_string(GradDtype g);      // "fp32" | "bf16"
std::string to_string(CrossEntropy c);   // "unfused" | "fused"
std::string to_string(StrategyKind s);   // "chunkflow" | "baseline"
std::string to_string(Packer p);         // "balanced" | "ffd" | "cost"
std::string to_string(SequenceSplit s);  // "tokens" | "cost"
std::string to_string(KvOffload o);      // "none" | "all" | "auto"
// The job's K/V offload: strategy.kv_offload for ChunkFlow, none for the baseline (no split
// sequences). Every reader of the option asks this.
KvOffload kv_offload_of(const Job& job);
// Which split sequences keep their K/V state in host memory: none, or each of at least
// min_tokens tokens (strategy.kv_offload: all with kv_offload_min_tokens). The simulator's
// memory and cost models and the executor's state store ask it per sequence.
struct KvOffloadPolicy {
  bool enabled = false;
  int64_t min_tokens = 0;
  bool offloads(int64_t sequence_tokens) const { return enabled && sequence_tokens >= min_tokens; }
  bool operator==(const KvOffloadPolicy&) const = default;
};
// The job's policy: CHECKs that kv_offload is not auto (simulate_job, `run` and `tune` each
// resolve auto first).
KvOffloadPolicy kv_offload_policy(const Job& job);
std::string to_string(MicroBatching m);    // "pack" | "per_sequence"
std::string to_string(CostModelKind c);    // "analytical" | "unit" | "calibrated"
std::string to_string(MemoryModelKind m);  // "megatron" | "executor"

// The resolved configuration as a two-column table (key path, value).
std::string resolved_table(const Job& job);
// The resolved configuration as a job YAML that parse_job reads back to the same Job.
std::string resolved_yaml(const Job& job);

// The global batch (sequence lengths) of step `step` of the job.
std::vector<int64_t> job_global_batch(const Job& job, int64_t step);

// The longest sequence the job's data can produce: the distribution's largest length (a raw
// list's longest value, a CDF's last point) clamped to dataset.max_length, or the longest
// explicit length.
int64_t longest_sequence(const Job& job);
// The batch a job's memory must also fit: `sampled` with its longest sequence replaced by
// longest_sequence(job) — the day that sequence is drawn. Empty when `sampled` already holds
// a sequence that long.
std::vector<int64_t> worst_case_batch(const Job& job, const std::vector<int64_t>& sampled);

}  // namespace cf

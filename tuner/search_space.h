// The tuner's search space (docs/TUNING.md): ChunkSize, K, TP, PP, DP, recompute, schedule
// and packer values from a job's `tune:` section and command-line flags, read strictly, and
// the parallel layouts a job's cluster and model admit. Not the search itself (tuner.h).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "sim/plan/job.h"

namespace cf {

enum class Objective { kStepTime, kTokensPerS };
std::string to_string(Objective objective);  // "step_time" | "tokens_per_s"

// One way to lay the job over its GPUs: tp·pp·dp = cluster.gpus.
struct ParallelLayout {
  int tp = 1;
  int pp = 1;
  int dp = 1;
  int cp = 1;  // context parallel (cp_comm as the job says)
  int vpp = 1;
  bool sp = false;
  Recompute recompute = Recompute::kNone;
  ScheduleKind schedule = ScheduleKind::kOneFOneB;
  // Layers per pipeline stage (pp entries, vpp = 1), or empty: the even split.
  std::vector<int64_t> layers_per_stage;
  bool operator==(const ParallelLayout&) const = default;
};

// How the layouts of a search split the layers over their pipeline stages (pp ≥ 2 without
// virtual stages): evenly, and/or balanced for the embedding and the LM head and loss
// (tuner/layer_balance.h). A job's own uneven split is searched at its own pp either way.
enum class SplitKind { kEven, kBalanced };
std::string to_string(SplitKind kind);  // "even" | "balanced"
// The context-parallel sizes a search tries for `cp: all` (and --parallel, and the
// baseline): 1, 2, 4 and 8 where they divide the GPUs and the model's attention allows CP.
std::vector<int> context_parallel_sizes(const Job& job);
// "tp4 pp4 dp2 sp selective 1f1b" (cp shown when > 1, vpp for interleaved, the layers per
// stage when uneven: "layers 7,8,7,6").
std::string describe(const ParallelLayout& layout);

// An integer axis: explicit values (ascending, unique) or every value the job admits.
struct IntAxis {
  bool all = false;
  std::vector<int> values;
};

struct SearchSpace {
  // Explicit ChunkSizes, or (when empty) powers of two and their 1.5× midpoints in
  // [chunk_size_min, chunk_size_max]; chunk_size_max 0 means the job's dataset.max_length.
  std::vector<int64_t> chunk_sizes;
  int64_t chunk_size_min = 1024;
  int64_t chunk_size_max = 0;
  std::vector<int> ks;  // ascending, unique
  IntAxis tp, pp;
  IntAxis dp{true, {}};  // all: dp = GPUs / (tp·cp·pp); explicit values filter the layouts
  std::vector<int> cps;  // context-parallel sizes; empty: the job's parallel.cp
  std::vector<Recompute> recomputes;
  std::vector<ScheduleKind> schedules;
  int vpp = 2;  // virtual stages of the interleaved schedule
  std::vector<SplitKind> splits{SplitKind::kEven, SplitKind::kBalanced};
  std::vector<Packer> packers;
  double memory_margin = 0.05;  // fraction of HBM kept free
  Objective objective = Objective::kStepTime;
  int top = 10;  // rows of the ranked table
};

// Command-line overrides of the `tune:` section: a flag left out is nullopt; a flag given is
// checked as written (an empty list, --top 0, --k-max 0, a NaN or negative margin are errors
// that name the flag). Lists are comma-separated ("4096,8192"); tp, pp, dp, cp, recompute and
// packer also take "all".
struct SpaceFlags {
  std::optional<std::string> chunk_sizes, k, tp, pp, dp, cp, recompute, schedule, packer, split,
      objective;
  std::optional<int64_t> k_max;
  std::optional<double> memory_margin;
  std::optional<int> top;
  bool parallel = false;  // shorthand for tp all, pp all, cp all, recompute all
};

// The job's `tune:` section (absent: defaults — the job's own layout, ChunkSize grid from 1K
// to max_length, K 1..64), then the flags. Errors name file:line:col and tune.KEY, or the
// flag. Checks every explicit value against the job (tp divides the heads, pp the layers,
// ChunkSize within max_length) and that at least one layout remains.
StatusOr<SearchSpace> read_search_space(const Job& job, const SpaceFlags& flags);
// As above for a `tune:` node read against `job` (sweeps read theirs once for every point).
StatusOr<SearchSpace> read_search_space_node(const YAML::Node& tune, const std::string& file,
                                             const std::string& key_path, const Job& job);

// Powers of two p and 1.5·p within [lo, hi], ascending.
std::vector<int64_t> chunk_size_grid(int64_t lo, int64_t hi);
// The ChunkSizes of the space for this job (the grid capped at dataset.max_length).
std::vector<int64_t> resolve_chunk_sizes(const SearchSpace& space, const Job& job);
// The layouts of the space valid for this job, in canonical order (tp, pp, recompute,
// schedule ascending). sp follows the job when its tp > 1 and is on for every tp > 1 when
// the job itself has tp = 1 (Megatron-LM's advice with TP). Layouts at the job's own pp
// without virtual stages carry the job's layer split; the others split evenly (the tuner adds
// the space's other splits, tuner/layer_balance.h).
std::vector<ParallelLayout> resolve_layouts(const SearchSpace& space, const Job& job);
// Every layout the job admits (tp within a node, 1F1B, all recompute policies): the space
// the Megatron-style baseline is tuned over.
std::vector<ParallelLayout> all_layouts(const Job& job);

// `base` with the layout and strategy applied (cost model, dataset, model unchanged).
Job job_with(const Job& base, const ParallelLayout& layout, const StrategyConfig& strategy);
void apply_layout(const ParallelLayout& layout, const StrategyConfig& strategy, Job* job);

}  // namespace cf

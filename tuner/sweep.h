// What-if capacity planning (`chunkflow sweep SWEEP.yaml`, docs/TUNING.md): a base job varied
// over GPU count, GPU type, context length, model and dataset; every point tuned; a table,
// CSV and JSON; and the smallest GPU count that reaches a target tokens/s. Never prints.
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "sim/plan/job.h"
#include "tuner/search_space.h"
#include "tuner/tuner.h"

namespace cf {

// The sweep file, read strictly. Axes left out keep the base job's value.
struct SweepSpec {
  std::string origin;
  Job base;
  std::vector<std::string> models;    // names or paths, as written
  std::vector<std::string> datasets;  // distribution names or paths
  std::vector<std::string> gpu_types;
  std::vector<int64_t> max_lengths;
  std::vector<int64_t> gpu_counts;
  SearchSpace space;               // read against the base job; filtered per point
  double target_tokens_per_s = 0;  // 0: no target
};

struct SweepPoint {
  std::string model, dataset, gpu;
  int64_t max_length = 0;
  int gpus = 0;
  std::string error;  // why this point could not be tuned (no layout fills its GPUs, ...)
  std::optional<RankedCandidate> best;
  std::optional<RankedCandidate> baseline;
  std::string closest_miss;  // when nothing fits
  int candidates = 0;
  int evaluated = 0;
};

// The smallest GPU count of one (model, dataset, GPU type, context) that reaches the target.
struct TargetAnswer {
  std::string model, dataset, gpu;
  int64_t max_length = 0;
  int gpus = 0;  // 0: no GPU count of the sweep reaches it
  double tokens_per_s = 0;
};

struct SweepResult {
  std::string origin;
  double target_tokens_per_s = 0;
  std::vector<SweepPoint> points;  // model, dataset, GPU type, context, GPU count (innermost)
  std::vector<TargetAnswer> target;
};

// `job:` default (the embedded default job) or a path, tried as given and then beside the
// sweep file. Errors name file:line:col and the key.
StatusOr<SweepSpec> parse_sweep(const std::string& text, const std::string& origin);
StatusOr<SweepSpec> load_sweep(const std::string& path);

// `on_point(i, n, label)` is called before point i (0-based) of n is tuned.
using SweepPointCallback = std::function<void(int, int, const std::string&)>;
StatusOr<SweepResult> run_sweep(const SweepSpec& spec, const TuneOptions& options,
                                const SweepPointCallback& on_point);

// run_sweep in parts, for a driver that tunes the points elsewhere (sweep_mpi.h):
// The points in output order (model, dataset, GPU type, context outermost, GPU count
// innermost), not tuned yet, and one target answer per group when the spec has a target.
SweepResult sweep_outline(const SweepSpec& spec);
// Tunes one point in place (an error of the point's own, like no layout fitting its GPUs, is
// its `error`; a failing simulation is the Status).
Status tune_sweep_point(const SweepSpec& spec, const TuneOptions& options, SweepPoint* point);
// Fills the target answers from the tuned points.
void answer_target(const SweepSpec& spec, SweepResult* result);
// "qwen2.5-7b, lmsys-chat-1m, 32 × h100-sxm-80g, 262144 tokens".
std::string sweep_point_label(const SweepPoint& point);

std::string sweep_table(const SweepResult& result);
std::string sweep_csv(const SweepResult& result);
nlohmann::json sweep_json(const SweepResult& result);

}  // namespace cf

// Values shared by the two readers of the search space (the `tune:` section in
// search_space.cc, the command-line flags in space_flags.cc): names, conversions and the
// checks of an explicit axis value against a job. Internal to tuner/.
#pragma once

#include <fmt/format.h>

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "sim/plan/job.h"
#include "tuner/search_space.h"

namespace cf::space_detail {

inline const std::vector<std::string> kRecomputeNames = {"none", "selective", "full"};
inline const std::vector<std::string> kScheduleNames = {"1f1b", "gpipe", "interleaved"};
inline const std::vector<std::string> kPackerNames = {"balanced", "ffd", "cost"};
inline const std::vector<std::string> kSplitNames = {"even", "balanced"};

inline Recompute recompute_of(const std::string& name) {
  return name == "none"        ? Recompute::kNone
         : name == "selective" ? Recompute::kSelective
                               : Recompute::kFull;
}
inline ScheduleKind schedule_of(const std::string& name) {
  return name == "1f1b"    ? ScheduleKind::kOneFOneB
         : name == "gpipe" ? ScheduleKind::kGPipe
                           : ScheduleKind::kInterleaved;
}
inline Packer packer_of(const std::string& name) {
  return name == "balanced" ? Packer::kBalanced
         : name == "ffd"    ? Packer::kFirstFitDecreasing
                            : Packer::kCost;
}

inline SplitKind split_of(const std::string& name) {
  return name == "even" ? SplitKind::kEven : SplitKind::kBalanced;
}

template <typename T>
void sort_unique(std::vector<T>* values) {
  std::sort(values->begin(), values->end());
  values->erase(std::unique(values->begin(), values->end()), values->end());
}

// Why an explicit axis value cannot be used with this job, or nullopt.
inline std::optional<std::string> axis_value_problem(const std::string& axis, int64_t value,
                                                     const Job& job) {
  const ModelConfig& m = job.model;
  if (value < 1) return fmt::format("{} must be >= 1, got {}", axis, value);
  if (axis == "tp" && (m.heads % value != 0 || m.kv_heads % value != 0)) {
    return fmt::format("tp {} does not divide the {} attention heads and {} key/value heads of {}",
                       value, m.heads, m.kv_heads, m.name);
  }
  if (axis == "pp" && m.layers % value != 0) {
    return fmt::format("pp {} does not divide the {} layers of {}", value, m.layers, m.name);
  }
  if (axis == "cp" && !m.flash_attention && value > 1) {
    return fmt::format("cp {} needs FlashAttention-style attention; {} has attention: unfused",
                       value, m.name);
  }
  if ((axis == "tp" || axis == "pp" || axis == "dp" || axis == "cp") &&
      job.cluster.gpus % value != 0) {
    return fmt::format("{} {} does not divide the {} GPUs of the cluster", axis, value,
                       job.cluster.gpus);
  }
  if (axis == "chunk_sizes" && value > job.dataset.max_length) {
    return fmt::format("ChunkSize {} exceeds dataset.max_length = {}", value,
                       job.dataset.max_length);
  }
  return std::nullopt;
}

inline IntAxis int_axis(bool all, const std::vector<int64_t>& values) {
  IntAxis axis;
  axis.all = all;
  for (int64_t v : values) axis.values.push_back(static_cast<int>(v));
  return axis;
}

template <typename T>
std::vector<T> convert(const std::vector<std::string>& names, T (*of)(const std::string&)) {
  std::vector<T> out;
  for (const std::string& name : names) out.push_back(of(name));
  sort_unique(&out);
  return out;
}

// Applies the flags given (not nullopt) over `space`; errors name the flag.
Status apply_space_flags(const SpaceFlags& flags, const Job& job, SearchSpace* space);

}  // namespace cf::space_detail

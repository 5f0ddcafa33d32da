// A predicted trace (simulate --trace) against PyTorch profiles of the same plan, one file per
// rank: step time, busy time and bubble per rank, time by kernel class, and op by op where the
// training script marked the plan's ops (docs/PROFILES.md, "Comparing a prediction with a
// profile"). Not the comparison with chunkflow's own measured trace (compare.h), which the op
// level reuses, nor the reading of profiles (profile.h, profile_marks.h).
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "traces/compare.h"
#include "traces/profile.h"
#include "traces/profile_marks.h"
#include "traces/trace.h"

namespace cf {

// One rank's profile and its marks.
struct ProfiledRank {
  RankProfile profile;
  ProfileMarks marks;
};
// read_profiles, each profile with its marks beside it. Sorted by rank.
StatusOr<std::vector<ProfiledRank>> read_profiled_ranks(const std::vector<std::string>& paths,
                                                        const ProfileProgress& progress = nullptr);

// Whether `path` holds a PyTorch profile rather than chunkflow's own trace: gzip, a JSON list,
// or an object with "traceEvents" and no "chunkflow" header (what trace_from_chrome_json
// requires). Anything else, unreadable files included, is false: the trace reader then says
// what is wrong with it, as it always has.
bool is_profile_file(const std::string& path);

// The job's parallel sizes, for placing a GPU rank: Megatron-LM's default order tp-cp-dp-pp,
// rank = tp_rank + tp·(cp_rank + cp·(dp_rank + dp·stage)) (sim/cost_analytical.h first_gpu).
struct ProfileLayout {
  int tp = 1, cp = 1, dp = 1, pp = 1;
  // Where each size came from: "trace" (the predicted trace's layout_* metrics), "flag",
  // "trace's ranks" / "trace's stages" (the ops' grid, for an older trace), "world_size"
  // (the profiles' distributedInfo), "assumed" (1).
  std::string tp_from, cp_from, dp_from, pp_from;
  int world() const { return tp * cp * dp * pp; }
};
struct LayoutFlags {
  std::optional<int> tp = std::nullopt, cp = std::nullopt;
};

struct RankPlace {
  int dp_rank = 0, stage = 0, tp_rank = 0, cp_rank = 0;
};
// `rank` must be below layout.world().
RankPlace place_of_rank(const ProfileLayout& layout, int rank);

struct ProfileStepTime {
  std::string name;       // "ProfilerStep#4"
  double measured_s = 0;  // the slowest rank's duration of the step
  std::optional<double> rel_error;
};

// The predicted step against the profiles' steps.
struct ProfileStepComparison {
  double predicted_s = 0;
  std::string predicted_from;  // "metrics.step_time_s" | "makespan"
  double measured_s = 0;       // mean over `steps`, or the span below
  // "ProfilerStep ranges" | "span of the chunkflow marks" | "span of the profile's activity"
  std::string measured_from;
  std::optional<double> rel_error;
  std::vector<ProfileStepTime> steps;  // empty without ProfilerStep ranges
};

// One rank against its (dp_rank, stage)'s prediction. Busy per step: the GPU's busy time, or
// in a CPU-only profile the main thread's (ProfileStep); bubble = 1 − busy / step, summed over
// the rank's steps (over its activity span when it has none). Predicted: StageComparison's.
struct RankComparison {
  int rank = 0;
  std::string path;
  RankPlace place;
  int steps = 0;            // the steps averaged (0: the activity span)
  std::string busy_source;  // "gpu" | "cpu_main_thread"
  double predicted_busy_s = 0, measured_busy_s = 0;
  std::optional<double> busy_rel_error;
  double predicted_bubble = 0, measured_bubble = 0;
  double bubble_error = 0;  // predicted − measured, in shares of the step
};

struct ClassTimes {
  std::array<double, kKernelClassCount> predicted_s{};  // per step, by KernelClass
  std::array<double, kKernelClassCount> measured_s{};
};
struct RankClasses {
  int rank = 0;
  RankPlace place;
  std::string measured_source;  // "gpu" | "cpu_self_time"
  ClassTimes times;
};
// Time per step by kernel class. Predicted, per (dp_rank, stage): the compute ops' class split,
// each transfer's time as collective on both its stages, dp_reduce as collective, the optimizer
// as elementwise. Measured: ProfileStep::by_class_ns averaged over the rank's steps.
struct ClassComparison {
  bool predicted = false;      // whether the prediction has a class split
  std::string predicted_note;  // why not ("no predicted breakdown: ...")
  ClassTimes totals;           // summed over the ranks
  std::vector<RankClasses> ranks;
};

// Op by op, from the marks of one step of one rank per (dp_rank, stage): compare_traces of the
// prediction (its marked kinds on the marked stages) against a trace built from the marks.
struct MarkedRank {
  int rank = 0;
  RankPlace place;
  std::string step;         // the ProfilerStep compared, or "(whole profile)"
  int marks = 0;            // of that step
  std::string time_source;  // "gpu_user_annotation" | "user_annotation" | "legacy list events"
};
struct MarkedOpsComparison {
  bool available = false;
  std::string reason;  // why not
  std::vector<MarkedRank> ranks;
  std::vector<int> ranks_not_compared;     // marked ranks sharing a (dp_rank, stage) shown
  std::map<std::string, int64_t> unknown;  // "chunkflow:..." names of no op, over all files
  std::vector<std::string> not_marked;     // op kinds the prediction has and no file marks
  Trace predicted;                         // the prediction's part compared
  Trace measured;                          // the marks as a trace
  std::optional<CompareReport> report;
};

struct ProfileCompareReport {
  ProfileLayout layout;
  ProfileStepComparison step;
  std::vector<RankComparison> ranks;  // by rank
  ClassComparison classes;
  MarkedOpsComparison ops;
};

// InvalidInput when the predicted trace has no ops, when the layout cannot be settled (flags
// against the trace, a world_size the layout does not have) or a rank falls outside it, and
// when marks exist but match too few predicted ops (compare_traces' rule: another plan).
StatusOr<ProfileCompareReport> compare_with_profiles(const Trace& predicted,
                                                     const std::vector<ProfiledRank>& ranks,
                                                     const LayoutFlags& flags);

// The op level alone (compare_profile_ops.cc); `ranks` placed by `layout`.
StatusOr<MarkedOpsComparison> compare_marked_ops(const Trace& predicted,
                                                 const std::vector<ProfiledRank>& ranks,
                                                 const ProfileLayout& layout);

// Readable tables, and deterministic JSON (docs/PROFILES.md lists the keys).
std::string profile_compare_text(const ProfileCompareReport& report);
std::string profile_compare_json(const ProfileCompareReport& report);

}  // namespace cf

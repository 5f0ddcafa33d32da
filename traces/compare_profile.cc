// A prediction against PyTorch profiles (compare_profile.h): which file is a profile, the
// job's layout and each rank's place in it, and the step, rank and class levels. The op level
// is compare_profile_ops.cc, the output compare_profile_format.cc.
#include "traces/compare_profile.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <istream>
#include <nlohmann/json.hpp>
#include <set>

#include "core/check.h"
#include "core/limits.h"
#include "traces/profile_input.h"

namespace cf {
namespace {

using StageKey = std::pair<int, int>;  // (dp_rank, stage)

double profile_s(int64_t ns) { return static_cast<double>(ns) / 1e9; }

// Reads the top-level keys of a JSON document up to the first that settles what it is.
class KindScanner {
 public:
  enum class Kind { kUndecided, kProfile, kTrace };
  explicit KindScanner(ProfileInput* input) : input_(input) {}
  Kind kind() const { return kind_; }

  bool null() { return depth_ > 0; }
  bool boolean(bool) { return depth_ > 0; }
  bool number_integer(nlohmann::json::number_integer_t) { return token(); }
  bool number_unsigned(nlohmann::json::number_unsigned_t) { return token(); }
  bool number_float(nlohmann::json::number_float_t, const std::string&) { return token(); }
  bool string(std::string&) { return token(); }
  bool binary(nlohmann::json::binary_t&) { return false; }
  bool key(std::string& text) {
    input_->mark_token_end();
    if (depth_ != 1) return true;
    if (text == "chunkflow") kind_ = Kind::kTrace;
    if (text == "traceEvents") kind_ = Kind::kProfile;
    return kind_ == Kind::kUndecided;
  }
  bool start_object(std::size_t) {
    ++depth_;
    return depth_ <= 64;
  }
  bool end_object() {
    --depth_;
    return true;
  }
  bool start_array(std::size_t) {
    if (depth_ == 0) {
      kind_ = Kind::kProfile;  // the legacy event list
      return false;
    }
    return ++depth_ <= 64;
  }
  bool end_array() {
    --depth_;
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::json::exception&) {
    return false;
  }

 private:
  bool token() {
    input_->mark_token_end();
    return depth_ > 0;
  }
  ProfileInput* input_;
  int depth_ = 0;
  Kind kind_ = Kind::kUndecided;
};

// A layout size from the trace's metrics ("layout_tp", ...): a whole number ≥ 1, else none.
std::optional<int> layout_metric(const Trace& trace, const char* name) {
  auto it = trace.metrics.find(name);
  if (it == trace.metrics.end()) return std::nullopt;
  const double v = it->second;
  if (!(v >= 1 && v <= (1 << 20) && v == std::floor(v))) return std::nullopt;
  return static_cast<int>(v);
}

// tp or cp: the flag and the trace must agree when both say.
Status settle_size(const char* name, std::optional<int> flag, std::optional<int> traced, int* size,
                   std::string* from) {
  if (flag && traced && *flag != *traced) {
    return Status::InvalidInput(
        fmt::format("--{} {}: the predicted trace records {} = {} (its layout_{} metric)", name,
                    *flag, name, *traced, name));
  }
  if (traced) {
    *size = *traced;
    *from = "trace";
  } else if (flag) {
    *size = *flag;
    *from = "flag";
  }
  return Status::Ok();
}

// tp and cp that neither the trace nor a flag gave: from the profiles' world size when they
// record one (tp · cp = world / (dp · pp); cp = 1 when both are open), else 1.
void fill_open_sizes(const std::vector<ProfiledRank>& ranks, ProfileLayout* layout) {
  int world = 0;
  for (const ProfiledRank& r : ranks) world = std::max(world, r.profile.world_size);
  const int64_t dp_pp = int64_t{layout->dp} * layout->pp;
  const bool tp_open = layout->tp_from.empty(), cp_open = layout->cp_from.empty();
  if ((tp_open || cp_open) && world > 0 && world % dp_pp == 0) {
    const int per_stage = static_cast<int>(world / dp_pp);
    if (tp_open && cp_open) {
      layout->tp = per_stage, layout->tp_from = "world_size";
      layout->cp = 1, layout->cp_from = "assumed";
    } else if (tp_open && per_stage % layout->cp == 0) {
      layout->tp = per_stage / layout->cp, layout->tp_from = "world_size";
    } else if (cp_open && per_stage % layout->tp == 0) {
      layout->cp = per_stage / layout->tp, layout->cp_from = "world_size";
    }
  }
  if (layout->tp_from.empty()) layout->tp = 1, layout->tp_from = "assumed";
  if (layout->cp_from.empty()) layout->cp = 1, layout->cp_from = "assumed";
}

// Every profile's world size is the layout's, and its rank inside it.
Status check_ranks(const ProfileLayout& layout, const std::vector<ProfiledRank>& ranks) {
  for (const ProfiledRank& r : ranks) {
    const RankProfile& p = r.profile;
    if (p.world_size > 0 && p.world_size != layout.world()) {
      return Status::InvalidInput(fmt::format(
          "{}: distributedInfo.world_size is {}, but the layout tp {} × cp {} × dp {} × pp {} has "
          "{} GPUs (give --tp / --cp for a trace that does not record them)",
          p.path, p.world_size, layout.tp, layout.cp, layout.dp, layout.pp, layout.world()));
    }
    if (p.rank >= layout.world()) {
      return Status::InvalidInput(fmt::format(
          "{}: rank {} is past the layout tp {} × cp {} × dp {} × pp {} ({} GPUs){}", p.path,
          p.rank, layout.tp, layout.cp, layout.dp, layout.pp, layout.world(),
          p.rank_from_trace ? "" : " (the file's position: it records no distributedInfo.rank)"));
    }
  }
  return Status::Ok();
}

// dp and pp from the trace's grid (checked against its layout_* metrics), tp and cp from its
// metrics or the flags (which must agree), else fill_open_sizes.
StatusOr<ProfileLayout> resolve_layout(const Trace& predicted, const LayoutFlags& flags,
                                       const std::vector<ProfiledRank>& ranks) {
  ProfileLayout layout;
  std::set<int> dp_ranks, stages;
  for (const TraceOp& op : predicted.ops) {
    if (op.dp_rank < 0 || op.stage < 0 || op.dp_rank >= limits::kMaxGpus ||
        op.stage >= limits::kMaxGpus) {
      return Status::InvalidInput(
          fmt::format("the predicted trace has an op of DP rank {}, stage {}: outside [0, {})",
                      op.dp_rank, op.stage, limits::kMaxGpus));
    }
    dp_ranks.insert(op.dp_rank);
    stages.insert(op.stage);
  }
  const int grid_dp = *dp_ranks.rbegin() + 1, grid_pp = *stages.rbegin() + 1;
  const std::optional<int> traced_dp = layout_metric(predicted, "layout_dp");
  const std::optional<int> traced_pp = layout_metric(predicted, "layout_pp");
  if ((traced_dp && *traced_dp != grid_dp) || (traced_pp && *traced_pp != grid_pp)) {
    return Status::InvalidInput(fmt::format(
        "the predicted trace records dp = {}, pp = {} but its ops span {} DP rank(s) and {} "
        "stage(s)",
        traced_dp.value_or(grid_dp), traced_pp.value_or(grid_pp), grid_dp, grid_pp));
  }
  layout.dp = grid_dp;
  layout.pp = grid_pp;
  layout.dp_from = traced_dp ? "trace" : "trace's ranks";
  layout.pp_from = traced_pp ? "trace" : "trace's stages";
  CF_RETURN_IF_ERROR(settle_size("tp", flags.tp, layout_metric(predicted, "layout_tp"), &layout.tp,
                                 &layout.tp_from));
  CF_RETURN_IF_ERROR(settle_size("cp", flags.cp, layout_metric(predicted, "layout_cp"), &layout.cp,
                                 &layout.cp_from));
  fill_open_sizes(ranks, &layout);
  const int64_t gpus = int64_t{layout.tp} * layout.cp * layout.dp * layout.pp;
  if (gpus > limits::kMaxGpus) {
    return Status::InvalidInput(fmt::format(
        "the layout tp {} × cp {} × dp {} × pp {} has {} GPUs, "
        "more than {} ({})",
        layout.tp, layout.cp, layout.dp, layout.pp, gpus, limits::kMaxGpus, limits::kMaxGpusWhy));
  }
  CF_RETURN_IF_ERROR(check_ranks(layout, ranks));
  return layout;
}

// The time from the trace's first op start to its last op end.
int64_t makespan_ns(const Trace& trace) {
  int64_t first = trace.ops.front().start_ns, last = trace.ops.front().end_ns;
  for (const TraceOp& op : trace.ops) {
    first = std::min(first, op.start_ns);
    last = std::max(last, op.end_ns);
  }
  return last - first;
}

// The predicted step against the profiles' steps, or their spans (ProfileStepComparison).
ProfileStepComparison compare_step_time(const Trace& predicted,
                                        const std::vector<ProfiledRank>& ranks) {
  ProfileStepComparison out;
  if (auto it = predicted.metrics.find("step_time_s"); it != predicted.metrics.end()) {
    out.predicted_s = it->second;
    out.predicted_from = "metrics.step_time_s";
  } else {
    out.predicted_s = profile_s(makespan_ns(predicted));
    out.predicted_from = "makespan";
  }
  const bool all_steps = std::all_of(
      ranks.begin(), ranks.end(), [](const ProfiledRank& r) { return !r.profile.steps.empty(); });
  const bool all_marks = std::all_of(ranks.begin(), ranks.end(), [](const ProfiledRank& r) {
    return !r.marks.cpu.empty() || !r.marks.device.empty();
  });
  if (all_steps) {
    // Steps by their number ("ProfilerStep#12"), each the slowest rank's duration.
    std::map<std::pair<int64_t, std::string>, int64_t> slowest;
    for (const ProfiledRank& r : ranks) {
      for (const ProfileStep& step : r.profile.steps) {
        const std::string digits = step.name.substr(step.name.find('#') + 1);
        int64_t number = -1;
        if (!digits.empty() && digits.size() < 18 &&
            digits.find_first_not_of("0123456789") == std::string::npos) {
          number = std::stoll(digits);
        }
        int64_t& ns = slowest[{number, step.name}];
        ns = std::max(ns, step.duration_ns);
      }
    }
    double sum_s = 0;
    for (const auto& [key, ns] : slowest) {
      out.steps.push_back(
          {key.second, profile_s(ns), relative_error(out.predicted_s, profile_s(ns))});
      sum_s += profile_s(ns);
    }
    out.measured_s = sum_s / static_cast<double>(out.steps.size());
    out.measured_from = "ProfilerStep ranges";
  } else {
    // No steps: each rank's span of its marks (or of all its activity), the longest.
    int64_t longest = 0;
    for (const ProfiledRank& r : ranks) {
      int64_t from = r.profile.activity_start_ns, to = r.profile.activity_end_ns;
      if (all_marks) {
        const auto& marks = r.marks.cpu.empty() ? r.marks.device : r.marks.cpu;
        from = marks.front().start_ns, to = marks.front().end_ns;
        for (const ProfileMark& m : marks) to = std::max(to, m.end_ns);
      }
      longest = std::max(longest, to - from);
    }
    out.measured_s = profile_s(longest);
    out.measured_from =
        all_marks ? "span of the chunkflow marks" : "span of the profile's activity";
  }
  out.rel_error = relative_error(out.predicted_s, out.measured_s);
  return out;
}

RankComparison compare_rank(const ProfiledRank& r, const ProfileLayout& layout,
                            const std::map<StageKey, int64_t>& predicted_busy,
                            int64_t predicted_makespan_ns) {
  const RankProfile& p = r.profile;
  RankComparison row;
  row.rank = p.rank;
  row.path = p.path;
  row.place = place_of_rank(layout, p.rank);
  const bool gpu = p.has_device_activity();
  row.busy_source = gpu ? "gpu" : "cpu_main_thread";
  int64_t busy_ns = 0, window_ns = 0;
  for (const ProfileStep& step : p.steps) {
    busy_ns += gpu ? step.gpu_busy_ns : step.cpu_busy_ns;
    window_ns += step.duration_ns;
  }
  row.steps = static_cast<int>(p.steps.size());
  if (p.steps.empty()) {
    busy_ns = gpu ? p.gpu_busy_ns : p.cpu_busy_ns;
    window_ns = p.activity_end_ns - p.activity_start_ns;
  }
  row.measured_busy_s = profile_s(busy_ns) / std::max(1, row.steps);
  row.measured_bubble =
      window_ns > 0 ? 1.0 - static_cast<double>(busy_ns) / static_cast<double>(window_ns) : 0.0;
  const auto it = predicted_busy.find({row.place.dp_rank, row.place.stage});
  const int64_t pred_ns = it == predicted_busy.end() ? 0 : it->second;
  row.predicted_busy_s = profile_s(pred_ns);
  row.predicted_bubble =
      predicted_makespan_ns > 0
          ? 1.0 - static_cast<double>(pred_ns) / static_cast<double>(predicted_makespan_ns)
          : 0.0;
  row.busy_rel_error = relative_error(row.predicted_busy_s, row.measured_busy_s);
  row.bubble_error = row.predicted_bubble - row.measured_bubble;
  return row;
}

// The prediction by class per (dp_rank, stage); empty when a compute op has no split.
std::optional<std::map<StageKey, ClassNs>> predicted_classes(const Trace& predicted) {
  std::map<StageKey, ClassNs> out;
  auto add = [&](int dp_rank, int stage, KernelClass kind, int64_t ns) {
    out[{dp_rank, stage}][static_cast<int>(kind)] += ns;
  };
  for (const TraceOp& op : predicted.ops) {
    switch (op.kind) {
      case OpKind::kCompute:
        if (!op.class_ns) return std::nullopt;
        for (KernelClass kind : kAllKernelClasses) {
          add(op.dp_rank, op.stage, kind, (*op.class_ns)[static_cast<int>(kind)]);
        }
        break;
      case OpKind::kSend:  // NCCL runs a send kernel and a recv kernel for the transfer
        add(op.dp_rank, op.stage, KernelClass::kCollective, op.duration_ns());
        if (op.peer_stage >= 0) {
          add(op.dp_rank, op.peer_stage, KernelClass::kCollective, op.duration_ns());
        }
        break;
      case OpKind::kRecv:  // the receiver's wait: its kernel is the transfer above
        break;
      case OpKind::kDpReduce:
        add(op.dp_rank, op.stage, KernelClass::kCollective, op.duration_ns());
        break;
      case OpKind::kOptimizer:
        add(op.dp_rank, op.stage, KernelClass::kElementwise, op.duration_ns());
        break;
    }
  }
  return out;
}

ClassComparison compare_classes(const Trace& predicted, const std::vector<ProfiledRank>& ranks,
                                const ProfileLayout& layout) {
  ClassComparison out;
  const auto by_stage = predicted_classes(predicted);
  out.predicted = by_stage.has_value();
  if (!out.predicted) {
    out.predicted_note =
        "no predicted breakdown: the predicted ops carry no class split (the unit and "
        "calibrated cost models price an op as one number; traces written before the split "
        "have none)";
  }
  for (const ProfiledRank& r : ranks) {
    const RankProfile& p = r.profile;
    RankClasses row;
    row.rank = p.rank;
    row.place = place_of_rank(layout, p.rank);
    row.measured_source = p.has_device_activity() ? "gpu" : "cpu_self_time";
    std::array<int64_t, kKernelClassCount> measured_ns{};
    for (const ProfileStep& step : p.steps) {
      for (int c = 0; c < kKernelClassCount; ++c) measured_ns[c] += step.by_class_ns[c];
    }
    if (p.steps.empty()) measured_ns = p.by_class_ns();
    const double steps = static_cast<double>(std::max<std::size_t>(1, p.steps.size()));
    for (int c = 0; c < kKernelClassCount; ++c) {
      row.times.measured_s[c] = profile_s(measured_ns[c]) / steps;
      if (by_stage) {
        auto it = by_stage->find({row.place.dp_rank, row.place.stage});
        row.times.predicted_s[c] = it == by_stage->end() ? 0 : profile_s(it->second[c]);
      }
      out.totals.measured_s[c] += row.times.measured_s[c];
      out.totals.predicted_s[c] += row.times.predicted_s[c];
    }
    out.ranks.push_back(row);
  }
  return out;
}

}  // namespace

bool is_profile_file(const std::string& path) {
  StatusOr<std::unique_ptr<ProfileInput>> input = ProfileInput::open(path, nullptr);
  if (!input.ok()) return false;
  KindScanner scanner(input->get());
  std::istream stream(input->get());
  nlohmann::json::sax_parse(stream, &scanner);
  return (*input)->gzip() || scanner.kind() == KindScanner::Kind::kProfile;
}

StatusOr<std::vector<ProfiledRank>> read_profiled_ranks(const std::vector<std::string>& paths,
                                                        const ProfileProgress& progress) {
  CF_ASSIGN_OR_RETURN(std::vector<RankProfile> profiles, read_profiles(paths, progress));
  std::vector<ProfiledRank> out;
  for (RankProfile& profile : profiles) {
    ProfileMarks marks = std::move(profile.marks);
    out.push_back({std::move(profile), std::move(marks)});
  }
  return out;
}

RankPlace place_of_rank(const ProfileLayout& layout, int rank) {
  CF_CHECK(rank >= 0 && rank < layout.world()) << "rank " << rank << " of " << layout.world();
  const int tp_cp = layout.tp * layout.cp;
  return {.dp_rank = rank / tp_cp % layout.dp,
          .stage = rank / (tp_cp * layout.dp),
          .tp_rank = rank % layout.tp,
          .cp_rank = rank / layout.tp % layout.cp};
}

StatusOr<ProfileCompareReport> compare_with_profiles(const Trace& predicted,
                                                     const std::vector<ProfiledRank>& ranks,
                                                     const LayoutFlags& flags) {
  if (predicted.ops.empty()) return Status::InvalidInput("the predicted trace has no ops");
  if (ranks.empty()) return Status::InvalidInput("no profile to compare with");
  ProfileCompareReport report;
  CF_ASSIGN_OR_RETURN(report.layout, resolve_layout(predicted, flags, ranks));
  report.step = compare_step_time(predicted, ranks);
  const auto predicted_busy = busy_ns_by_stage(predicted);
  for (const ProfiledRank& r : ranks) {
    report.ranks.push_back(compare_rank(r, report.layout, predicted_busy, makespan_ns(predicted)));
  }
  report.classes = compare_classes(predicted, ranks, report.layout);
  CF_ASSIGN_OR_RETURN(report.ops, compare_marked_ops(predicted, ranks, report.layout));
  return report;
}

}  // namespace cf

// The command-line side of the search space: comma-separated lists and "all" for each
// flag of `chunkflow tune`, checked against the job like the `tune:` section.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <charconv>
#include <tuple>

#include "tuner/space_values.h"

namespace cf::space_detail {
namespace {

std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> items;
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    if (comma == std::string::npos) comma = text.size();
    std::string item = text.substr(start, comma - start);
    item.erase(0, item.find_first_not_of(' '));
    item.erase(item.find_last_not_of(' ') + 1);
    items.push_back(item);
    start = comma + 1;
  }
  return items;
}

Status flag_ints(const std::string& flag, const std::string& text, const std::string& axis,
                 const Job& job, bool allow_all, bool* all, std::vector<int64_t>* values) {
  *all = false;
  values->clear();
  if (text == "all") {
    if (!allow_all) return Status::InvalidInput(fmt::format("{}: \"all\" is not accepted", flag));
    *all = true;
    return Status::Ok();
  }
  for (const std::string& item : split_list(text)) {
    int64_t v = 0;
    auto [end, ec] = std::from_chars(item.data(), item.data() + item.size(), v);
    if (item.empty() || ec != std::errc() || end != item.data() + item.size()) {
      return Status::InvalidInput(
          fmt::format("{}: expected integers separated by commas{}, got "
                      "\"{}\"",
                      flag, allow_all ? " or all" : "", text));
    }
    if (auto problem = axis_value_problem(axis, v, job)) {
      return Status::InvalidInput(fmt::format("{}: {}", flag, *problem));
    }
    values->push_back(v);
  }
  sort_unique(values);
  return Status::Ok();
}

Status flag_names(const std::string& flag, const std::string& text,
                  const std::vector<std::string>& choices, std::vector<std::string>* out) {
  if (text == "all") {
    *out = choices;
    return Status::Ok();
  }
  out->clear();
  for (const std::string& item : split_list(text)) {
    if (std::find(choices.begin(), choices.end(), item) == choices.end()) {
      return Status::InvalidInput(fmt::format("{}: unknown value \"{}\"; expected one of {} or all",
                                              flag, item, fmt::join(choices, ", ")));
    }
    out->push_back(item);
  }
  return Status::Ok();
}

// A list flag given with nothing in it ("", " "): an empty range, not "left out".
Status check_not_empty(const std::string& flag, const std::string& text, bool allow_all) {
  if (text.find_first_not_of(' ') != std::string::npos) return Status::Ok();
  return Status::InvalidInput(fmt::format("{}: empty list; give values separated by commas{}", flag,
                                          allow_all ? " or all" : ""));
}

// The list flags, each checked for emptiness before it is read.
Status apply_list_flags(const SpaceFlags& flags, const Job& job, SearchSpace* space) {
  bool all = false;
  std::vector<int64_t> ints;
  std::vector<std::string> names;
  for (auto [flag, text, allow_all] :
       {std::tuple{"--chunk-sizes", &flags.chunk_sizes, false}, std::tuple{"--k", &flags.k, false},
        std::tuple{"--tp", &flags.tp, true}, std::tuple{"--pp", &flags.pp, true},
        std::tuple{"--dp", &flags.dp, true}, std::tuple{"--cp", &flags.cp, true},
        std::tuple{"--recompute", &flags.recompute, true},
        std::tuple{"--schedule", &flags.schedule, true},
        std::tuple{"--packer", &flags.packer, true}, std::tuple{"--split", &flags.split, true}}) {
    if (*text) CF_RETURN_IF_ERROR(check_not_empty(flag, **text, allow_all));
  }
  if (flags.chunk_sizes) {
    CF_RETURN_IF_ERROR(
        flag_ints("--chunk-sizes", *flags.chunk_sizes, "chunk_sizes", job, false, &all, &ints));
    space->chunk_sizes = ints;
  }
  if (flags.k && flags.k_max) return Status::InvalidInput("--k and --k-max: give one of them");
  if (flags.k) {
    CF_RETURN_IF_ERROR(flag_ints("--k", *flags.k, "k", job, false, &all, &ints));
    space->ks.assign(ints.begin(), ints.end());
  }
  if (flags.parallel) {
    space->tp = IntAxis{true, {}};
    space->pp = IntAxis{true, {}};
    space->recomputes = convert(kRecomputeNames, recompute_of);
    space->cps = context_parallel_sizes(job);
  }
  if (flags.cp) {
    CF_RETURN_IF_ERROR(flag_ints("--cp", *flags.cp, "cp", job, true, &all, &ints));
    space->cps = all ? context_parallel_sizes(job) : std::vector<int>(ints.begin(), ints.end());
  }
  for (auto [flag, text, axis, target] : {std::tuple{"--tp", &flags.tp, "tp", &space->tp},
                                          std::tuple{"--pp", &flags.pp, "pp", &space->pp},
                                          std::tuple{"--dp", &flags.dp, "dp", &space->dp}}) {
    if (!*text) continue;
    CF_RETURN_IF_ERROR(flag_ints(flag, **text, axis, job, true, &all, &ints));
    *target = int_axis(all, ints);
  }
  if (flags.recompute) {
    CF_RETURN_IF_ERROR(flag_names("--recompute", *flags.recompute, kRecomputeNames, &names));
    space->recomputes = convert(names, recompute_of);
  }
  if (flags.schedule) {
    CF_RETURN_IF_ERROR(flag_names("--schedule", *flags.schedule, kScheduleNames, &names));
    space->schedules = convert(names, schedule_of);
  }
  if (flags.packer) {
    CF_RETURN_IF_ERROR(flag_names("--packer", *flags.packer, kPackerNames, &names));
    space->packers = convert(names, packer_of);
  }
  if (flags.split) {
    CF_RETURN_IF_ERROR(flag_names("--split", *flags.split, kSplitNames, &names));
    space->splits = convert(names, split_of);
  }
  return Status::Ok();
}

}  // namespace

Status apply_space_flags(const SpaceFlags& flags, const Job& job, SearchSpace* space) {
  CF_RETURN_IF_ERROR(apply_list_flags(flags, job, space));
  if (flags.k_max) {
    if (*flags.k_max < 1 || *flags.k_max > 4096) {
      return Status::InvalidInput(
          fmt::format("--k-max: must be in [1, 4096], got {}", *flags.k_max));
    }
    space->ks.clear();
    for (int k = 1; k <= *flags.k_max; ++k) space->ks.push_back(k);
  }
  if (flags.objective) {
    if (*flags.objective != "step_time" && *flags.objective != "tokens_per_s") {
      return Status::InvalidInput(fmt::format(
          "--objective: expected step_time or tokens_per_s, got \"{}\"", *flags.objective));
    }
    space->objective =
        *flags.objective == "step_time" ? Objective::kStepTime : Objective::kTokensPerS;
  }
  if (flags.memory_margin) {
    // Written so that NaN fails too (every comparison with NaN is false).
    if (!(*flags.memory_margin >= 0 && *flags.memory_margin <= 0.9)) {
      return Status::InvalidInput(
          fmt::format("--margin: must be in [0, 0.9], got {}", *flags.memory_margin));
    }
    space->memory_margin = *flags.memory_margin;
  }
  if (flags.top) {
    if (*flags.top < 1 || *flags.top > 1000) {
      return Status::InvalidInput(fmt::format("--top: must be in [1, 1000], got {}", *flags.top));
    }
    space->top = *flags.top;
  }
  return Status::Ok();
}

}  // namespace cf::space_detail

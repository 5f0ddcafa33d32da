// The search space: defaults from the job, the strict `tune:` reader, flag overrides, the
// ChunkSize grid and the parallel layouts a cluster admits.
#include "tuner/search_space.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <charconv>
#include <optional>

#include "core/yaml_reader.h"
#include "tuner/space_values.h"

namespace cf {
namespace {

using namespace space_detail;  // NOLINT: the value helpers shared with the flag reader

// A parsed value list before it is checked: strings, and whether "all" was given.
struct RawList {
  bool all = false;
  std::vector<std::string> items;
};

// --- YAML side ----------------------------------------------------------------------------

// `key: VALUE`, `key: [V, ...]` or `key: all` (when `allow_all`), as strings with nodes.
Status read_raw_list(YamlMap& map, const std::string& key, bool allow_all, RawList* out,
                     std::vector<YAML::Node>* nodes) {
  YAML::Node node = map.raw(key);
  const std::string path = map.key_path(key);
  if (node.IsScalar() && node.Scalar() == "all") {
    if (!allow_all) return yaml_error(map.file(), node, path, "\"all\" is not accepted here");
    out->all = true;
    return Status::Ok();
  }
  if (node.IsScalar()) {
    out->items.push_back(node.Scalar());
    nodes->push_back(node);
  } else if (node.IsSequence() && node.size() > 0) {
    for (const YAML::Node& item : node) {
      if (!item.IsScalar()) return yaml_error(map.file(), item, path, "expected a scalar");
      out->items.push_back(item.Scalar());
      nodes->push_back(item);
    }
  } else {
    return yaml_error(map.file(), node, path,
                      allow_all ? "expected a value, a non-empty list or \"all\""
                                : "expected a value or a non-empty list");
  }
  return Status::Ok();
}

Status read_ints(YamlMap& map, const std::string& key, const std::string& axis, const Job& job,
                 bool allow_all, bool* all, std::vector<int64_t>* values) {
  RawList raw;
  std::vector<YAML::Node> nodes;
  CF_RETURN_IF_ERROR(read_raw_list(map, key, allow_all, &raw, &nodes));
  *all = raw.all;
  values->clear();
  for (size_t i = 0; i < raw.items.size(); ++i) {
    int64_t v = 0;
    const std::string& s = raw.items[i];
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || end != s.data() + s.size()) {
      return yaml_error(map.file(), nodes[i], map.key_path(key),
                        fmt::format("expected an integer, got \"{}\"", s));
    }
    if (auto problem = axis_value_problem(axis, v, job)) {
      return yaml_error(map.file(), nodes[i], map.key_path(key), *problem);
    }
    values->push_back(v);
  }
  sort_unique(values);
  return Status::Ok();
}

Status read_names(YamlMap& map, const std::string& key, const std::vector<std::string>& choices,
                  std::vector<std::string>* out) {
  RawList raw;
  std::vector<YAML::Node> nodes;
  CF_RETURN_IF_ERROR(read_raw_list(map, key, true, &raw, &nodes));
  if (raw.all) {
    *out = choices;
    return Status::Ok();
  }
  out->clear();
  for (size_t i = 0; i < raw.items.size(); ++i) {
    if (std::find(choices.begin(), choices.end(), raw.items[i]) == choices.end()) {
      return yaml_error(map.file(), nodes[i], map.key_path(key),
                        fmt::format("unknown value \"{}\"; expected one of {} or all", raw.items[i],
                                    fmt::join(choices, ", ")));
    }
    out->push_back(raw.items[i]);
  }
  return Status::Ok();
}

Status apply_yaml(const YAML::Node& node, const std::string& file, const std::string& key_path,
                  const Job& job, SearchSpace* space) {
  CF_ASSIGN_OR_RETURN(YamlMap map, YamlMap::open(node, file, key_path));
  bool all = false;
  std::vector<int64_t> ints;
  if (map.has("chunk_sizes") && (map.has("chunk_size_min") || map.has("chunk_size_max"))) {
    return map.error("chunk_sizes", "give either chunk_sizes or chunk_size_min/chunk_size_max");
  }
  if (map.has("chunk_sizes")) {
    CF_RETURN_IF_ERROR(read_ints(map, "chunk_sizes", "chunk_sizes", job, false, &all, &ints));
    space->chunk_sizes = ints;
  }
  CF_RETURN_IF_ERROR(map.get("chunk_size_min", &space->chunk_size_min));
  CF_RETURN_IF_ERROR(map.get("chunk_size_max", &space->chunk_size_max));
  if (map.has("chunk_size_min")) {
    CF_RETURN_IF_ERROR(map.check_range("chunk_size_min", double(space->chunk_size_min), 1,
                                       double(job.dataset.max_length)));
  }
  if (map.has("chunk_size_max") && space->chunk_size_max < space->chunk_size_min) {
    return map.error("chunk_size_max", fmt::format("{} is below chunk_size_min = {}",
                                                   space->chunk_size_max, space->chunk_size_min));
  }
  if (map.has("k") && map.has("k_max")) return map.error("k", "give either k or k_max");
  if (map.has("k")) {
    CF_RETURN_IF_ERROR(read_ints(map, "k", "k", job, false, &all, &ints));
    space->ks.assign(ints.begin(), ints.end());
  }
  if (map.has("k_max")) {
    int k_max = 0;
    CF_RETURN_IF_ERROR(map.get("k_max", &k_max));
    CF_RETURN_IF_ERROR(map.check_range("k_max", k_max, 1, 4096));
    space->ks.clear();
    for (int k = 1; k <= k_max; ++k) space->ks.push_back(k);
  }
  for (auto [key, axis] :
       {std::pair{"tp", &space->tp}, std::pair{"pp", &space->pp}, std::pair{"dp", &space->dp}}) {
    if (!map.has(key)) continue;
    CF_RETURN_IF_ERROR(read_ints(map, key, key, job, true, &all, &ints));
    *axis = int_axis(all, ints);
  }
  if (map.has("cp")) {
    CF_RETURN_IF_ERROR(read_ints(map, "cp", "cp", job, true, &all, &ints));
    space->cps = all ? context_parallel_sizes(job) : std::vector<int>(ints.begin(), ints.end());
  }
  std::vector<std::string> names;
  if (map.has("recompute")) {
    CF_RETURN_IF_ERROR(read_names(map, "recompute", kRecomputeNames, &names));
    space->recomputes = convert(names, recompute_of);
  }
  if (map.has("schedule")) {
    CF_RETURN_IF_ERROR(read_names(map, "schedule", kScheduleNames, &names));
    space->schedules = convert(names, schedule_of);
  }
  if (map.has("packer")) {
    CF_RETURN_IF_ERROR(read_names(map, "packer", kPackerNames, &names));
    space->packers = convert(names, packer_of);
  }
  if (map.has("split")) {
    CF_RETURN_IF_ERROR(read_names(map, "split", kSplitNames, &names));
    space->splits = convert(names, split_of);
  }
  CF_RETURN_IF_ERROR(map.get("vpp", &space->vpp));
  if (map.has("vpp")) CF_RETURN_IF_ERROR(map.check_range("vpp", space->vpp, 2, 64));
  CF_RETURN_IF_ERROR(map.get("memory_margin", &space->memory_margin));
  if (map.has("memory_margin")) {
    CF_RETURN_IF_ERROR(map.check_range("memory_margin", space->memory_margin, 0, 0.9));
  }
  std::string objective = to_string(space->objective);
  CF_RETURN_IF_ERROR(map.get_choice("objective", {"step_time", "tokens_per_s"}, &objective));
  space->objective = objective == "step_time" ? Objective::kStepTime : Objective::kTokensPerS;
  CF_RETURN_IF_ERROR(map.get("top", &space->top));
  if (map.has("top")) CF_RETURN_IF_ERROR(map.check_range("top", space->top, 1, 1000));
  return map.finish();
}

SearchSpace default_space(const Job& job) {
  SearchSpace space;
  for (int k = 1; k <= 64; ++k) space.ks.push_back(k);
  space.tp.values = {job.parallel.tp};
  space.pp.values = {job.parallel.pp};
  space.recomputes = {job.parallel.recompute};
  space.schedules = {job.parallel.schedule};
  if (job.parallel.schedule == ScheduleKind::kInterleaved) space.vpp = job.parallel.vpp;
  space.packers = {job.strategy.packer};
  return space;
}

std::vector<int> divisors(int64_t n) {
  std::vector<int> out;
  for (int64_t d = 1; d <= n; ++d) {
    if (n % d == 0) out.push_back(static_cast<int>(d));
  }
  return out;
}

// Why the space has nothing to search for this job, or "".
std::string emptiness(const SearchSpace& space, const Job& job) {
  if (resolve_chunk_sizes(space, job).empty()) {
    if (!space.chunk_sizes.empty()) {
      return fmt::format(
          "no ChunkSize to try: every one of chunk_sizes (tune.chunk_sizes or --chunk-sizes) "
          "exceeds dataset.max_length = {}",
          job.dataset.max_length);
    }
    const bool capped = space.chunk_size_max > 0 && space.chunk_size_max < job.dataset.max_length;
    return fmt::format(
        "no ChunkSize to try in [{}, {}] (tune.chunk_size_min = {}{}, {} = {}): the grid of "
        "powers of 2 and 1.5× them has none there; set tune.chunk_size_min / chunk_size_max or "
        "give --chunk-sizes",
        space.chunk_size_min, capped ? space.chunk_size_max : job.dataset.max_length,
        space.chunk_size_min,
        space.chunk_size_min == SearchSpace{}.chunk_size_min ? " by default" : "",
        capped ? "tune.chunk_size_max" : "dataset.max_length",
        capped ? space.chunk_size_max : job.dataset.max_length);
  }
  if (resolve_layouts(space, job).empty()) {
    auto axis = [](const IntAxis& a) {
      return a.all ? std::string("all") : fmt::format("[{}]", fmt::join(a.values, ", "));
    };
    return fmt::format(
        "no layout with tp in {}, pp in {}, dp in {} fills the {} GPUs of the "
        "cluster (tp·pp·dp = GPUs, pp·vpp dividing the {} layers)",
        axis(space.tp), axis(space.pp), axis(space.dp), job.cluster.gpus, job.model.layers);
  }
  return "";
}

}  // namespace

std::string to_string(Objective objective) {
  return objective == Objective::kStepTime ? "step_time" : "tokens_per_s";
}

std::string to_string(SplitKind kind) { return kind == SplitKind::kEven ? "even" : "balanced"; }

std::string describe(const ParallelLayout& l) {
  std::string out = fmt::format("tp{}{} pp{} dp{}{} {} {}", l.tp,
                                l.cp > 1 ? fmt::format(" cp{}", l.cp) : std::string(), l.pp, l.dp,
                                l.sp ? " sp" : "", to_string(l.recompute), to_string(l.schedule));
  if (l.schedule == ScheduleKind::kInterleaved) out += fmt::format(" vpp{}", l.vpp);
  if (!l.layers_per_stage.empty()) {
    out += fmt::format(" layers {}", fmt::join(l.layers_per_stage, ","));
  }
  return out;
}

StatusOr<SearchSpace> read_search_space_node(const YAML::Node& tune, const std::string& file,
                                             const std::string& key_path, const Job& job) {
  SearchSpace space = default_space(job);
  if (tune.IsDefined() && !tune.IsNull()) {
    CF_RETURN_IF_ERROR(apply_yaml(tune, file, key_path, job, &space));
    if (std::string why = emptiness(space, job); !why.empty()) {
      return yaml_error(file, tune, key_path, why);
    }
  }
  return space;
}

StatusOr<SearchSpace> read_search_space(const Job& job, const SpaceFlags& flags) {
  CF_ASSIGN_OR_RETURN(SearchSpace space, read_search_space_node(job.tune, job.origin, "tune", job));
  CF_RETURN_IF_ERROR(apply_space_flags(flags, job, &space));
  if (std::string why = emptiness(space, job); !why.empty()) {
    return Status::InvalidInput(fmt::format("{}: the search space is empty: {}", job.origin, why));
  }
  return space;
}

std::vector<int64_t> chunk_size_grid(int64_t lo, int64_t hi) {
  std::vector<int64_t> out;
  for (int64_t p = 1; p <= hi && p > 0; p *= 2) {
    if (p >= lo) out.push_back(p);
    const int64_t mid = p + p / 2;  // 1.5·p (p = 1 has no integer midpoint)
    if (p > 1 && mid >= lo && mid <= hi) out.push_back(mid);
  }
  return out;
}

std::vector<int64_t> resolve_chunk_sizes(const SearchSpace& space, const Job& job) {
  const int64_t max_length = job.dataset.max_length;
  if (!space.chunk_sizes.empty()) {
    std::vector<int64_t> out;
    for (int64_t c : space.chunk_sizes) {
      if (c <= max_length) out.push_back(c);
    }
    return out;
  }
  const int64_t hi =
      space.chunk_size_max > 0 ? std::min(space.chunk_size_max, max_length) : max_length;
  return chunk_size_grid(space.chunk_size_min, hi);
}

std::vector<ParallelLayout> resolve_layouts(const SearchSpace& space, const Job& job) {
  const ModelConfig& m = job.model;
  const int gpus = job.cluster.gpus;
  std::vector<int> tps = space.tp.values, pps = space.pp.values;
  if (space.tp.all) {
    tps.clear();
    for (int d : divisors(gpus)) {
      if (d <= job.cluster.gpus_per_node && m.heads % d == 0 && m.kv_heads % d == 0)
        tps.push_back(d);
    }
  }
  if (space.pp.all) pps = divisors(m.layers);
  const std::vector<int> cps = space.cps.empty() ? std::vector<int>{job.parallel.cp} : space.cps;
  std::vector<ParallelLayout> out;
  for (int tp : tps) {
    if (m.heads % tp != 0 || m.kv_heads % tp != 0) continue;
    for (int cp : cps)
      for (int pp : pps) {
        if (gpus % (int64_t(tp) * cp * pp) != 0 || m.layers % pp != 0) continue;
        const int dp = gpus / (tp * cp * pp);
        if (!space.dp.all && std::find(space.dp.values.begin(), space.dp.values.end(), dp) ==
                                 space.dp.values.end()) {
          continue;
        }
        for (Recompute recompute : space.recomputes) {
          for (ScheduleKind schedule : space.schedules) {
            ParallelLayout l;
            l.tp = tp;
            l.pp = pp;
            l.dp = dp;
            l.cp = cp;
            l.sp = tp > 1 && (job.parallel.tp == 1 || job.parallel.sp);
            l.recompute = recompute;
            l.schedule = schedule;
            l.vpp = schedule == ScheduleKind::kInterleaved ? space.vpp : 1;
            if (schedule == ScheduleKind::kInterleaved && pp == 1) continue;
            if (m.layers % (int64_t(pp) * l.vpp) != 0) continue;
            if (pp == job.parallel.pp && l.vpp == 1) {
              l.layers_per_stage = job.parallel.layers_per_stage;
            }
            out.push_back(l);
          }
        }
      }
  }
  return out;
}

std::vector<ParallelLayout> all_layouts(const Job& job) {
  SearchSpace space;
  space.tp = IntAxis{true, {}};
  space.pp = IntAxis{true, {}};
  space.recomputes = {Recompute::kNone, Recompute::kSelective, Recompute::kFull};
  space.schedules = {ScheduleKind::kOneFOneB};
  // Context parallelism as long-context baselines use it, each layout keeping the job's cp_comm.
  space.cps = context_parallel_sizes(job);
  return resolve_layouts(space, job);
}

std::vector<int> context_parallel_sizes(const Job& job) {
  std::vector<int> out;
  for (int cp : {1, 2, 4, 8}) {
    if (job.cluster.gpus % cp == 0 && (cp == 1 || job.model.flash_attention)) out.push_back(cp);
  }
  return out;
}

void apply_layout(const ParallelLayout& layout, const StrategyConfig& strategy, Job* job) {
  job->parallel.tp = layout.tp;
  job->parallel.layers_per_stage = layout.layers_per_stage;
  job->parallel.pp = layout.pp;
  job->parallel.dp = layout.dp;
  job->parallel.cp = layout.cp;
  job->parallel.vpp = layout.vpp;
  job->parallel.sp = layout.sp;
  job->parallel.recompute = layout.recompute;
  job->parallel.schedule = layout.schedule;
  job->strategy = strategy;
}

Job job_with(const Job& base, const ParallelLayout& layout, const StrategyConfig& strategy) {
  Job job = base;
  apply_layout(layout, strategy, &job);
  return job;
}

}  // namespace cf

// The job file loader (DESIGN.md §6): strict YAML into typed structs, then the consistency
// rules across sections. Every error names file:line:col and the key path (exit code 2).
#include "sim/plan/job.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <sstream>

#include "core/limits.h"
#include "core/resources.h"
#include "core/yaml_reader.h"
#include "sim/plan/layer_split.h"

namespace cf {
namespace {

// A consistency rule broken: the key it is reported at and why.
struct Violation {
  std::string key_path;
  std::string message;
};

// Context parallelism: the ring (p2p) splits each sequence or chunk into 2·cp load-balanced
// pieces, the others into cp; a chunk must split evenly (Megatron-Core pads a sequence to a
// multiple, which a chunk of ChunkSize tokens need not). Ulysses (a2a) scatters the heads of a
// TP rank over the cp ranks: they must divide by cp; K/V heads fewer than cp are replicated
// to cp (as Transformer Engine repeats them before the all-to-all).
std::optional<Violation> cp_violation(const Job& job) {
  const ParallelConfig& p = job.parallel;
  if (p.cp == 1) return std::nullopt;
  const int pieces = p.cp_comm == CpComm::kP2p ? 2 * p.cp : p.cp;
  if (job.strategy.kind == StrategyKind::kChunkFlow && job.strategy.chunk_size % pieces != 0) {
    return Violation{"strategy.chunk_size",
                     fmt::format("chunk_size = {} does not split into the {} pieces of cp = {} "
                                 "with cp_comm: {}",
                                 job.strategy.chunk_size, pieces, p.cp, to_string(p.cp_comm))};
  }
  if (!job.model.flash_attention) {
    // Megatron-Core's context parallelism lives in Transformer Engine's fused attention.
    return Violation{"parallel.cp",
                     fmt::format("cp = {} needs FlashAttention-style attention, and model {} has "
                                 "attention: unfused",
                                 p.cp, job.model.name)};
  }
  // Ulysses scatters query heads over the cp ranks; K/V heads fewer than cp are replicated
  // so that each rank receives the K/V head its query heads read (DeepSpeed-Ulysses).
  const int64_t heads_local = job.model.heads / p.tp;
  if (p.cp_comm == CpComm::kA2a && heads_local % p.cp != 0) {
    return Violation{"parallel.cp",
                     fmt::format("cp = {} does not divide the {} attention heads of a TP rank "
                                 "(cp_comm: a2a scatters heads)",
                                 p.cp, heads_local)};
  }
  return std::nullopt;
}

std::optional<Violation> first_violation(const Job& job) {
  const ModelConfig& m = job.model;
  const ParallelConfig& p = job.parallel;
  const ClusterConfig& c = job.cluster;
  if (c.gpus > c.gpus_per_node && c.gpus % c.gpus_per_node != 0) {
    return Violation{"cluster.gpus",
                     fmt::format("{} GPUs do not fill whole nodes of {} (gpus_per_node)", c.gpus,
                                 c.gpus_per_node)};
  }
  if (int64_t(p.tp) * p.cp * p.pp * p.dp != c.gpus) {
    return Violation{"parallel",
                     fmt::format("tp·cp·pp·dp = {}·{}·{}·{} = {} but cluster.gpus = {}", p.tp, p.cp,
                                 p.pp, p.dp, int64_t(p.tp) * p.cp * p.pp * p.dp, c.gpus)};
  }
  if (std::optional<Violation> v = cp_violation(job)) return v;
  if (kv_offload_of(job) != KvOffload::kNone &&
      !(c.gpu.host_link_bandwidth_bytes_per_s > 0 && c.gpu.host_memory_bytes > 0)) {
    return Violation{"strategy.kv_offload",
                     fmt::format("{} needs the GPU's host link and the node's host memory, which "
                                 "{} does not give (host_link_gb_per_s, host_memory_gib)",
                                 to_string(job.strategy.kv_offload), c.gpu.name)};
  }
  if (m.heads % p.tp != 0) {
    return Violation{
        "parallel.tp",
        fmt::format("tp = {} does not divide the {} attention heads of {}", p.tp, m.heads, m.name)};
  }
  if (m.kv_heads % p.tp != 0) {
    return Violation{"parallel.tp",
                     fmt::format("tp = {} does not divide the {} key/value heads of {}", p.tp,
                                 m.kv_heads, m.name)};
  }
  if (p.schedule == ScheduleKind::kInterleaved && p.vpp < 2) {
    return Violation{"parallel.vpp", "the interleaved schedule needs vpp >= 2"};
  }
  if (p.schedule != ScheduleKind::kInterleaved && p.vpp != 1) {
    return Violation{"parallel.vpp", fmt::format("vpp = {} needs schedule: interleaved", p.vpp)};
  }
  if (std::optional<SplitError> e = layer_split_error(layer_split(m.layers, p), m.name)) {
    // An even split that does not divide is reported where it was chosen: parallel.pp.
    return Violation{e->key == "model.layers" ? "parallel.pp" : e->key, e->message};
  }
  if (p.sp && p.tp == 1) return Violation{"parallel.sp", "sequence parallelism needs tp > 1"};
  const DatasetConfig& d = job.dataset;
  for (std::size_t i = 0; i < d.lengths.size(); ++i) {
    if (d.lengths[i] <= 0) {
      return Violation{fmt::format("dataset.lengths[{}]", i),
                       fmt::format("sequence length must be positive, got {}", d.lengths[i])};
    }
    if (d.lengths[i] > d.max_length) {
      return Violation{
          fmt::format("dataset.lengths[{}]", i),
          fmt::format("length {} exceeds dataset.max_length = {}", d.lengths[i], d.max_length)};
    }
  }
  if (!d.lengths.empty() && job.training.global_batch != int64_t(d.lengths.size())) {
    return Violation{"training.global_batch",
                     fmt::format("global_batch = {} but dataset.lengths has {} sequences",
                                 job.training.global_batch, d.lengths.size())};
  }
  return std::nullopt;
}

// The YAML node a dotted key path ("parallel.tp", "dataset.lengths[3]") points at, or the
// deepest existing ancestor, so the error carries the most precise line available.
YAML::Node node_at(const YAML::Node& root, const std::string& key_path) {
  YAML::Node node = root;
  std::stringstream parts(key_path);
  std::string part;
  while (std::getline(parts, part, '.')) {
    std::string key = part;
    int index = -1;
    if (auto bracket = part.find('['); bracket != std::string::npos) {
      key = part.substr(0, bracket);
      index = std::stoi(part.substr(bracket + 1));
    }
    if (!node.IsMap() || !node[key].IsDefined()) return node;
    YAML::Node next = node[key];
    if (index >= 0) {
      if (!next.IsSequence() || index >= int(next.size())) return next;
      next = next[index];
    }
    node = next;
  }
  return node;
}

// Wraps a failure from loading a referenced file so it also names the job key.
Status in_key(const YamlMap& map, const std::string& key, const Status& inner) {
  return map.error(key, inner.message());
}

Status read_cluster(YamlMap& root, Job* job) {
  CF_ASSIGN_OR_RETURN(YamlMap map, root.child("cluster"));
  if (!root.has("cluster")) return root.missing("cluster");
  ClusterConfig& c = job->cluster;
  CF_RETURN_IF_ERROR(map.require("gpu", &c.gpu_name));
  CF_RETURN_IF_ERROR(map.get("gpus", &c.gpus));
  CF_RETURN_IF_ERROR(map.check_positive("gpus", c.gpus));
  CF_RETURN_IF_ERROR(map.check_at_most("gpus", c.gpus, limits::kMaxGpus, limits::kMaxGpusWhy));
  CF_RETURN_IF_ERROR(map.get("gpus_per_node", &c.gpus_per_node));
  CF_RETURN_IF_ERROR(map.check_positive("gpus_per_node", c.gpus_per_node));
  CF_RETURN_IF_ERROR(
      map.check_at_most("gpus_per_node", c.gpus_per_node, limits::kMaxGpus, limits::kMaxGpusWhy));
  CF_RETURN_IF_ERROR(map.finish());
  StatusOr<GpuSpec> gpu = load_gpu(c.gpu_name);
  if (!gpu.ok()) return in_key(map, "gpu", gpu.status());
  c.gpu = *std::move(gpu);
  return Status::Ok();
}

Status read_dataset(YamlMap& root, Job* job) {
  if (!root.has("dataset")) return root.missing("dataset");
  CF_ASSIGN_OR_RETURN(YamlMap map, root.child("dataset"));
  DatasetConfig& d = job->dataset;
  CF_RETURN_IF_ERROR(map.get("distribution", &d.distribution));
  CF_RETURN_IF_ERROR(map.get("lengths", &d.lengths));
  int64_t seed = 0;
  CF_RETURN_IF_ERROR(map.get("seed", &seed));
  if (seed < 0) return map.error("seed", fmt::format("must be >= 0, got {}", seed));
  d.seed = static_cast<uint64_t>(seed);
  const bool has_distribution = map.has("distribution");
  const bool has_lengths = map.has("lengths");
  if (has_distribution == has_lengths) {
    return map.error(has_lengths ? "lengths" : "distribution",
                     "give exactly one of `distribution` and `lengths`");
  }
  if (has_lengths && d.lengths.empty()) return map.error("lengths", "must not be empty");
  for (size_t i = 0; i < d.lengths.size(); ++i) {
    if (d.lengths[i] > limits::kMaxTokens) {
      return map.error("lengths",
                       fmt::format("lengths[{}] must be at most {} ({}), got {}", i,
                                   limits::kMaxTokens, limits::kMaxTokensWhy, d.lengths[i]));
    }
  }
  if (has_distribution) {
    StatusOr<LengthDistribution> dist = load_distribution(d.distribution);
    if (!dist.ok()) return in_key(map, "distribution", dist.status());
    d.dist = *std::move(dist);
    d.max_length = d.dist.max_length;
  } else {
    d.max_length = *std::max_element(d.lengths.begin(), d.lengths.end());
  }
  CF_RETURN_IF_ERROR(map.get("max_length", &d.max_length));
  CF_RETURN_IF_ERROR(map.check_positive("max_length", d.max_length));
  CF_RETURN_IF_ERROR(
      map.check_at_most("max_length", d.max_length, limits::kMaxTokens, limits::kMaxTokensWhy));
  return map.finish();
}

Status read_training(YamlMap& root, Job* job) {
  CF_ASSIGN_OR_RETURN(YamlMap map, root.child("training"));
  TrainingConfig& t = job->training;
  if (!job->dataset.lengths.empty()) t.global_batch = int64_t(job->dataset.lengths.size());
  CF_RETURN_IF_ERROR(map.get("global_batch", &t.global_batch));
  CF_RETURN_IF_ERROR(map.check_positive("global_batch", t.global_batch));
  CF_RETURN_IF_ERROR(map.check_at_most("global_batch", t.global_batch, limits::kMaxGlobalBatch,
                                       "sequences per step, core/limits.h"));
  CF_RETURN_IF_ERROR(map.get("steps", &t.steps));
  CF_RETURN_IF_ERROR(map.check_positive("steps", t.steps));
  CF_RETURN_IF_ERROR(map.check_at_most("steps", t.steps, limits::kMaxSteps,
                                       "sampled steps simulated, core/limits.h"));
  std::string grads = to_string(t.grad_accumulation_dtype), ce = to_string(t.cross_entropy);
  CF_RETURN_IF_ERROR(map.get_choice("grad_accumulation_dtype", {"fp32", "bf16"}, &grads));
  CF_RETURN_IF_ERROR(map.get_choice("cross_entropy", {"unfused", "fused"}, &ce));
  t.grad_accumulation_dtype = grads == "fp32" ? GradDtype::kFp32 : GradDtype::kBf16;
  t.cross_entropy = ce == "unfused" ? CrossEntropy::kUnfused : CrossEntropy::kFused;
  return map.finish();
}

// Megatron-LM's --decoder-first-pipeline-num-layers / --decoder-last-pipeline-num-layers as
// parallel.first_stage_layers / last_stage_layers: the stages not named split the remaining
// layers evenly (an error when they do not divide). Resolved into p->layers_per_stage.
Status resolve_first_last_layers(YamlMap& map, int64_t layers, ParallelConfig* p) {
  const bool has_first = map.has("first_stage_layers"), has_last = map.has("last_stage_layers");
  if (!has_first && !has_last) return Status::Ok();
  const std::string key = has_last ? "last_stage_layers" : "first_stage_layers";
  int64_t first = 0, last = 0;
  CF_RETURN_IF_ERROR(map.get("first_stage_layers", &first));
  CF_RETURN_IF_ERROR(map.get("last_stage_layers", &last));
  if (has_first) CF_RETURN_IF_ERROR(map.check_positive("first_stage_layers", first));
  if (has_last) CF_RETURN_IF_ERROR(map.check_positive("last_stage_layers", last));
  if (map.has("layers_per_stage")) {
    return map.error(key,
                     "give either layers_per_stage or first_stage_layers / "
                     "last_stage_layers, not both");
  }
  if (p->pp < 2) return map.error(key, fmt::format("needs pp >= 2, got pp = {}", p->pp));
  if (p->vpp != 1) {
    return map.error(key, fmt::format("an uneven split needs vpp = 1 (the interleaved "
                                      "schedule's model chunks split the layers evenly), got "
                                      "vpp = {}",
                                      p->vpp));
  }
  const int others = p->pp - (has_first ? 1 : 0) - (has_last ? 1 : 0);
  const int64_t rest = layers - first - last;
  if (others == 0 && rest != 0) {
    return map.error(key, fmt::format("first_stage_layers + last_stage_layers = {} + {}, but "
                                      "the model has {} layers",
                                      first, last, layers));
  }
  if (others > 0 && rest < others) {
    return map.error(key, fmt::format("leaves {} of the model's {} layers to the other {} "
                                      "stages, which need at least 1 each",
                                      rest, layers, others));
  }
  if (others > 0 && rest % others != 0) {
    return map.error(key, fmt::format("the other {} stages cannot split the remaining {} of the "
                                      "model's {} layers evenly",
                                      others, rest, layers));
  }
  p->layers_per_stage.assign(static_cast<size_t>(p->pp), others > 0 ? rest / others : 0);
  if (has_first) p->layers_per_stage.front() = first;
  if (has_last) p->layers_per_stage.back() = last;
  return Status::Ok();
}

Status read_parallel(YamlMap& root, Job* job) {
  CF_ASSIGN_OR_RETURN(YamlMap map, root.child("parallel"));
  ParallelConfig& p = job->parallel;
  for (auto [key, value] : {std::pair{"tp", &p.tp}, std::pair{"pp", &p.pp}, std::pair{"dp", &p.dp},
                            std::pair{"vpp", &p.vpp}, std::pair{"cp", &p.cp}}) {
    CF_RETURN_IF_ERROR(map.get(key, value));
    CF_RETURN_IF_ERROR(map.check_positive(key, *value));
  }
  CF_RETURN_IF_ERROR(map.get("sp", &p.sp));
  CF_RETURN_IF_ERROR(map.get("distributed_optimizer", &p.distributed_optimizer));
  std::string cp_comm = to_string(p.cp_comm);
  CF_RETURN_IF_ERROR(map.get_choice("cp_comm", {"p2p", "all_gather", "a2a"}, &cp_comm));
  p.cp_comm = cp_comm == "p2p"          ? CpComm::kP2p
              : cp_comm == "all_gather" ? CpComm::kAllGather
                                        : CpComm::kA2a;
  std::string recompute = to_string(p.recompute), schedule = to_string(p.schedule);
  CF_RETURN_IF_ERROR(map.get_choice("recompute", {"none", "selective", "full"}, &recompute));
  CF_RETURN_IF_ERROR(map.get_choice("schedule", {"1f1b", "gpipe", "interleaved"}, &schedule));
  p.recompute = recompute == "none"        ? Recompute::kNone
                : recompute == "selective" ? Recompute::kSelective
                                           : Recompute::kFull;
  p.schedule = schedule == "1f1b"    ? ScheduleKind::kOneFOneB
               : schedule == "gpipe" ? ScheduleKind::kGPipe
                                     : ScheduleKind::kInterleaved;
  CF_RETURN_IF_ERROR(map.get("layers_per_stage", &p.layers_per_stage));
  if (map.has("layers_per_stage") && p.layers_per_stage.empty()) {
    return map.error("layers_per_stage", "must not be empty");
  }
  CF_RETURN_IF_ERROR(resolve_first_last_layers(map, job->model.layers, &p));
  return map.finish();
}

Status read_strategy(YamlMap& root, Job* job) {
  CF_ASSIGN_OR_RETURN(YamlMap map, root.child("strategy"));
  StrategyConfig& s = job->strategy;
  std::string kind = to_string(s.kind), packer = to_string(s.packer), split = to_string(s.split),
              micro_batching = to_string(s.micro_batching), kv_offload = to_string(s.kv_offload);
  CF_RETURN_IF_ERROR(map.get_choice("kind", {"chunkflow", "baseline"}, &kind));
  s.kind = kind == "chunkflow" ? StrategyKind::kChunkFlow : StrategyKind::kBaseline;
  CF_RETURN_IF_ERROR(map.get("chunk_size", &s.chunk_size));
  CF_RETURN_IF_ERROR(map.check_positive("chunk_size", s.chunk_size));
  CF_RETURN_IF_ERROR(
      map.check_at_most("chunk_size", s.chunk_size, limits::kMaxTokens, limits::kMaxTokensWhy));
  CF_RETURN_IF_ERROR(map.get("k", &s.k));
  CF_RETURN_IF_ERROR(map.check_positive("k", s.k));
  CF_RETURN_IF_ERROR(map.check_at_most("k", s.k, limits::kMaxK, "core/limits.h"));
  CF_RETURN_IF_ERROR(map.get_choice("packer", {"balanced", "ffd", "cost"}, &packer));
  s.packer = packer == "balanced" ? Packer::kBalanced
             : packer == "ffd"    ? Packer::kFirstFitDecreasing
                                  : Packer::kCost;
  CF_RETURN_IF_ERROR(map.get_choice("split", {"tokens", "cost"}, &split));
  s.split = split == "tokens" ? SequenceSplit::kTokens : SequenceSplit::kCost;
  CF_RETURN_IF_ERROR(map.get_choice("kv_offload", {"none", "all", "auto"}, &kv_offload));
  s.kv_offload = kv_offload == "none"  ? KvOffload::kNone
                 : kv_offload == "all" ? KvOffload::kAll
                                       : KvOffload::kAuto;
  CF_RETURN_IF_ERROR(map.get("kv_offload_min_tokens", &s.kv_offload_min_tokens));
  if (s.kv_offload_min_tokens < 0) {
    return map.error("kv_offload_min_tokens",
                     fmt::format("must be >= 0, got {}", s.kv_offload_min_tokens));
  }
  CF_RETURN_IF_ERROR(map.check_at_most("kv_offload_min_tokens", s.kv_offload_min_tokens,
                                       limits::kMaxTokens, limits::kMaxTokensWhy));
  if (s.kind == StrategyKind::kChunkFlow && map.has("kv_offload_min_tokens") &&
      s.kv_offload != KvOffload::kAll) {
    return map.error("kv_offload_min_tokens",
                     s.kv_offload == KvOffload::kAuto
                         ? "applies to kv_offload: all only (auto picks it)"
                         : "applies to kv_offload: all only");
  }
  CF_RETURN_IF_ERROR(map.get_choice("micro_batching", {"pack", "per_sequence"}, &micro_batching));
  s.micro_batching = micro_batching == "pack" ? MicroBatching::kPack : MicroBatching::kPerSequence;
  if (s.kind == StrategyKind::kBaseline) {
    for (const char* key :
         {"chunk_size", "k", "packer", "split", "kv_offload", "kv_offload_min_tokens"}) {
      if (map.has(key)) return map.error(key, "applies to kind: chunkflow only");
    }
  } else if (map.has("micro_batching")) {
    return map.error("micro_batching", "applies to kind: baseline only");
  }
  return map.finish();
}

Status read_cost_model(YamlMap& root, Job* job) {
  CF_ASSIGN_OR_RETURN(YamlMap map, root.child("cost_model"));
  CostModelConfig& c = job->cost_model;
  std::string kind = to_string(c.kind);
  CF_RETURN_IF_ERROR(map.get_choice("kind", {"analytical", "unit", "calibrated"}, &kind));
  c.kind = kind == "analytical" ? CostModelKind::kAnalytical
           : kind == "unit"     ? CostModelKind::kUnit
                                : CostModelKind::kCalibrated;
  CF_RETURN_IF_ERROR(map.get("table", &c.table));
  if (c.kind == CostModelKind::kCalibrated) {
    if (!map.has("table")) return map.missing("table");
    std::error_code ec;
    if (!std::filesystem::is_regular_file(c.table, ec)) {
      return map.error("table",
                       fmt::format("calibration table \"{}\" is not a readable file", c.table));
    }
  } else if (map.has("table")) {
    return map.error("table", "applies to kind: calibrated only");
  }
  return map.finish();
}

Status read_overlap(YamlMap& root, Job* job) {
  CF_ASSIGN_OR_RETURN(YamlMap map, root.child("overlap"));
  OverlapConfig& o = job->overlap;
  for (auto [key, value] :
       {std::pair{"tp_comm", &o.tp_comm}, std::pair{"grad_reduce", &o.grad_reduce},
        std::pair{"param_gather", &o.param_gather}, std::pair{"p2p", &o.p2p}}) {
    CF_RETURN_IF_ERROR(map.get(key, value));
  }
  return map.finish();
}

Status read_memory_model(YamlMap& root, Job* job) {
  std::string kind = job->cost_model.kind == CostModelKind::kCalibrated ? "executor" : "megatron";
  CF_RETURN_IF_ERROR(root.get_choice("memory_model", {"megatron", "executor"}, &kind));
  job->memory_model = kind == "executor" ? MemoryModelKind::kExecutor : MemoryModelKind::kMegatron;
  return Status::Ok();
}

}  // namespace

StatusOr<Job> parse_job(const std::string& text, const std::string& origin) {
  CF_ASSIGN_OR_RETURN(YamlDocument doc, parse_yaml_text(text, origin));
  if (!doc.root.IsMap()) return yaml_error(origin, doc.root, "", "a job file must be a YAML map");
  CF_ASSIGN_OR_RETURN(YamlMap root, YamlMap::open(doc.root, origin, ""));
  Job job;
  job.origin = origin;
  CF_RETURN_IF_ERROR(root.require("model", &job.model_name));
  {
    StatusOr<ModelConfig> model = load_model(job.model_name);
    if (!model.ok()) return in_key(root, "model", model.status());
    job.model = *std::move(model);
  }
  CF_RETURN_IF_ERROR(read_cluster(root, &job));
  CF_RETURN_IF_ERROR(read_dataset(root, &job));
  CF_RETURN_IF_ERROR(read_training(root, &job));
  CF_RETURN_IF_ERROR(read_parallel(root, &job));
  CF_RETURN_IF_ERROR(read_overlap(root, &job));
  CF_RETURN_IF_ERROR(read_strategy(root, &job));
  CF_RETURN_IF_ERROR(read_cost_model(root, &job));
  CF_RETURN_IF_ERROR(read_memory_model(root, &job));
  job.tune = root.raw("tune");
  if (job.tune.IsDefined() && !job.tune.IsNull() && !job.tune.IsMap()) {
    return root.error("tune", "expected a map");
  }
  CF_RETURN_IF_ERROR(root.finish());
  if (std::optional<Violation> v = first_violation(job)) {
    return yaml_error(origin, node_at(doc.root, v->key_path), v->key_path, v->message);
  }
  return job;
}

StatusOr<Job> load_job(const std::string& path) {
  // read_text_file refuses a directory or a device ("PATH: not a regular file (a
  // directory)"); an empty file has its own message rather than "must be a YAML map".
  CF_ASSIGN_OR_RETURN(std::string text, read_text_file(path));
  if (text.empty()) return Status::InvalidInput(fmt::format("{}: empty file", path));
  return parse_job(text, path);
}

Status validate_job(const Job& job) {
  if (std::optional<Violation> v = first_violation(job)) {
    return Status::InvalidInput(fmt::format("{}: {}", v->key_path, v->message));
  }
  return Status::Ok();
}

KvOffload kv_offload_of(const Job& job) {
  return job.strategy.kind == StrategyKind::kChunkFlow ? job.strategy.kv_offload : KvOffload::kNone;
}

KvOffloadPolicy kv_offload_policy(const Job& job) {
  const KvOffload o = kv_offload_of(job);
  CF_CHECK(o != KvOffload::kAuto)
      << job.origin << ": kv_offload: auto is resolved first (simulate_job, resolve_run_offload, "
      << "the tuner's Search::evaluate)";
  return {o == KvOffload::kAll, job.strategy.kv_offload_min_tokens};
}

std::vector<int64_t> job_global_batch(const Job& job, int64_t step) {
  if (!job.dataset.lengths.empty()) return job.dataset.lengths;
  return sample_global_batch(job.dataset.dist, job.dataset.max_length, job.dataset.seed, step,
                             job.training.global_batch);
}

}  // namespace cf

namespace cf {

int64_t longest_sequence(const Job& job) {
  const DatasetConfig& d = job.dataset;
  if (!d.lengths.empty()) return *std::max_element(d.lengths.begin(), d.lengths.end());
  int64_t longest = d.dist.max_length;
  if (!d.dist.raw_lengths.empty()) {
    longest = *std::max_element(d.dist.raw_lengths.begin(), d.dist.raw_lengths.end());
  }
  if (longest <= 0) longest = d.max_length;
  return std::min(longest, d.max_length);
}

std::vector<int64_t> worst_case_batch(const Job& job, const std::vector<int64_t>& sampled) {
  if (sampled.empty()) return {};
  const int64_t longest = longest_sequence(job);
  auto it = std::max_element(sampled.begin(), sampled.end());
  if (*it >= longest) return {};
  std::vector<int64_t> batch = sampled;
  batch[static_cast<size_t>(it - sampled.begin())] = longest;
  return batch;
}

}  // namespace cf

// The job in words: each option's name as the job file spells it (to_string), and the resolved
// job — every key with the value in force after defaults, as a table for people and as YAML
// that parse_job reads back to the same Job (saved beside every result).
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <utility>
#include <vector>

#include "sim/plan/job.h"

namespace cf {

std::string to_string(Recompute r) {
  switch (r) {
    case Recompute::kNone:
      return "none";
    case Recompute::kSelective:
      return "selective";
    case Recompute::kFull:
      return "full";
  }
  return "?";
}
std::string to_string(CpComm c) {
  switch (c) {
    case CpComm::kP2p:
      return "p2p";
    case CpComm::kAllGather:
      return "all_gather";
    case CpComm::kA2a:
      return "a2a";
  }
  return "?";
}

std::string to_string(GradDtype g) { return g == GradDtype::kFp32 ? "fp32" : "bf16"; }

std::string to_string(CrossEntropy c) { return c == CrossEntropy::kUnfused ? "unfused" : "fused"; }

std::string to_string(ScheduleKind s) {
  switch (s) {
    case ScheduleKind::kOneFOneB:
      return "1f1b";
    case ScheduleKind::kGPipe:
      return "gpipe";
    case ScheduleKind::kInterleaved:
      return "interleaved";
  }
  return "?";
}
std::string to_string(StrategyKind s) {
  return s == StrategyKind::kChunkFlow ? "chunkflow" : "baseline";
}
std::string to_string(Packer p) {
  switch (p) {
    case Packer::kBalanced:
      return "balanced";
    case Packer::kFirstFitDecreasing:
      return "ffd";
    case Packer::kCost:
      return "cost";
  }
  return "balanced";
}
std::string to_string(SequenceSplit s) { return s == SequenceSplit::kTokens ? "tokens" : "cost"; }
std::string to_string(KvOffload o) {
  return o == KvOffload::kNone ? "none" : o == KvOffload::kAll ? "all" : "auto";
}
std::string to_string(MicroBatching m) {
  return m == MicroBatching::kPack ? "pack" : "per_sequence";
}
std::string to_string(MemoryModelKind m) {
  return m == MemoryModelKind::kExecutor ? "executor" : "megatron";
}

std::string to_string(CostModelKind c) {
  switch (c) {
    case CostModelKind::kAnalytical:
      return "analytical";
    case CostModelKind::kUnit:
      return "unit";
    case CostModelKind::kCalibrated:
      return "calibrated";
  }
  return "?";
}

namespace {

using Rows = std::vector<std::pair<std::string, std::string>>;

std::string lengths_summary(const std::vector<int64_t>& lengths) {
  if (lengths.size() <= 8) return fmt::format("[{}]", fmt::join(lengths, ", "));
  return fmt::format("[{}, ... ] ({} sequences)",
                     fmt::join(lengths.begin(), lengths.begin() + 6, ", "), lengths.size());
}

Rows resolved_rows(const Job& job) {
  const auto& c = job.cluster;
  const auto& d = job.dataset;
  const auto& p = job.parallel;
  const auto& s = job.strategy;
  Rows rows = {
      {"model", fmt::format("{} ({:.2f} B parameters, {} layers)", job.model_name,
                            job.model.params_total() / 1e9, job.model.layers)},
      {"cluster.gpu", fmt::format("{} ({:.0f} TFLOP/s bf16, {:.0f} GiB)", c.gpu_name,
                                  c.gpu.peak_bf16_flops / 1e12, c.gpu.hbm_bytes / double(1 << 30))},
      {"cluster.gpus", fmt::format("{}", c.gpus)},
      {"cluster.gpus_per_node", fmt::format("{}", c.gpus_per_node)},
  };
  if (d.lengths.empty()) {
    rows.push_back({"dataset.distribution", d.distribution});
  } else {
    rows.push_back({"dataset.lengths", lengths_summary(d.lengths)});
  }
  rows.insert(
      rows.end(),
      {
          {"dataset.max_length", fmt::format("{}", d.max_length)},
          {"dataset.seed", fmt::format("{}", d.seed)},
          {"training.global_batch", fmt::format("{}", job.training.global_batch)},
          {"training.steps", fmt::format("{}", job.training.steps)},
          {"training.grad_accumulation_dtype", to_string(job.training.grad_accumulation_dtype)},
          {"training.cross_entropy", to_string(job.training.cross_entropy)},
          {"parallel", fmt::format("tp={} cp={} pp={} dp={} sp={} vpp={}", p.tp, p.cp, p.pp, p.dp,
                                   p.sp, p.vpp)},
          {"parallel.cp_comm", to_string(p.cp_comm)},
          {"parallel.recompute", to_string(p.recompute)},
          {"parallel.schedule", to_string(p.schedule)},
          {"parallel.distributed_optimizer", p.distributed_optimizer ? "true" : "false"},
          {"overlap",
           fmt::format("tp_comm={} grad_reduce={} param_gather={} p2p={}", job.overlap.tp_comm,
                       job.overlap.grad_reduce, job.overlap.param_gather, job.overlap.p2p)},
          {"strategy.kind", to_string(s.kind)},
      });
  if (!p.layers_per_stage.empty()) {  // beside the other parallel keys, only when set
    auto after = std::find_if(rows.begin(), rows.end(),
                              [](const auto& row) { return row.first == "parallel"; });
    rows.insert(after + 1, {"parallel.layers_per_stage",
                            fmt::format("[{}]", fmt::join(p.layers_per_stage, ", "))});
  }
  if (s.kind == StrategyKind::kChunkFlow) {
    rows.push_back({"strategy.chunk_size", fmt::format("{}", s.chunk_size)});
    rows.push_back({"strategy.k", fmt::format("{}", s.k)});
    rows.push_back({"strategy.packer", to_string(s.packer)});
    rows.push_back({"strategy.split", to_string(s.split)});
    rows.push_back({"strategy.kv_offload", to_string(s.kv_offload)});
    if (s.kv_offload_min_tokens > 0) {
      rows.push_back(
          {"strategy.kv_offload_min_tokens", fmt::format("{}", s.kv_offload_min_tokens)});
    }
  } else {
    rows.push_back({"strategy.micro_batching", to_string(s.micro_batching)});
  }
  rows.push_back({"cost_model.kind", to_string(job.cost_model.kind)});
  if (!job.cost_model.table.empty()) rows.push_back({"cost_model.table", job.cost_model.table});
  rows.push_back({"memory_model", to_string(job.memory_model)});
  return rows;
}

}  // namespace

std::string resolved_table(const Job& job) {
  Rows rows = resolved_rows(job);
  std::size_t width = 0;
  for (const auto& [key, value] : rows) width = std::max(width, key.size());
  std::string out = fmt::format("resolved job ({})\n", job.origin);
  for (const auto& [key, value] : rows) out += fmt::format("  {:<{}}  {}\n", key, width, value);
  return out;
}

std::string resolved_yaml(const Job& job) {
  const auto& d = job.dataset;
  const auto& p = job.parallel;
  const auto& s = job.strategy;
  YAML::Emitter out;
  out << YAML::BeginMap;
  out << YAML::Key << "model" << YAML::Value << job.model_name;
  out << YAML::Key << "cluster" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "gpu" << YAML::Value << job.cluster.gpu_name;
  out << YAML::Key << "gpus" << YAML::Value << job.cluster.gpus;
  out << YAML::Key << "gpus_per_node" << YAML::Value << job.cluster.gpus_per_node;
  out << YAML::EndMap;
  out << YAML::Key << "dataset" << YAML::Value << YAML::BeginMap;
  if (d.lengths.empty()) {
    out << YAML::Key << "distribution" << YAML::Value << d.distribution;
  } else {
    out << YAML::Key << "lengths" << YAML::Value << YAML::Flow << d.lengths;
  }
  out << YAML::Key << "max_length" << YAML::Value << d.max_length;
  out << YAML::Key << "seed" << YAML::Value << d.seed;
  out << YAML::EndMap;
  out << YAML::Key << "training" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "global_batch" << YAML::Value << job.training.global_batch;
  out << YAML::Key << "steps" << YAML::Value << job.training.steps;
  out << YAML::Key << "grad_accumulation_dtype" << YAML::Value
      << to_string(job.training.grad_accumulation_dtype);
  out << YAML::Key << "cross_entropy" << YAML::Value << to_string(job.training.cross_entropy);
  out << YAML::EndMap;
  out << YAML::Key << "parallel" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "tp" << YAML::Value << p.tp << YAML::Key << "pp" << YAML::Value << p.pp;
  out << YAML::Key << "cp" << YAML::Value << p.cp << YAML::Key << "cp_comm" << YAML::Value
      << to_string(p.cp_comm);
  out << YAML::Key << "dp" << YAML::Value << p.dp << YAML::Key << "sp" << YAML::Value << p.sp;
  out << YAML::Key << "recompute" << YAML::Value << to_string(p.recompute);
  out << YAML::Key << "schedule" << YAML::Value << to_string(p.schedule);
  out << YAML::Key << "vpp" << YAML::Value << p.vpp;
  out << YAML::Key << "distributed_optimizer" << YAML::Value << p.distributed_optimizer;
  if (!p.layers_per_stage.empty()) {
    out << YAML::Key << "layers_per_stage" << YAML::Value << YAML::Flow << p.layers_per_stage;
  }
  out << YAML::EndMap;
  out << YAML::Key << "overlap" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "tp_comm" << YAML::Value << job.overlap.tp_comm;
  out << YAML::Key << "grad_reduce" << YAML::Value << job.overlap.grad_reduce;
  out << YAML::Key << "param_gather" << YAML::Value << job.overlap.param_gather;
  out << YAML::Key << "p2p" << YAML::Value << job.overlap.p2p;
  out << YAML::EndMap;
  out << YAML::Key << "strategy" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "kind" << YAML::Value << to_string(s.kind);
  if (s.kind == StrategyKind::kChunkFlow) {
    out << YAML::Key << "chunk_size" << YAML::Value << s.chunk_size;
    out << YAML::Key << "k" << YAML::Value << s.k;
    out << YAML::Key << "packer" << YAML::Value << to_string(s.packer);
    out << YAML::Key << "split" << YAML::Value << to_string(s.split);
    out << YAML::Key << "kv_offload" << YAML::Value << to_string(s.kv_offload);
    if (s.kv_offload_min_tokens > 0) {
      out << YAML::Key << "kv_offload_min_tokens" << YAML::Value << s.kv_offload_min_tokens;
    }
  } else {
    out << YAML::Key << "micro_batching" << YAML::Value << to_string(s.micro_batching);
  }
  out << YAML::EndMap;
  out << YAML::Key << "cost_model" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "kind" << YAML::Value << to_string(job.cost_model.kind);
  if (!job.cost_model.table.empty())
    out << YAML::Key << "table" << YAML::Value << job.cost_model.table;
  out << YAML::EndMap;
  out << YAML::Key << "memory_model" << YAML::Value << to_string(job.memory_model);
  if (job.tune.IsDefined() && !job.tune.IsNull())
    out << YAML::Key << "tune" << YAML::Value << job.tune;
  out << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

}  // namespace cf

// Sweep points as CBOR (sweep_wire.h): one JSON object per struct, field for field; enums as
// their integer values. nlohmann's CBOR writes a double as float64 unless float32 holds it
// exactly, so every value reads back bit for bit.
#include "tuner/sweep_wire.h"

#include <nlohmann/json.hpp>
#include <string>

#include "core/check.h"

namespace cf {
namespace {

using nlohmann::json;

template <typename Enum>
Enum enum_of(const json& j) {
  return static_cast<Enum>(j.get<int>());
}

json to_wire(const MemoryBreakdown& b) {
  return json::array(
      {b.weights, b.gradients, b.optimizer, b.activations, b.state_store, b.transient});
}
MemoryBreakdown breakdown_of(const json& j) {
  MemoryBreakdown b;
  b.weights = j.at(0).get<int64_t>();
  b.gradients = j.at(1).get<int64_t>();
  b.optimizer = j.at(2).get<int64_t>();
  b.activations = j.at(3).get<int64_t>();
  b.state_store = j.at(4).get<int64_t>();
  b.transient = j.at(5).get<int64_t>();
  return b;
}

json to_wire(const StageMetrics& s) {
  return {{"stage", s.stage},
          {"busy_s", s.busy_s},
          {"bubble_ratio", s.bubble_ratio},
          {"recompute_s", s.recompute_s},
          {"tp_comm_s", s.tp_comm_s},
          {"dp_reduce_s", s.dp_reduce_s},
          {"optimizer_s", s.optimizer_s},
          {"peak_memory_bytes", s.peak_memory_bytes},
          {"peak_breakdown", to_wire(s.peak_breakdown)},
          {"host", {s.host_peak_bytes, s.host_traffic_bytes, s.offload_stall_s}}};
}
StageMetrics stage_of(const json& j) {
  StageMetrics s;
  s.stage = j.at("stage").get<int>();
  s.busy_s = j.at("busy_s").get<double>();
  s.bubble_ratio = j.at("bubble_ratio").get<double>();
  s.recompute_s = j.at("recompute_s").get<double>();
  s.tp_comm_s = j.at("tp_comm_s").get<double>();
  s.dp_reduce_s = j.at("dp_reduce_s").get<double>();
  s.optimizer_s = j.at("optimizer_s").get<double>();
  s.peak_memory_bytes = j.at("peak_memory_bytes").get<int64_t>();
  s.peak_breakdown = breakdown_of(j.at("peak_breakdown"));
  const json& host = j.at("host");
  s.host_peak_bytes = host.at(0).get<int64_t>();
  s.host_traffic_bytes = host.at(1).get<int64_t>();
  s.offload_stall_s = host.at(2).get<double>();
  return s;
}

json to_wire(const SimMetrics& m) {
  CF_CHECK(m.critical_path.empty()) << "a sweep point's metrics carry no critical path";
  json stages = json::array();
  for (const StageMetrics& s : m.stages) stages.push_back(to_wire(s));
  return {{"strategy", m.strategy},
          {"cost_model", m.cost_model},
          {"steps", m.steps},
          {"step_time_s", m.step_time_s},
          {"pipeline_time_s", m.pipeline_time_s},
          {"tokens_per_s", m.tokens_per_s},
          {"mfu", m.mfu},
          {"bubble_ratio", m.bubble_ratio},
          {"recompute_share", m.recompute_share},
          {"tokens", m.tokens},
          {"model_flops", m.model_flops},
          {"chunks", m.chunks},
          {"ops", m.ops},
          {"events", m.events},
          {"gpus", m.gpus},
          {"memory_capacity_bytes", m.memory_capacity_bytes},
          {"reserved_bytes", m.reserved_bytes},
          {"memory_min_category_bytes", m.memory_min_category_bytes},
          {"memory_left_bytes", m.memory_left_bytes},
          {"feasible", m.feasible},
          {"infeasible_reason", m.infeasible_reason},
          {"worst_case_length", m.worst_case_length},
          {"worst_case_peak_bytes", m.worst_case_peak_bytes},
          {"worst_case_feasible", m.worst_case_feasible},
          {"extrapolated_ops", m.extrapolated_ops},
          {"worst_extrapolation", m.worst_extrapolation},
          {"kv_offload",
           {m.kv_offload, m.host_bytes_per_node, m.host_memory_bytes, m.kv_offload_min_tokens}},
          {"stages", stages}};
}
SimMetrics metrics_of(const json& j) {
  SimMetrics m;
  m.strategy = j.at("strategy").get<std::string>();
  m.cost_model = j.at("cost_model").get<std::string>();
  m.steps = j.at("steps").get<int>();
  m.step_time_s = j.at("step_time_s").get<double>();
  m.pipeline_time_s = j.at("pipeline_time_s").get<double>();
  m.tokens_per_s = j.at("tokens_per_s").get<double>();
  m.mfu = j.at("mfu").get<double>();
  m.bubble_ratio = j.at("bubble_ratio").get<double>();
  m.recompute_share = j.at("recompute_share").get<double>();
  m.tokens = j.at("tokens").get<int64_t>();
  m.model_flops = j.at("model_flops").get<double>();
  m.chunks = j.at("chunks").get<int>();
  m.ops = j.at("ops").get<int>();
  m.events = j.at("events").get<int64_t>();
  m.gpus = j.at("gpus").get<int>();
  m.memory_capacity_bytes = j.at("memory_capacity_bytes").get<int64_t>();
  m.reserved_bytes = j.at("reserved_bytes").get<int64_t>();
  m.memory_min_category_bytes = j.at("memory_min_category_bytes").get<int64_t>();
  m.memory_left_bytes = j.at("memory_left_bytes").get<int64_t>();
  m.feasible = j.at("feasible").get<bool>();
  m.infeasible_reason = j.at("infeasible_reason").get<std::string>();
  m.worst_case_length = j.at("worst_case_length").get<int64_t>();
  m.worst_case_peak_bytes = j.at("worst_case_peak_bytes").get<int64_t>();
  m.worst_case_feasible = j.at("worst_case_feasible").get<bool>();
  m.extrapolated_ops = j.at("extrapolated_ops").get<int>();
  m.worst_extrapolation = j.at("worst_extrapolation").get<double>();
  for (const json& s : j.at("stages")) m.stages.push_back(stage_of(s));
  const json& offload = j.at("kv_offload");
  m.kv_offload = offload.at(0).get<std::string>();
  m.host_bytes_per_node = offload.at(1).get<int64_t>();
  m.host_memory_bytes = offload.at(2).get<int64_t>();
  m.kv_offload_min_tokens = offload.at(3).get<int64_t>();
  return m;
}

json to_wire(const RankedCandidate& r) {
  const Candidate& c = r.candidate;
  const ParallelLayout& l = c.layout;
  const StrategyConfig& st = c.strategy;
  return {{"index", c.index},
          {"layout",
           {l.tp, l.pp, l.dp, l.cp, l.vpp, l.sp, static_cast<int>(l.recompute),
            static_cast<int>(l.schedule), l.layers_per_stage}},
          {"strategy",
           {static_cast<int>(st.kind), st.chunk_size, st.k, static_cast<int>(st.packer),
            static_cast<int>(st.micro_batching), static_cast<int>(st.split),
            static_cast<int>(st.kv_offload), st.kv_offload_min_tokens, c.auto_offload}},
          {"k_covers", c.k_covers},
          {"max_group_size", c.max_group_size},
          {"metrics", to_wire(r.metrics)}};
}
RankedCandidate ranked_of(const json& j) {
  RankedCandidate r;
  Candidate& c = r.candidate;
  c.index = j.at("index").get<int>();
  const json& l = j.at("layout");
  c.layout = ParallelLayout{l.at(0).get<int>(),
                            l.at(1).get<int>(),
                            l.at(2).get<int>(),
                            l.at(3).get<int>(),
                            l.at(4).get<int>(),
                            l.at(5).get<bool>(),
                            enum_of<Recompute>(l.at(6)),
                            enum_of<ScheduleKind>(l.at(7)),
                            l.at(8).get<std::vector<int64_t>>()};
  const json& st = j.at("strategy");
  c.strategy.kind = enum_of<StrategyKind>(st.at(0));
  c.strategy.chunk_size = st.at(1).get<int64_t>();
  c.strategy.k = st.at(2).get<int>();
  c.strategy.packer = enum_of<Packer>(st.at(3));
  c.strategy.micro_batching = enum_of<MicroBatching>(st.at(4));
  c.strategy.split = enum_of<SequenceSplit>(st.at(5));
  c.strategy.kv_offload = enum_of<KvOffload>(st.at(6));
  c.strategy.kv_offload_min_tokens = st.at(7).get<int64_t>();
  c.auto_offload = st.at(8).get<bool>();
  c.k_covers = j.at("k_covers").get<int>();
  c.max_group_size = j.at("max_group_size").get<int>();
  r.metrics = metrics_of(j.at("metrics"));
  return r;
}

json optional_wire(const std::optional<RankedCandidate>& r) {
  return r ? to_wire(*r) : json(nullptr);
}
std::optional<RankedCandidate> optional_of(const json& j) {
  if (j.is_null()) return std::nullopt;
  return ranked_of(j);
}

}  // namespace

json sim_metrics_to_wire(const SimMetrics& metrics) { return to_wire(metrics); }
SimMetrics sim_metrics_from_wire(const json& j) { return metrics_of(j); }

std::vector<uint8_t> sweep_point_to_wire(const SweepPoint& p) {
  const json j = {{"model", p.model},
                  {"dataset", p.dataset},
                  {"gpu", p.gpu},
                  {"max_length", p.max_length},
                  {"gpus", p.gpus},
                  {"error", p.error},
                  {"best", optional_wire(p.best)},
                  {"baseline", optional_wire(p.baseline)},
                  {"closest_miss", p.closest_miss},
                  {"candidates", p.candidates},
                  {"evaluated", p.evaluated}};
  return json::to_cbor(j);
}

StatusOr<SweepPoint> sweep_point_from_wire(const std::vector<uint8_t>& bytes) {
  try {
    const json j = json::from_cbor(bytes);
    SweepPoint p;
    p.model = j.at("model").get<std::string>();
    p.dataset = j.at("dataset").get<std::string>();
    p.gpu = j.at("gpu").get<std::string>();
    p.max_length = j.at("max_length").get<int64_t>();
    p.gpus = j.at("gpus").get<int>();
    p.error = j.at("error").get<std::string>();
    p.best = optional_of(j.at("best"));
    p.baseline = optional_of(j.at("baseline"));
    p.closest_miss = j.at("closest_miss").get<std::string>();
    p.candidates = j.at("candidates").get<int>();
    p.evaluated = j.at("evaluated").get<int>();
    return p;
  } catch (const json::exception& e) {
    return Status::Runtime(std::string("a sweep point from another rank does not read: ") +
                           e.what());
  }
}

}  // namespace cf

// Metrics: averaging over steps, JSON (DESIGN.md §6 keys) and the readable table.
#include "sim/metrics.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "core/check.h"

namespace cf {

void apply_worst_case(const SimMetrics& worst, int64_t length, SimMetrics* m) {
  m->worst_case_length = length;
  m->worst_case_peak_bytes = 0;
  for (const StageMetrics& st : worst.stages) {
    m->worst_case_peak_bytes = std::max(m->worst_case_peak_bytes, st.peak_memory_bytes);
  }
  m->worst_case_feasible = worst.feasible;
  if (!worst.feasible && m->feasible) {
    m->feasible = false;
    m->infeasible_reason = fmt::format("worst case (a {}-token sequence in the batch): {}", length,
                                       worst.infeasible_reason);
  }
}

// Times and counts are means; tokens/s and MFU are totals over total time (so a long step
// weighs more); memory is the worst step's, and one infeasible step makes the job infeasible.
nlohmann::json breakdown_json(const MemoryBreakdown& b) {
  nlohmann::json out = nlohmann::json::object();
  for (MemoryCategory c : kAllMemoryCategories) out[memory_category_name(c)] = b[c];
  return out;
}

namespace {

nlohmann::json critical_path_json(const std::vector<TraceOp>& path) {
  nlohmann::json steps = nlohmann::json::array();
  for (const TraceOp& op : path) {
    nlohmann::json step = {{"kind", op_kind_name(op.kind)},
                           {"dp_rank", op.dp_rank},
                           {"stage", op.stage},
                           {"start_s", op.start_ns * 1e-9},
                           {"end_s", op.end_ns * 1e-9}};
    if (op.pass) step["pass"] = pass_name(op.pass);
    if (op.chunk >= 0) {
      step["chunk"] = op.chunk;
      step["model_chunk"] = op.model_chunk;
    }
    if (op.op_id >= 0) step["op_id"] = op.op_id;
    if (op.kind == OpKind::kSend) {
      step["peer_stage"] = op.peer_stage;
      step["bytes"] = op.bytes;
    }
    steps.push_back(std::move(step));
  }
  return steps;
}

// "s1 F3", "s1 F3 v1", "s1→s2", "s0 dp_reduce".
std::string path_step_text(const TraceOp& op) {
  if (op.kind == OpKind::kSend) return fmt::format("s{}→s{}", op.stage, op.peer_stage);
  std::string text = op.kind == OpKind::kCompute
                         ? fmt::format("s{} {}{}", op.stage, pass_name(op.pass), op.chunk)
                         : fmt::format("s{} {}", op.stage, op_kind_name(op.kind));
  if (op.model_chunk > 0) text += fmt::format(" v{}", op.model_chunk);
  return text;
}

// The chain's time by what it spends it on, and the chain itself (its first and last steps
// when long).
std::string critical_path_text(const std::vector<TraceOp>& path) {
  constexpr size_t kShown = 8;
  std::map<std::string, int64_t> by_label;
  for (const TraceOp& op : path) {
    by_label[op.kind == OpKind::kCompute ? pass_name(op.pass) : op_kind_name(op.kind)] +=
        op.duration_ns();
  }
  std::string parts;
  for (const auto& [label, ns] : by_label) {
    parts += fmt::format("{}{} {:.6g} s", parts.empty() ? "" : ", ", label, ns * 1e-9);
  }
  std::string chain;
  for (size_t i = 0; i < path.size(); ++i) {
    if (path.size() > 2 * kShown && i == kShown) {
      chain += fmt::format(" … ({} more) …", path.size() - 2 * kShown);
      i = path.size() - kShown;
    }
    chain += (chain.empty() ? "" : " ") + path_step_text(path[i]);
  }
  return fmt::format("critical path     {} steps: {}\n                  {}\n", path.size(), parts,
                     chain);
}

}  // namespace

SimMetrics average_steps(const std::vector<SimMetrics>& steps) {
  CF_CHECK(!steps.empty()) << "no steps to average";
  if (steps.size() == 1) return steps.front();
  const double n = static_cast<double>(steps.size());
  SimMetrics avg = steps.front();
  avg.steps = static_cast<int>(steps.size());
  double time = 0, pipeline = 0, tokens = 0, flops = 0, bubble = 0, busy = 0, recompute = 0;
  double mfu_time = 0, chunks = 0, ops = 0, events = 0;
  for (const SimMetrics& s : steps) {
    CF_CHECK_EQ(s.stages.size(), avg.stages.size());
    time += s.step_time_s;
    pipeline += s.pipeline_time_s;
    tokens += static_cast<double>(s.tokens);
    flops += s.model_flops;
    bubble += s.bubble_ratio;
    mfu_time += s.mfu * s.step_time_s;
    chunks += s.chunks;
    ops += s.ops;
    events += static_cast<double>(s.events);
    for (const StageMetrics& st : s.stages) {
      busy += st.busy_s;
      recompute += st.recompute_s;
    }
  }
  avg.step_time_s = time / n;
  avg.pipeline_time_s = pipeline / n;
  avg.tokens = static_cast<int64_t>(tokens / n);
  avg.model_flops = flops / n;
  avg.tokens_per_s = time > 0 ? tokens / time : 0;
  avg.mfu = time > 0 ? mfu_time / time : 0;
  avg.bubble_ratio = bubble / n;
  avg.recompute_share = busy > 0 ? recompute / busy : 0;
  avg.chunks = static_cast<int>(chunks / n);
  avg.ops = static_cast<int>(ops / n);
  avg.events = static_cast<int64_t>(events / n);
  for (size_t i = 0; i < avg.stages.size(); ++i) {
    StageMetrics& st = avg.stages[i];
    st = StageMetrics{};
    st.stage = static_cast<int>(i);
    for (const SimMetrics& s : steps) {
      const StageMetrics& x = s.stages[i];
      st.busy_s += x.busy_s / n;
      st.bubble_ratio += x.bubble_ratio / n;
      st.recompute_s += x.recompute_s / n;
      st.tp_comm_s += x.tp_comm_s / n;
      st.offload_stall_s += x.offload_stall_s / n;
      st.host_traffic_bytes += static_cast<int64_t>(static_cast<double>(x.host_traffic_bytes) / n);
      st.host_peak_bytes = std::max(st.host_peak_bytes, x.host_peak_bytes);
      st.dp_reduce_s = x.dp_reduce_s;
      st.optimizer_s = x.optimizer_s;
      if (x.peak_memory_bytes > st.peak_memory_bytes) {
        st.peak_memory_bytes = x.peak_memory_bytes;
        st.peak_breakdown = x.peak_breakdown;
      }
    }
  }
  double extrapolated = 0;
  for (const SimMetrics& s : steps) {
    extrapolated += s.extrapolated_ops;
    avg.worst_extrapolation = std::max(avg.worst_extrapolation, s.worst_extrapolation);
  }
  avg.extrapolated_ops = static_cast<int>(std::ceil(extrapolated / n));
  for (const SimMetrics& s : steps) {
    avg.host_bytes_per_node = std::max(avg.host_bytes_per_node, s.host_bytes_per_node);
  }
  avg.feasible = true;
  avg.infeasible_reason.clear();
  for (const SimMetrics& s : steps) {
    if (!s.feasible && avg.feasible) {
      avg.feasible = false;
      avg.infeasible_reason = s.infeasible_reason;
    }
  }
  return avg;
}

nlohmann::json metrics_to_json(const SimMetrics& m) {
  nlohmann::json stages = nlohmann::json::array();
  for (const StageMetrics& st : m.stages) {
    const MemoryBreakdown& b = st.peak_breakdown;
    stages.push_back({{"stage", st.stage},
                      {"busy_s", st.busy_s},
                      {"bubble_ratio", st.bubble_ratio},
                      {"recompute_s", st.recompute_s},
                      {"tp_comm_s", st.tp_comm_s},
                      {"dp_reduce_s", st.dp_reduce_s},
                      {"optimizer_s", st.optimizer_s},
                      {"peak_memory_bytes", st.peak_memory_bytes},
                      {"peak_memory_breakdown", breakdown_json(b)}});
    if (m.kv_offload != "none") {
      stages.back()["host_peak_bytes"] = st.host_peak_bytes;
      stages.back()["host_traffic_bytes"] = st.host_traffic_bytes;
      stages.back()["offload_stall_s"] = st.offload_stall_s;
    }
  }
  nlohmann::json out = {{"strategy", m.strategy},
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
                        {"feasible", m.feasible},
                        {"infeasible_reason", m.infeasible_reason},
                        {"stages", stages}};
  if (m.kv_offload != "none") {
    out["kv_offload"] = m.kv_offload;
    out["kv_offload_min_tokens"] = m.kv_offload_min_tokens;
    out["host_bytes_per_node"] = m.host_bytes_per_node;
    out["host_memory_bytes"] = m.host_memory_bytes;
  }
  if (m.worst_case_length > 0) {
    out["worst_case"] = {{"sequence_length", m.worst_case_length},
                         {"peak_memory_bytes", m.worst_case_peak_bytes},
                         {"feasible", m.worst_case_feasible}};
  }
  if (m.cost_model == "calibrated") {
    out["extrapolated_ops"] = m.extrapolated_ops;
    out["worst_extrapolation"] = m.worst_extrapolation;
  }
  if (!m.critical_path.empty()) out["critical_path"] = critical_path_json(m.critical_path);
  return out;
}

int64_t worst_stage_peak_bytes(const SimMetrics& m) {
  int64_t peak = 0;
  for (const StageMetrics& st : m.stages) peak = std::max(peak, st.peak_memory_bytes);
  return peak;
}

std::string metrics_table(const SimMetrics& m) {
  std::string out;
  out += fmt::format("strategy          {} ({} cost model, {} step{})\n", m.strategy, m.cost_model,
                     m.steps, m.steps == 1 ? "" : "s averaged");
  out += fmt::format("step time         {:.6g} s (pipeline {:.6g} s)\n", m.step_time_s,
                     m.pipeline_time_s);
  out += fmt::format("throughput        {:.6g} tokens/s ({} tokens, {} chunks, {} ops)\n",
                     m.tokens_per_s, m.tokens, m.chunks, m.ops);
  out += fmt::format("MFU               {:.2f}% on {} GPUs\n", 100 * m.mfu, m.gpus);
  out += fmt::format("bubble ratio      {:.2f}%\n", 100 * m.bubble_ratio);
  out += fmt::format("recompute share   {:.2f}%\n", 100 * m.recompute_share);
  if (!m.critical_path.empty()) out += critical_path_text(m.critical_path);
  const int64_t peak = worst_stage_peak_bytes(m);
  out += fmt::format("memory            {}\n",
                     m.feasible ? fmt::format("fits (sampled peak {} + {} reserved of {} per GPU)",
                                              format_bytes(peak), format_bytes(m.reserved_bytes),
                                              format_bytes(m.memory_capacity_bytes))
                                : "INFEASIBLE: " + m.infeasible_reason);
  if (m.kv_offload != "none") {
    int64_t traffic = 0;
    double stall = 0;
    for (const StageMetrics& st : m.stages) {
      traffic = std::max(traffic, st.host_traffic_bytes);
      stall = std::max(stall, st.offload_stall_s);
    }
    out += fmt::format(
        "K/V offload       {}: up to {} per node in host memory (of {}), {} over the busiest "
        "stage's host link, {:.6g} s of compute stalled on it\n",
        m.kv_offload, format_bytes(m.host_bytes_per_node), format_bytes(m.host_memory_bytes),
        format_bytes(traffic), stall);
  }
  if (m.worst_case_length > 0) {
    out += fmt::format("worst case        a {}-token sequence in the batch: peak {} ({})\n",
                       m.worst_case_length, format_bytes(m.worst_case_peak_bytes),
                       m.worst_case_feasible ? "fits" : "does not fit");
  }
  if (m.cost_model == "calibrated") {
    out += fmt::format("calibration       {}\n",
                       m.extrapolated_ops == 0
                           ? std::string("every op inside the measured tables")
                           : fmt::format("EXTRAPOLATED: {} ops priced outside the measured "
                                         "tables, up to {:.3g}x beyond them",
                                         m.extrapolated_ops, m.worst_extrapolation));
  }
  out += fmt::format("\n{:>5} {:>11} {:>8} {:>11} {:>11} {:>11} {:>11} {:>11} {:>11} {:>11}\n",
                     "stage", "busy s", "bubble", "recompute s", "peak mem", "weights", "grads",
                     "optimizer", "activations", "store");
  for (const StageMetrics& st : m.stages) {
    const MemoryBreakdown& b = st.peak_breakdown;
    out += fmt::format(
        "{:>5} {:>11.6g} {:>7.2f}% {:>11.6g} {:>11} {:>11} {:>11} {:>11} {:>11} {:>11}\n", st.stage,
        st.busy_s, 100 * st.bubble_ratio, st.recompute_s, format_bytes(st.peak_memory_bytes),
        format_bytes(b.weights), format_bytes(b.gradients), format_bytes(b.optimizer),
        format_bytes(b.activations), format_bytes(b.state_store));
  }
  if (m.kv_offload != "none") {
    out += fmt::format("\n{:>5} {:>13} {:>13} {:>11}   (K/V offload)\n", "stage", "host peak",
                       "host traffic", "stall s");
    for (const StageMetrics& st : m.stages) {
      out +=
          fmt::format("{:>5} {:>13} {:>13} {:>11.6g}\n", st.stage, format_bytes(st.host_peak_bytes),
                      format_bytes(st.host_traffic_bytes), st.offload_stall_s);
    }
  }
  return out;
}

}  // namespace cf

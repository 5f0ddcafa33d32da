// The simulator: turns a Plan into an engine graph (one stream per (DP rank, stage), one
// channel per stage boundary and direction), runs it, then derives metrics, memory and the
// predicted trace. Dependencies follow plan.h exactly.
#include "sim/simulator.h"

#include <fmt/format.h>

#include <algorithm>
#include <string>

#include "core/check.h"
#include "sim/memory_model.h"
#include "sim/memory_timeline.h"
#include "sim/plan/plan_builder.h"

namespace cf {
namespace {

// Where each op of the plan sits: slots per (chunk, model chunk, stage) for its forward
// (F or F*), its recompute R and its backward B, holding engine task ids.
enum Slot { kForwardSlot = 0, kRecomputeSlot = 1, kBackwardSlot = 2 };

struct Layout {
  int pp = 1, vpp = 1;
  int slot(int chunk, int model_chunk, int stage, Slot kind) const {
    return ((chunk * vpp + model_chunk) * pp + stage) * 3 + kind;
  }
};

Slot slot_of(Pass pass) {
  switch (pass) {
    case Pass::kForward:
    case Pass::kForwardKeepKV:
      return kForwardSlot;
    case Pass::kRecompute:
      return kRecomputeSlot;
    case Pass::kBackward:
      return kBackwardSlot;
  }
  return kForwardSlot;
}

std::string op_label(const Op& op) {
  std::string label = fmt::format("op {} ({}{}", op.id, pass_name(op.pass), op.chunk);
  if (op.model_chunk > 0) label += fmt::format(" v{}", op.model_chunk);
  return label + ")";
}

Status check_plan_matches_job(const Job& job, const Plan& plan) {
  auto bad = [&](const std::string& what) {
    return Status::InvalidInput(fmt::format("plan does not match job {}: {}", job.origin, what));
  };
  if (plan.pp != job.parallel.pp)
    return bad(fmt::format("pp {} vs parallel.pp {}", plan.pp, job.parallel.pp));
  if (plan.dp != job.parallel.dp)
    return bad(fmt::format("dp {} vs parallel.dp {}", plan.dp, job.parallel.dp));
  if (plan.vpp != job.parallel.vpp)
    return bad(fmt::format("vpp {} vs parallel.vpp {}", plan.vpp, job.parallel.vpp));
  if (plan.layers != job.model.layers)
    return bad(fmt::format("layers {} vs model.layers {}", plan.layers, job.model.layers));
  if (static_cast<int>(plan.ranks.size()) != plan.dp) return bad("ranks.size() != dp");
  for (const RankPlan& rank : plan.ranks) {
    if (static_cast<int>(rank.stages.size()) != plan.pp) return bad("a rank's stages.size() != pp");
    for (const StagePlan& stage : rank.stages) {
      for (const Op& op : stage.ops) {
        if (op.chunk < 0 || op.chunk >= static_cast<int>(plan.chunks.size()) ||
            op.model_chunk < 0 || op.model_chunk >= plan.vpp) {
          return bad(fmt::format("{} names a chunk or model chunk outside the plan", op_label(op)));
        }
      }
    }
  }
  return Status::Ok();
}

}  // namespace

StatusOr<SimResult> Simulator::run(const Job& job, const Plan& plan, const CostModel& cost,
                                   const SimOptions& options) {
  if (Status status = check_plan_matches_job(job, plan); !status.ok()) return status;
  const int pp = plan.pp, vpp = plan.vpp, dp = plan.dp;
  const int last_virtual = pp * vpp - 1;
  const int64_t layers_per_op = plan.layers_per_model_chunk();
  const Layout layout{pp, vpp};

  // Attention spans of every chunk: (q_len, kv_prefix) per segment.
  std::vector<AttentionSpan> spans;
  std::vector<int> span_begin(plan.chunks.size() + 1, 0);
  for (size_t c = 0; c < plan.chunks.size(); ++c) {
    const Chunk& chunk = plan.chunks[c];
    for (const Segment& seg : chunk.segments) {
      spans.push_back({seg.length, chunk.kind == ChunkKind::kDependent ? seg.offset : 0});
    }
    span_begin[c + 1] = static_cast<int>(spans.size());
  }

  // Tasks: one per op, stream by stream, so a stream's tasks are contiguous.
  graph_.clear();
  graph_.reserve(plan.op_count(), plan.op_count());
  std::vector<int> slots(plan.chunks.size() * vpp * pp * 3, -1);
  std::vector<const Op*> task_op;
  std::vector<OpTime> task_time;
  task_op.reserve(plan.op_count());
  task_time.reserve(plan.op_count());
  std::vector<int> stream_first(dp * pp + 1, 0);
  for (int r = 0; r < dp; ++r) {
    for (int s = 0; s < pp; ++s) {
      const int stream = graph_.add_stream();
      stream_first[stream] = graph_.tasks();
      for (const Op& op : plan.ranks[r].stages[s].ops) {
        const Chunk& chunk = plan.chunks[op.chunk];
        const int virtual_stage = op.model_chunk * pp + s;
        OpQuery query;
        query.pass = op.pass;
        query.dp_rank = r;
        query.stage = s;
        query.model_chunk = op.model_chunk;
        query.layers = layers_per_op;
        query.embedding = virtual_stage == 0;
        query.lm_head = virtual_stage == last_virtual;
        query.tokens = chunk.tokens;
        query.spans = std::span<const AttentionSpan>(
            spans.data() + span_begin[op.chunk], span_begin[op.chunk + 1] - span_begin[op.chunk]);
        const OpTime time = cost.op_time(query);
        const int task = graph_.add_task(stream, time.total_ns);
        int& slot = slots[layout.slot(op.chunk, op.model_chunk, s, slot_of(op.pass))];
        if (slot >= 0) {
          return Status::InvalidInput(
              fmt::format("plan: {} on dp rank {} stage {} repeats a pass "
                          "of its chunk",
                          op_label(op), r, s));
        }
        slot = task;
        task_op.push_back(&op);
        task_time.push_back(time);
      }
    }
  }
  stream_first[dp * pp] = graph_.tasks();
  // Channels: per DP rank, per sending stage, forward (0) and backward (1) direction.
  const int channels_per_rank = pp > 1 ? 2 * pp : 0;
  for (int i = 0; i < dp * channels_per_rank; ++i) graph_.add_channel();
  const int64_t p2p_divisor = job.parallel.sp ? job.parallel.tp : 1;

  // Inputs (plan.h): F/F* from the previous virtual stage's forward, B from the next
  // virtual stage's backward, the last virtual stage's B from its own latest forward.
  for (int task = 0; task < graph_.tasks(); ++task) {
    const Op& op = *task_op[task];
    const int stream = graph_.stream_of(task);
    const int r = stream / pp, s = stream % pp;
    const int virtual_stage = op.model_chunk * pp + s;
    int producer = -1, from_stage = s, direction = 0;
    if (op.pass == Pass::kRecompute) continue;
    if (op.pass != Pass::kBackward) {
      if (virtual_stage == 0) continue;
      from_stage = s > 0 ? s - 1 : pp - 1;
      const int from_chunk = s > 0 ? op.model_chunk : op.model_chunk - 1;
      producer = slots[layout.slot(op.chunk, from_chunk, from_stage, kForwardSlot)];
    } else if (virtual_stage < last_virtual) {
      from_stage = s < pp - 1 ? s + 1 : 0;
      const int from_chunk = s < pp - 1 ? op.model_chunk : op.model_chunk + 1;
      producer = slots[layout.slot(op.chunk, from_chunk, from_stage, kBackwardSlot)];
      direction = 1;
    } else {
      producer = slots[layout.slot(op.chunk, op.model_chunk, s, kRecomputeSlot)];
      if (producer < 0) producer = slots[layout.slot(op.chunk, op.model_chunk, s, kForwardSlot)];
    }
    if (producer < 0) {
      return Status::InvalidInput(fmt::format(
          "plan: {} on dp rank {} stage {} needs the {} of chunk {} on stage {}, which is not "
          "in the plan",
          op_label(op), r, s, op.pass == Pass::kBackward ? "backward or forward" : "forward",
          op.chunk, from_stage));
    }
    if (from_stage == s) {
      graph_.add_input(task, producer, -1, 0);
      continue;
    }
    const int64_t bytes = plan.chunks[op.chunk].tokens * job.model.hidden * 2 / p2p_divisor;
    const int64_t transfer_ns = cost.p2p_time_ns(P2pQuery{r, from_stage, s, bytes});
    const int channel = r * channels_per_rank + from_stage * 2 + direction;
    graph_.add_input(task, producer, channel, transfer_ns);
  }

  engine_.run(graph_, &result_);
  if (result_.deadlocked()) {
    auto name_task = [&](int task) { return op_label(*task_op[task]); };
    auto name_stream = [&](int stream) {
      return fmt::format("dp rank {} stage {}", stream / pp, stream % pp);
    };
    return Status::Runtime(describe_deadlock(graph_, result_, name_task, name_stream));
  }

  // Per (rank, stage): busy time, recompute, TP communication, end of the last op.
  SimResult out;
  SimMetrics& m = out.metrics;
  m.strategy = to_string(plan.strategy);
  m.cost_model = cost.name();
  m.stages.resize(pp);
  std::vector<int64_t> stage_end_ns(pp, 0);
  int64_t busy_total_ns = 0, recompute_total_ns = 0;
  const int64_t pipeline_ns = result_.makespan_ns;
  for (int r = 0; r < dp; ++r) {
    for (int s = 0; s < pp; ++s) {
      const int stream = r * pp + s;
      int64_t busy_ns = 0, recompute_ns = 0, comm_ns = 0;
      for (int task = stream_first[stream]; task < stream_first[stream + 1]; ++task) {
        const OpTime& time = task_time[task];
        busy_ns += time.total_ns;
        comm_ns += time.comm_ns;
        recompute_ns += task_op[task]->pass == Pass::kRecompute ? time.total_ns : time.recompute_ns;
        stage_end_ns[s] = std::max(stage_end_ns[s], result_.end_ns[task]);
      }
      StageMetrics& st = m.stages[s];
      st.busy_s += busy_ns * 1e-9 / dp;
      st.recompute_s += recompute_ns * 1e-9 / dp;
      st.tp_comm_s += comm_ns * 1e-9 / dp;
      if (pipeline_ns > 0)
        st.bubble_ratio += (1.0 - static_cast<double>(busy_ns) / pipeline_ns) / dp;
      busy_total_ns += busy_ns;
      recompute_total_ns += recompute_ns;
    }
  }
  int64_t step_ns = pipeline_ns;
  std::vector<int64_t> dp_reduce_ns(pp), optimizer_ns(pp);
  for (int s = 0; s < pp; ++s) {
    m.stages[s].stage = s;
    dp_reduce_ns[s] = cost.dp_reduce_time_ns(s);
    optimizer_ns[s] = cost.optimizer_time_ns(s);
    m.stages[s].dp_reduce_s = dp_reduce_ns[s] * 1e-9;
    m.stages[s].optimizer_s = optimizer_ns[s] * 1e-9;
    step_ns = std::max(step_ns, stage_end_ns[s] + dp_reduce_ns[s] + optimizer_ns[s]);
  }

  // Memory: each (rank, stage) replayed over its own stream.
  const MemoryModel memory(job.model, job.parallel, layers_per_op,
                           job.cost_model.kind == CostModelKind::kCalibrated
                               ? MemoryAccounting::kExecutor
                               : MemoryAccounting::kMegatron);
  if (options.record_trace) out.trace.emplace();
  Trace* trace = out.trace ? &*out.trace : nullptr;
  std::vector<MemorySample>* samples =
      trace && options.record_memory_timeline ? &trace->memory : nullptr;
  int64_t worst_min = 0, worst_left = 0;
  for (int r = 0; r < dp; ++r) {
    for (int s = 0; s < pp; ++s) {
      const int first = stream_first[r * pp + s];
      const StageMemoryReplay replay = replay_stage_memory(
          memory, plan, r, s, plan.ranks[r].stages[s].ops, result_.start_ns.data() + first,
          result_.end_ns.data() + first, samples);
      StageMetrics& st = m.stages[s];
      if (replay.peak.total() > st.peak_memory_bytes) {
        st.peak_memory_bytes = replay.peak.total();
        st.peak_breakdown = replay.peak;
      }
      worst_min = std::min(worst_min, replay.min_category_bytes);
      worst_left = std::max(worst_left, std::abs(replay.end_dynamic_bytes));
      if (trace) {
        auto& peak = trace->peak_memory[{r, s}];
        peak = {{"weights", replay.peak.weights},
                {"gradients", replay.peak.gradients},
                {"optimizer", replay.peak.optimizer},
                {"activations", replay.peak.activations},
                {"state_store", replay.peak.state_store},
                {"transient", replay.peak.transient},
                {"total", replay.peak.total()}};
      }
    }
  }
  // A valid plan frees what it allocates and never frees what it does not hold.
  m.memory_min_category_bytes = worst_min;
  m.memory_left_bytes = worst_left;
  if (worst_min < 0 || worst_left != 0) {
    return Status::InvalidInput(fmt::format(
        "plan: memory replay went to {} B and left {} B allocated at the end of the step: an "
        "op frees what its chunk never held, or a chunk is never backwarded",
        worst_min, worst_left));
  }

  // Step metrics.
  const ModelConfig& model = job.model;
  const double linear =
      model.linear_flops_per_token_per_layer() * model.layers + model.lm_head_flops_per_token();
  const double attention = model.attention_flops_per_pair_per_layer() * model.layers;
  for (const Chunk& chunk : plan.chunks) {
    // Model FLOPs: forward + backward = 3 × forward (PaLM App. B; recompute not counted).
    m.model_flops += 3.0 * (chunk.tokens * linear + chunk.attention_pairs() * attention);
  }
  m.tokens = plan.total_tokens();
  m.chunks = static_cast<int>(plan.chunks.size());
  m.ops = plan.op_count();
  m.events = result_.events;
  m.gpus = job.parallel.tp * pp * dp;
  m.step_time_s = step_ns * 1e-9;
  m.pipeline_time_s = pipeline_ns * 1e-9;
  m.tokens_per_s = step_ns > 0 ? m.tokens / m.step_time_s : 0;
  m.mfu =
      step_ns > 0 ? m.model_flops / (m.step_time_s * job.cluster.gpu.peak_bf16_flops * m.gpus) : 0;
  m.bubble_ratio = pipeline_ns > 0 ? 1.0 - static_cast<double>(busy_total_ns) /
                                               (static_cast<double>(dp) * pp * pipeline_ns)
                                   : 0;
  m.recompute_share =
      busy_total_ns > 0 ? static_cast<double>(recompute_total_ns) / busy_total_ns : 0;
  for (const OpTime& time : task_time) {
    if (time.extrapolation > 1) {
      ++m.extrapolated_ops;
      m.worst_extrapolation = std::max(m.worst_extrapolation, time.extrapolation);
    }
  }
  m.memory_capacity_bytes = job.cluster.gpu.hbm_bytes;
  m.reserved_bytes = job.cluster.gpu.reserved_bytes;
  const StageMetrics* worst = &m.stages[0];
  for (const StageMetrics& st : m.stages) {
    if (st.peak_memory_bytes > worst->peak_memory_bytes) worst = &st;
  }
  if (worst->peak_memory_bytes + m.reserved_bytes > m.memory_capacity_bytes) {
    const MemoryBreakdown& b = worst->peak_breakdown;
    m.feasible = false;
    m.infeasible_reason = fmt::format(
        "out of memory: stage {} peaks at {} (model states {}, activations {}, state store {}, "
        "transient {}) + {} reserved > {} of {}",
        worst->stage, format_bytes(worst->peak_memory_bytes),
        format_bytes(b.weights + b.gradients + b.optimizer), format_bytes(b.activations),
        format_bytes(b.state_store), format_bytes(b.transient), format_bytes(m.reserved_bytes),
        format_bytes(m.memory_capacity_bytes), job.cluster.gpu.name);
  }

  if (trace) {
    trace->source = "predicted";
    trace->ops.reserve(graph_.tasks() + 2 * dp * pp);
    for (int task = 0; task < graph_.tasks(); ++task) {
      const Op& op = *task_op[task];
      const Chunk& chunk = plan.chunks[op.chunk];
      const int stream = graph_.stream_of(task);
      TraceOp t;
      t.dp_rank = stream / pp;
      t.stage = stream % pp;
      t.kind = "compute";
      t.pass = pass_name(op.pass);
      t.chunk = op.chunk;
      t.model_chunk = op.model_chunk;
      t.op_id = op.id;
      t.start_ns = result_.start_ns[task];
      t.end_ns = result_.end_ns[task];
      t.tokens = chunk.tokens;
      t.group = chunk.group;
      t.index = chunk.index;
      trace->ops.push_back(t);
    }
    for (int r = 0; r < dp; ++r) {
      for (int s = 0; s < pp; ++s) {
        TraceOp t;
        t.dp_rank = r;
        t.stage = s;
        t.kind = "dp_reduce";
        t.start_ns = stage_end_ns[s];
        t.end_ns = t.start_ns + dp_reduce_ns[s];
        if (t.end_ns > t.start_ns) trace->ops.push_back(t);
        t.kind = "optimizer";
        t.start_ns = t.end_ns;
        t.end_ns = t.start_ns + optimizer_ns[s];
        if (t.end_ns > t.start_ns) trace->ops.push_back(t);
      }
    }
    trace->metrics = {{"step_time_s", m.step_time_s},   {"pipeline_time_s", m.pipeline_time_s},
                      {"tokens_per_s", m.tokens_per_s}, {"mfu", m.mfu},
                      {"bubble_ratio", m.bubble_ratio}, {"recompute_share", m.recompute_share}};
  }
  return out;
}

StatusOr<SimResult> simulate(const Job& job, const Plan& plan, const CostModel& cost,
                             const SimOptions& options) {
  Simulator simulator;
  return simulator.run(job, plan, cost, options);
}

StatusOr<SimResult> simulate_job(const Job& job, const SimOptions& options) {
  StatusOr<std::unique_ptr<CostModel>> cost = make_cost_model(job);
  if (!cost.ok()) return cost.status();
  Simulator simulator;
  std::vector<SimMetrics> steps;
  SimResult first;
  for (int step = 0; step < job.training.steps; ++step) {
    StatusOr<Plan> plan = build_plan(job, step);
    if (!plan.ok()) return plan.status();
    StatusOr<SimResult> result =
        simulator.run(job, *plan, **cost, step == 0 ? options : SimOptions{});
    if (!result.ok()) return result.status();
    steps.push_back(result->metrics);
    if (step == 0) first = std::move(*result);
  }
  first.metrics = average_steps(steps);
  return first;
}

}  // namespace cf

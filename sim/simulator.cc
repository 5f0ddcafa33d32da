// The simulator: a Plan, indexed once (plan_index.h), becomes an engine graph — one stream per
// (DP rank, stage), one task per op, one channel per stage boundary and direction — which the
// engine runs; metrics, memory, the critical path and the predicted trace are read off the run.
// Simulator::run tells the story; each step below is one named function.
#include "sim/simulator.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <functional>
#include <numeric>
#include <string>
#include <vector>

#include "core/check.h"
#include "core/limits.h"
#include "core/numeric.h"
#include "sim/critical_path.h"
#include "sim/memory_model.h"
#include "sim/memory_timeline.h"
#include "sim/plan/plan_builder.h"
#include "sim/plan/plan_checker.h"

namespace cf {

struct Simulator::Step {
  const Job& job;
  const Plan& plan;
  const CostModel& cost;
  const SimOptions& options;
  const PlanIndex& index;
  int pp = 1, dp = 1;
  std::vector<int64_t> stage_end_ns;  // per stage: its last op's end, over DP ranks
  std::vector<int64_t> dp_reduce_ns;  // per stage, after stage_end_ns
  std::vector<int64_t> optimizer_ns;  // per stage, after its DP reduction
  int64_t busy_total_ns = 0;
  int64_t recompute_total_ns = 0;
  int64_t step_ns = 0;
};

namespace {

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
  if (plan.layers_per_stage != job.parallel.layers_per_stage) {
    return bad(fmt::format("layers per stage [{}] vs parallel.layers_per_stage [{}]",
                           fmt::join(plan.layers_per_stage, ", "),
                           fmt::join(job.parallel.layers_per_stage, ", ")));
  }
  if (static_cast<int>(plan.ranks.size()) != plan.dp) return bad("ranks.size() != dp");
  for (const RankPlan& rank : plan.ranks) {
    if (static_cast<int>(rank.stages.size()) != plan.pp) return bad("a rank's stages.size() != pp");
  }
  return Status::Ok();
}

// A plan over the device's memory is a result, not an error: the worst stage and its reason.
void judge_feasibility(const Job& job, SimMetrics* m) {
  m->memory_capacity_bytes = job.cluster.gpu.hbm_bytes;
  m->reserved_bytes = job.cluster.gpu.reserved_bytes;
  const StageMetrics* worst = &m->stages[0];
  for (const StageMetrics& st : m->stages) {
    if (st.peak_memory_bytes > worst->peak_memory_bytes) worst = &st;
  }
  // Offloaded K/V: the node's GPUs together within its host memory — bounded by the busiest
  // stage's host peak on every GPU of the node (the GPUs of a node may hold other stages).
  int64_t host_peak = 0;
  for (const StageMetrics& st : m->stages) host_peak = std::max(host_peak, st.host_peak_bytes);
  const int node_gpus = std::min(job.cluster.gpus_per_node, job.cluster.gpus);
  m->host_bytes_per_node = host_peak * node_gpus;
  m->host_memory_bytes = job.cluster.gpu.host_memory_bytes;
  if (host_peak > 0 && m->host_bytes_per_node > m->host_memory_bytes) {
    m->feasible = false;
    m->infeasible_reason = fmt::format(
        "out of host memory: offloaded K/V of up to {} per GPU × {} GPUs per node = {} > {} of "
        "host memory per node",
        format_bytes(host_peak), node_gpus, format_bytes(m->host_bytes_per_node),
        format_bytes(m->host_memory_bytes));
    return;
  }
  if (worst->peak_memory_bytes + m->reserved_bytes <= m->memory_capacity_bytes) return;
  const MemoryBreakdown& b = worst->peak_breakdown;
  m->feasible = false;
  m->infeasible_reason = fmt::format(
      "out of memory: stage {} peaks at {} (model states {}, activations {}, state store {}, "
      "transient {}) + {} reserved > {} of {}",
      worst->stage, format_bytes(worst->peak_memory_bytes), format_bytes(b.model_states()),
      format_bytes(b.activations), format_bytes(b.state_store), format_bytes(b.transient),
      format_bytes(m->reserved_bytes), format_bytes(m->memory_capacity_bytes),
      job.cluster.gpu.name);
}

// A run that ends before the step's times (memory only, over the memory budget, or given up):
// timed = false, with what it knows of the step.
void stop_untimed(const Job& job, const Plan& plan, const CostModel& cost, SimMetrics* m) {
  m->timed = false;
  m->strategy = to_string(plan.strategy);
  m->cost_model = cost.name();
  m->gpus = job.parallel.tp * job.parallel.cp * plan.pp * plan.dp;
  judge_feasibility(job, m);
}

}  // namespace

StatusOr<SimResult> Simulator::run(const Job& job, const Plan& plan, const CostModel& cost,
                                   const SimOptions& options) {
  CF_RETURN_IF_ERROR(check_plan_matches_job(job, plan));
  // Activations cross stage boundaries in the priced machine's element type, split over tp with
  // sequence parallelism.
  const WireFormat wire{job.model.hidden, cost.message_element_bytes(),
                        job.parallel.sp ? job.parallel.tp : 1};
  CF_RETURN_IF_ERROR(index_.rebuild(plan, wire));
  Step step{job, plan, cost, options, index_, plan.pp, plan.dp, {}, {}, {}, 0, 0, 0};
  SimResult out;
  if (options.record_trace) out.trace.emplace();
  out.metrics.stages.assign(static_cast<size_t>(plan.pp), StageMetrics{});
  for (int s = 0; s < plan.pp; ++s) out.metrics.stages[static_cast<size_t>(s)].stage = s;
  // A stage's peak does not depend on time (memory_timeline.h), only the timeline does.
  const bool timeline = out.trace && options.record_memory_timeline;
  if (!timeline) {
    CF_RETURN_IF_ERROR(replay_memory(step, false, &out));
    bool over = false;
    for (const StageMetrics& st : out.metrics.stages) {
      over = over || (options.memory_budget_bytes > 0 &&
                      st.peak_memory_bytes > options.memory_budget_bytes);
    }
    if (options.memory_only || over) {
      stop_untimed(job, plan, cost, &out.metrics);
      return out;
    }
  }
  prepare_prices(step);
  task_time_.assign(static_cast<size_t>(index_.size()), OpTime{});
  if (options.give_up_above_ns > 0 && !options.critical_path && !out.trace) {
    CF_ASSIGN_OR_RETURN(const bool whole, run_by_rank(step, &out.metrics));
    if (!whole) return out;
  } else {
    build_graph(step, 0, step.dp);
    wire_inputs(step, 0, step.dp);
    CF_RETURN_IF_ERROR(run_engine(step, 0, graph_, &result_));
  }
  collect_stage_metrics(step, &out.metrics);
  if (timeline) CF_RETURN_IF_ERROR(replay_memory(step, true, &out));
  collect_step_metrics(step, &out.metrics);
  judge_feasibility(job, &out.metrics);
  if (options.critical_path) trace_critical_path(step, &out.metrics);
  if (out.trace) emit_trace(step, &out);
  return out;
}

// One price slot per chunk, except that pieces of split sequences alike in tokens, offset
// (their one span) and offload share one: their ops price alike.
void Simulator::prepare_prices(const Step& step) {
  price_slot_.resize(step.plan.chunks.size());
  piece_slots_.clear();
  const KvOffloadPolicy offload = kv_offload_policy(step.job);
  int slots = 0;
  for (size_t c = 0; c < step.plan.chunks.size(); ++c) {  // op.chunk: a position in chunks
    const Chunk& chunk = step.plan.chunks[c];
    int& slot = price_slot_[c];
    if (chunk.kind == ChunkKind::kDependent && chunk.segments.size() == 1) {
      auto [it, fresh] = piece_slots_.try_emplace(
          {chunk.tokens, chunk.segments.front().offset, step.plan.offloaded(chunk, offload)},
          slots);
      slot = it->second;
      if (!fresh) continue;
    } else {
      slot = slots;
    }
    ++slots;
  }
  chunk_prices_.resize(static_cast<size_t>(slots));
  for (std::vector<PricedOp>& prices : chunk_prices_) prices.clear();
}

// One task per op of DP ranks [first, last), stream by stream in index order, so task t is
// op t + stream_begin(first, 0) of the index; each op's time into task_time_.
void Simulator::build_graph(Step& step, int first, int last) {
  const PlanIndex& index = step.index;
  const int base = index.stream_begin(first, 0);
  const int ops = (last == step.dp ? index.size() : index.stream_begin(last, 0)) - base;
  graph_.clear();
  graph_.reserve(ops, ops);
  const KvOffloadPolicy offload = kv_offload_policy(step.job);
  for (int r = first; r < last; ++r) {
    for (int s = 0; s < step.pp; ++s) {
      const int stream = graph_.add_stream();
      for (int i = index.stream_begin(r, s); i < index.stream_end(r, s); ++i) {
        const IndexedOp& entry = index.op(i);
        const Op& op = *entry.op;
        const Chunk& chunk = step.plan.chunks[static_cast<size_t>(op.chunk)];
        OpQuery query = op_query(op.pass, r, s, op.model_chunk, entry.place, chunk.tokens,
                                 index.spans(op.chunk));
        query.dependent = chunk.kind == ChunkKind::kDependent;
        query.offloaded = step.plan.offloaded(chunk, offload);
        const OpTime& time = price(step.cost, query, op.chunk);
        CF_CHECK_EQ(graph_.add_task(stream, time.total_ns), i - base);
        task_time_[static_cast<size_t>(i)] = time;
      }
    }
  }
}

const OpTime& Simulator::price(const CostModel& cost, const OpQuery& query, int chunk) {
  std::vector<PricedOp>& prices =
      chunk_prices_[static_cast<size_t>(price_slot_[static_cast<size_t>(chunk)])];
  for (const PricedOp& p : prices) {
    if (p.pass == query.pass && p.layers == query.layers && p.embedding == query.embedding &&
        p.lm_head == query.lm_head) {
      return p.time;
    }
  }
  prices.push_back(
      PricedOp{query.pass, query.layers, query.embedding, query.lm_head, cost.op_time(query)});
  return prices.back().time;
}

// Each op's input (plan_index.h): on its own stage it follows its producer; across stages it
// travels over the channel of its rank, sending stage and direction (forward 0, backward 1).
// The ops of DP ranks [first, last), as build_graph numbered them.
void Simulator::wire_inputs(Step& step, int first, int last) {
  const PlanIndex& index = step.index;
  const int channels_per_rank = step.pp > 1 ? 2 * step.pp : 0;
  for (int i = 0; i < (last - first) * channels_per_rank; ++i) graph_.add_channel();
  const int base = index.stream_begin(first, 0);
  const int end = last == step.dp ? index.size() : index.stream_begin(last, 0);
  input_edge_.assign(static_cast<size_t>(index.size()), -1);
  for (int i = base; i < end; ++i) {
    const IndexedOp& entry = index.op(i);
    if (entry.input < 0) continue;
    input_edge_[static_cast<size_t>(i)] = graph_.inputs();
    if (!entry.input_crosses) {
      graph_.add_input(i - base, entry.input - base, -1, 0);
      continue;
    }
    const int from = index.op(entry.input).stage;
    const int direction = entry.op->pass == Pass::kBackward ? 1 : 0;
    const int64_t transfer_ns =
        step.cost.p2p_time_ns(P2pQuery{entry.dp_rank, from, entry.stage, entry.input_bytes});
    const int channel = (entry.dp_rank - first) * channels_per_rank + from * 2 + direction;
    graph_.add_input(i - base, entry.input - base, channel, transfer_ns);
  }
}

// Runs the graph of DP ranks from `first` on into *result; a deadlock names the ops and ranks.
Status Simulator::run_engine(Step& step, int first, const EngineGraph& graph,
                             EngineResult* result) {
  if (graph.total_ns() >= kMaxSimulatedNs) {
    return Status::InvalidInput(fmt::format(
        "the step's op times add up to more than {} ns (146 years), past what the simulator "
        "represents: the model, cluster or cost table make ops absurdly slow",
        kMaxSimulatedNs));
  }
  engine_.run(graph, result);
  if (!result->deadlocked()) return Status::Ok();
  const int base = step.index.stream_begin(first, 0);
  auto name_task = [&](int task) { return op_label(*step.index.op(task + base).op); };
  auto name_stream = [&](int stream) {
    return fmt::format("dp rank {} stage {}", first + stream / step.pp, stream % step.pp);
  };
  return Status::Runtime(describe_deadlock(graph, *result, name_task, name_stream));
}

// The DP ranks' pipelines are independent until the DP reduction: each runs on its own graph,
// the heaviest rank (by the plan's work estimate) first, into the whole step's result_. After
// each rank the step is at least the longest pipeline so far and each stage's end so far plus
// its reduction (exposed as far as the ranks run so far show) and optimizer step; once that
// exceeds options.give_up_above_ns the run stops: false, with *m timed = false and that bound
// as its step time. true when every rank ran.
StatusOr<bool> Simulator::run_by_rank(Step& step, SimMetrics* m) {
  const PlanIndex& index = step.index;
  result_.start_ns.assign(static_cast<size_t>(index.size()), -1);
  result_.end_ns.assign(static_cast<size_t>(index.size()), -1);
  result_.transfer_start_ns.clear();
  result_.arrival_ns.clear();
  result_.deadlock.clear();
  result_.makespan_ns = 0;
  result_.events = 0;
  const double pair_weight = dp_pair_weight(step.job.model);
  std::vector<double> work(static_cast<size_t>(step.dp), 0.0);
  for (const Chunk& chunk : step.plan.chunks) {
    work[static_cast<size_t>(chunk.dp_rank)] += chunk_work(chunk, pair_weight);
  }
  std::vector<int> order(static_cast<size_t>(step.dp));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) {
    return work[static_cast<size_t>(a)] > work[static_cast<size_t>(b)];
  });
  std::vector<char> ran(static_cast<size_t>(step.dp), 0);
  std::vector<int64_t> stage_end(static_cast<size_t>(step.pp), 0);
  for (const int r : order) {
    build_graph(step, r, r + 1);
    wire_inputs(step, r, r + 1);
    CF_RETURN_IF_ERROR(run_engine(step, r, graph_, &rank_result_));
    const int base = index.stream_begin(r, 0);
    std::copy(rank_result_.start_ns.begin(), rank_result_.start_ns.end(),
              result_.start_ns.begin() + base);
    std::copy(rank_result_.end_ns.begin(), rank_result_.end_ns.end(),
              result_.end_ns.begin() + base);
    result_.makespan_ns = std::max(result_.makespan_ns, rank_result_.makespan_ns);
    result_.events += rank_result_.events;
    ran[static_cast<size_t>(r)] = 1;
    int64_t bound_ns = result_.makespan_ns;
    for (int s = 0; s < step.pp; ++s) {
      const int last = index.stream_end(r, s) - 1;
      if (last >= index.stream_begin(r, s)) {
        stage_end[static_cast<size_t>(s)] =
            std::max(stage_end[static_cast<size_t>(s)], result_.end_ns[static_cast<size_t>(last)]);
      }
      bound_ns = std::max(bound_ns, stage_end[static_cast<size_t>(s)] +
                                        exposed_dp_reduce_ns(step, s, &ran) +
                                        step.cost.optimizer_time_ns(s));
    }
    if (bound_ns > step.options.give_up_above_ns) {
      m->step_time_s = static_cast<double>(bound_ns) * 1e-9;
      stop_untimed(step.job, step.plan, step.cost, m);
      return false;
    }
  }
  return true;
}

// Per stage (means over DP ranks): busy, recompute and TP communication time, bubble; the end
// of its last op, then its DP reduction and optimizer step, which set the step time.
void Simulator::collect_stage_metrics(Step& step, SimMetrics* m) {
  const int pp = step.pp, dp = step.dp;
  step.stage_end_ns.assign(static_cast<size_t>(pp), 0);
  const int64_t pipeline_ns = result_.makespan_ns;
  for (int r = 0; r < dp; ++r) {
    for (int s = 0; s < pp; ++s) {
      int64_t busy_ns = 0, recompute_ns = 0, comm_ns = 0, stall_ns = 0, host_bytes = 0;
      for (int i = step.index.stream_begin(r, s); i < step.index.stream_end(r, s); ++i) {
        const OpTime& time = task_time_[static_cast<size_t>(i)];
        busy_ns += time.total_ns;
        comm_ns += time.comm_ns;
        stall_ns += time.offload_stall_ns;
        host_bytes += time.host_bytes;
        recompute_ns +=
            step.index.op(i).op->pass == Pass::kRecompute ? time.total_ns : time.recompute_ns;
        step.stage_end_ns[s] = std::max(step.stage_end_ns[s], result_.end_ns[i]);
      }
      StageMetrics& st = m->stages[static_cast<size_t>(s)];
      st.busy_s += busy_ns * 1e-9 / dp;
      st.recompute_s += recompute_ns * 1e-9 / dp;
      st.tp_comm_s += comm_ns * 1e-9 / dp;
      st.offload_stall_s += stall_ns * 1e-9 / dp;
      st.host_traffic_bytes += host_bytes / dp;
      if (pipeline_ns > 0)
        st.bubble_ratio += (1.0 - static_cast<double>(busy_ns) / pipeline_ns) / dp;
      step.busy_total_ns += busy_ns;
      step.recompute_total_ns += recompute_ns;
    }
  }
  step.step_ns = pipeline_ns;
  step.dp_reduce_ns.assign(static_cast<size_t>(pp), 0);
  step.optimizer_ns.assign(static_cast<size_t>(pp), 0);
  for (int s = 0; s < pp; ++s) {
    StageMetrics& st = m->stages[static_cast<size_t>(s)];
    st.stage = s;
    step.dp_reduce_ns[s] = exposed_dp_reduce_ns(step, s);
    step.optimizer_ns[s] = step.cost.optimizer_time_ns(s);
    st.dp_reduce_s = step.dp_reduce_ns[s] * 1e-9;
    st.optimizer_s = step.optimizer_ns[s] * 1e-9;
    step.step_ns =
        std::max(step.step_ns, step.stage_end_ns[s] + step.dp_reduce_ns[s] + step.optimizer_ns[s]);
  }
}

// A stage's gradient reduction after its last op; with overlap.grad_reduce (Megatron's
// --overlap-grad-reduce) the buckets are reduced while the last backward of the step still
// computes the earlier layers' gradients, so only what outlasts that backward is exposed.
// With `ran`, over those ranks only: never more than over all of them (a lower bound).
int64_t Simulator::exposed_dp_reduce_ns(const Step& step, int stage,
                                        const std::vector<char>* ran) const {
  const int64_t reduce_ns = step.cost.dp_reduce_time_ns(stage);
  if (!step.job.overlap.grad_reduce) return reduce_ns;
  int64_t window_ns = reduce_ns;
  for (int r = 0; r < step.dp; ++r) {
    if (ran != nullptr && !(*ran)[static_cast<size_t>(r)]) continue;
    const int last = step.index.stream_end(r, stage) - 1;
    if (last < step.index.stream_begin(r, stage)) continue;
    window_ns = std::min(window_ns, task_time_[static_cast<size_t>(last)].total_ns);
  }
  return std::max<int64_t>(0, reduce_ns - window_ns);
}

// Each (rank, stage) replayed over its own stream with the job's memory source; the worst DP
// rank's peak per stage. A valid plan frees what it allocates and never frees what it does
// not hold: anything else is a plan that is not sound.
Status Simulator::replay_memory(Step& step, bool timed, SimResult* out) {
  CF_ASSIGN_OR_RETURN(std::unique_ptr<OpMemorySource> memory, make_memory_source(step.job));
  Trace* trace = out->trace ? &*out->trace : nullptr;
  std::vector<MemorySample>* samples = timed ? &trace->memory : nullptr;
  static const std::vector<int64_t> kNoTimes;
  SimMetrics& m = out->metrics;
  int64_t worst_min = 0, worst_left = 0;
  for (int r = 0; r < step.dp; ++r) {
    for (int s = 0; s < step.pp; ++s) {
      const StageMemoryReplay replay =
          replay_stage_memory(*memory, step.index, r, s, timed ? result_.start_ns : kNoTimes,
                              timed ? result_.end_ns : kNoTimes, samples);
      if (replay.too_large) {
        return Status::InvalidInput(fmt::format(
            "stage {} of DP rank {} would hold more than 2^62 bytes (4 EiB) in all, past what "
            "the simulator represents: the model, batch or chunk sizes are absurd",
            s, r));
      }
      StageMetrics& st = m.stages[static_cast<size_t>(s)];
      if (replay.peak.total() > st.peak_memory_bytes) {
        st.peak_memory_bytes = replay.peak.total();
        st.peak_breakdown = replay.peak;
      }
      st.host_peak_bytes = std::max(st.host_peak_bytes, replay.host_peak_bytes);
      worst_min = std::min(worst_min, replay.min_category_bytes);
      worst_left = std::max(worst_left, std::abs(replay.end_dynamic_bytes));
      if (trace) trace->peak_memory[{r, s}] = replay.peak;
    }
  }
  m.memory_min_category_bytes = worst_min;
  m.memory_left_bytes = worst_left;
  if (worst_min < 0 || worst_left != 0) {
    return Status::InvalidInput(fmt::format(
        "plan: memory replay went to {} B and left {} B allocated at the end of the step: an "
        "op frees what its chunk never held, or a chunk is never backwarded",
        worst_min, worst_left));
  }
  return Status::Ok();
}

// The step's totals and ratios (DESIGN.md §6).
void Simulator::collect_step_metrics(Step& step, SimMetrics* m) {
  const Job& job = step.job;
  const Plan& plan = step.plan;
  const ModelConfig& model = job.model;
  const int64_t pipeline_ns = result_.makespan_ns, step_ns = step.step_ns;
  m->strategy = to_string(plan.strategy);
  m->cost_model = step.cost.name();
  const double linear =
      model.linear_flops_per_token_per_layer() * model.layers + model.lm_head_flops_per_token();
  const double attention = model.attention_flops_per_pair_per_layer() * model.layers;
  for (const Chunk& chunk : plan.chunks) {
    // Model FLOPs: forward + backward = 3 × forward (PaLM App. B; recompute not counted).
    m->model_flops += 3.0 * (chunk.tokens * linear + chunk.attention_pairs() * attention);
  }
  m->tokens = plan.total_tokens();
  m->chunks = static_cast<int>(plan.chunks.size());
  m->ops = plan.op_count();
  m->events = result_.events;
  m->gpus = job.parallel.tp * job.parallel.cp * step.pp * step.dp;
  m->step_time_s = step_ns * 1e-9;
  m->pipeline_time_s = pipeline_ns * 1e-9;
  m->tokens_per_s = step_ns > 0 ? m->tokens / m->step_time_s : 0;
  m->mfu = step_ns > 0
               ? m->model_flops / (m->step_time_s * job.cluster.gpu.peak_bf16_flops * m->gpus)
               : 0;
  m->bubble_ratio = pipeline_ns > 0
                        ? 1.0 - static_cast<double>(step.busy_total_ns) /
                                    (static_cast<double>(step.dp) * step.pp * pipeline_ns)
                        : 0;
  m->recompute_share = step.busy_total_ns > 0
                           ? static_cast<double>(step.recompute_total_ns) / step.busy_total_ns
                           : 0;
  for (const OpTime& time : task_time_) {
    if (time.extrapolation > 1) {
      ++m->extrapolated_ops;
      m->worst_extrapolation = std::max(m->worst_extrapolation, time.extrapolation);
    }
  }
}

// The stage whose last op plus DP reduction and optimizer ends the step, and the chain of ops
// and transfers (critical_path.h) that ends with that last op.
void Simulator::trace_critical_path(Step& step, SimMetrics* m) {
  int stage = 0;
  for (int s = 1; s < step.pp; ++s) {
    if (step.stage_end_ns[s] + step.dp_reduce_ns[s] + step.optimizer_ns[s] >
        step.stage_end_ns[stage] + step.dp_reduce_ns[stage] + step.optimizer_ns[stage]) {
      stage = s;
    }
  }
  int last = -1, rank = 0;
  for (int r = 0; r < step.dp && last < 0; ++r) {
    for (int i = step.index.stream_begin(r, stage); i < step.index.stream_end(r, stage); ++i) {
      if (result_.end_ns[i] == step.stage_end_ns[stage]) last = i, rank = r;
    }
  }
  std::vector<TraceOp>& path = m->critical_path;
  path.clear();
  if (last >= 0) {
    for (const CriticalStep& c : critical_path(graph_, result_, last)) {
      path.push_back(c.kind == CriticalStep::Kind::kTask
                         ? compute_trace_op(step.index, c.id, c.start_ns, c.end_ns)
                         : message_trace_op(step.index, graph_.edge(c.id).consumer, OpKind::kSend,
                                            c.start_ns, c.end_ns));
    }
  }
  int64_t at = step.stage_end_ns[stage];
  for (const auto& [kind, ns] : {std::pair{OpKind::kDpReduce, step.dp_reduce_ns[stage]},
                                 std::pair{OpKind::kOptimizer, step.optimizer_ns[stage]}}) {
    if (ns == 0) continue;
    TraceOp t;
    t.kind = kind;
    t.dp_rank = rank;
    t.stage = stage;
    t.start_ns = at;
    t.end_ns = at += ns;
    path.push_back(t);
  }
}

// Every op, then each message (its transfer on the sender's side, the receiver's wait for it
// on the other), then each stage's DP reduction and optimizer step.
void Simulator::emit_trace(Step& step, SimResult* out) {
  Trace& trace = *out->trace;
  const PlanIndex& index = step.index;
  trace.source = "predicted";
  trace.ops.reserve(static_cast<size_t>(3 * index.size() + 2 * step.dp * step.pp));
  for (int i = 0; i < index.size(); ++i) {
    TraceOp op = compute_trace_op(index, i, result_.start_ns[i], result_.end_ns[i]);
    op.class_ns =
        task_time_[static_cast<size_t>(i)].class_ns;  // of the whole op: it runs as priced
    CF_CHECK(!op.class_ns || op.duration_ns() == task_time_[static_cast<size_t>(i)].total_ns)
        << "op " << i << " ran " << op.duration_ns() << " ns, priced "
        << task_time_[static_cast<size_t>(i)].total_ns;
    trace.ops.push_back(std::move(op));
  }
  for (int i = 0; i < index.size(); ++i) {
    if (!index.op(i).input_crosses) continue;
    const int edge = input_edge_[static_cast<size_t>(i)];
    const int64_t arrival = result_.arrival_ns[edge];
    trace.ops.push_back(
        message_trace_op(index, i, OpKind::kSend, result_.transfer_start_ns[edge], arrival));
    // The receiver is ready once its previous op ends; it waits until the message is there.
    const bool first = i == index.stream_begin(index.op(i).dp_rank, index.op(i).stage);
    const int64_t ready = first ? 0 : result_.end_ns[i - 1];
    trace.ops.push_back(message_trace_op(index, i, OpKind::kRecv, ready, std::max(ready, arrival)));
  }
  for (int r = 0; r < step.dp; ++r) {
    for (int s = 0; s < step.pp; ++s) {
      TraceOp t;
      t.dp_rank = r;
      t.stage = s;
      t.kind = OpKind::kDpReduce;
      t.start_ns = step.stage_end_ns[s];
      t.end_ns = t.start_ns + step.dp_reduce_ns[s];
      if (t.end_ns > t.start_ns) trace.ops.push_back(t);
      t.kind = OpKind::kOptimizer;
      t.start_ns = t.end_ns;
      t.end_ns = t.start_ns + step.optimizer_ns[s];
      if (t.end_ns > t.start_ns) trace.ops.push_back(t);
    }
  }
  const SimMetrics& m = out->metrics;
  trace.metrics = {{"step_time_s", m.step_time_s},   {"pipeline_time_s", m.pipeline_time_s},
                   {"tokens_per_s", m.tokens_per_s}, {"mfu", m.mfu},
                   {"bubble_ratio", m.bubble_ratio}, {"recompute_share", m.recompute_share}};
  // The job's layout, so that `compare` can place the ranks of a profile (docs/PROFILES.md).
  const ParallelConfig& parallel = step.job.parallel;
  for (const auto& [name, size] : {std::pair{"layout_tp", parallel.tp},
                                   {"layout_cp", parallel.cp},
                                   {"layout_dp", step.dp},
                                   {"layout_pp", step.pp},
                                   {"layout_vpp", step.plan.vpp}}) {
    trace.metrics[name] = size;
  }
}

StatusOr<SimResult> simulate(const Job& job, const Plan& plan, const CostModel& cost,
                             const SimOptions& options) {
  Simulator simulator;
  return simulator.run(job, plan, cost, options);
}

}  // namespace cf

// A candidate's evaluation (search_detail.h): its one-rank screens, its steps simulated in
// order with the give-up limit, and the verdicts (feasible, infeasible, pruned by time).
#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>

#include "sim/cost_model.h"
#include "sim/memory_source.h"
#include "sim/plan/plan_builder.h"
#include "tuner/search_detail.h"

namespace cf {
namespace search_detail {

int memory_screen_rank(const StepChunks& step_chunks, int step, int dp, double pair_weight) {
  const std::vector<Chunk>& chunks = step_chunks.steps[static_cast<size_t>(step)];
  const std::vector<int>& rank_of = step_chunks.dp_ranks(step, dp, pair_weight);
  std::vector<int64_t> tokens(static_cast<size_t>(dp), 0);
  int longest = 0, rank = 0;
  for (size_t c = 0; c < chunks.size(); ++c) {
    tokens[static_cast<size_t>(rank_of[c])] += chunks[c].tokens;
    if (chunks[c].kind == ChunkKind::kDependent && chunks[c].group_size > longest) {
      longest = chunks[c].group_size;
      rank = rank_of[c];
    }
  }
  if (longest > 0) return rank;
  return static_cast<int>(std::max_element(tokens.begin(), tokens.end()) - tokens.begin());
}

// Simulates a candidate step by step: the worst-case batch first (memory only: when it
// does not fit, nothing else needs simulating), then the sampled steps, each checked for
// memory; after each sampled step the score can be bounded by the steps simulated so far
// plus the bounds of the rest (bounds.h), and a candidate whose bound is above `threshold`
// (the current N-th best score) cannot reach the top N and is pruned there.
Status Search::evaluate(int index, SearchWorker& worker, double threshold, Look look) {
  const Candidate& c = candidates_[index];
  if (!c.auto_offload) {
    return evaluate_placed(index, worker, threshold, look, c.strategy.kv_offload,
                           c.strategy.kv_offload_min_tokens);
  }
  Outcome& o = outcomes_[index];
  if (!o.offloaded) {
    CF_RETURN_IF_ERROR(evaluate_placed(index, worker, threshold, look, KvOffload::kNone, 0));
    if (o.kind != Outcome::kInfeasible || o.excess_bytes <= 0) return Status::Ok();
    o = Outcome{};  // over the budget with the K/V on the GPU: offload
    o.offloaded = true;
  }
  // Every split sequence offloaded first: most candidates over the budget on the GPU are over
  // it offloaded too, and end here; only one that fits (in full, not a screen) looks for the
  // fewest sequences that must go.
  CF_RETURN_IF_ERROR(
      evaluate_placed(index, worker, threshold, look, KvOffload::kAll, o.offload_line));
  if (o.kind != Outcome::kFeasible || o.offload_line > 0) return Status::Ok();
  std::vector<std::vector<int64_t>> batches;
  for (const PlanInputs& in : steps_) batches.push_back(in.sequence_lengths);
  auto fits = [&](int64_t line) { return fits_offloaded(index, worker, line); };
  CF_ASSIGN_OR_RETURN(const int64_t line,
                      bisect_offload_line(offload_lines(batches, c.strategy.chunk_size), fits));
  if (line == 0) return Status::Ok();
  const Outcome everything = o;
  o = Outcome{};
  o.offloaded = true;
  o.offload_line = line;
  CF_RETURN_IF_ERROR(evaluate_placed(index, worker, threshold, look, KvOffload::kAll, line));
  // Over the budget after all (memory the probes did not see), or past the N-th best by the
  // time it was simulated: the outcome with every split sequence offloaded stands.
  if (o.kind != Outcome::kFeasible) o = everything;
  return Status::Ok();
}

StatusOr<bool> Search::fits_offloaded(int index, SearchWorker& worker, int64_t line) {
  const Candidate& c = candidates_[index];
  Job& job = worker.job;
  StrategyConfig strategy = c.strategy;
  strategy.kv_offload = KvOffload::kAll;
  strategy.kv_offload_min_tokens = line;
  apply_layout(c.layout, strategy, &job);
  CF_ASSIGN_OR_RETURN(const std::unique_ptr<CostModel> cost, make_cost_model(job));
  const StepChunks& chunks = *chunks_[index];
  for (size_t step = chunks.steps.size(); step-- > 0;) {  // the worst case (last) first
    PlanInputs in = steps_[step];
    set_plan_layout(job, &in);
    CF_ASSIGN_OR_RETURN(const Plan plan, build_plan_with_chunks(in, chunks.steps[step]));
    SimOptions sim;
    sim.memory_only = true;
    sim.memory_budget_bytes = budget_bytes_;
    CF_ASSIGN_OR_RETURN(const SimResult result, simulate(worker, plan, *cost, sim, c));
    if (!fits_budget(result.metrics)) return false;
  }
  return true;
}

Status Search::evaluate_placed(int index, SearchWorker& worker, double threshold, Look look,
                               KvOffload placement, int64_t min_tokens) {
  const Candidate& c = candidates_[index];
  Outcome& o = outcomes_[index];
  Job& job = worker.job;
  StrategyConfig strategy = c.strategy;
  strategy.kv_offload = placement;
  strategy.kv_offload_min_tokens = min_tokens;
  apply_layout(c.layout, strategy, &job);
  StatusOr<std::unique_ptr<CostModel>> cost = make_cost_model(job);
  if (!cost.ok()) {
    // A cost model that cannot price this layout (the calibrated model measures the
    // executor, which runs no recompute policy) rules the candidate out, not the search.
    o.kind = Outcome::kInfeasible;
    o.reason = "no cost model: " + cost.status().message();
    o.detail = label(c) + ": " + o.reason;
    return Status::Ok();
  }
  if (Status memory = make_memory_source(job).status(); !memory.ok()) {
    // The executor's memory accounting covers what the executor runs (no context
    // parallelism with the ring, for one): the layout is out, not the search.
    o.kind = Outcome::kInfeasible;
    o.reason = "no memory model: " + memory.message();
    o.detail = label(c) + ": " + o.reason;
    return Status::Ok();
  }
  std::vector<SimMetrics> steps;
  const StepChunks& chunks = *chunks_[index];
  std::optional<SimMetrics> worst_case;
  const int timed = chunks.timed_steps();
  std::vector<size_t> order;
  if (timed < static_cast<int>(steps_.size())) order.push_back(steps_.size() - 1);
  for (int step = 0; step < timed; ++step) order.push_back(static_cast<size_t>(step));
  double simulated_s = 0, tokens = 0;
  for (int step = 0; step < timed; ++step) {
    for (const Chunk& chunk : chunks.steps[static_cast<size_t>(step)]) {
      tokens += static_cast<double>(chunk.tokens);
    }
  }
  // Pruned by time once step `steps.size()` takes at least step_s: the score it then exceeds
  // with the later steps at their bounds.
  auto pruned = [&](double step_s) {
    double total_s = simulated_s + step_s;
    for (size_t later = steps.size() + 1; later < bounds_[index].step_s.size(); ++later) {
      total_s += bounds_[index].step_s[later];
    }
    o.kind = Outcome::kPrunedTime;
    o.score_floor = score_of_steps(total_s, timed, tokens);
    return Status::Ok();
  };
  for (const size_t step : order) {
    PlanInputs in = steps_[step];
    set_plan_layout(job, &in);  // the candidate's (apply_layout above)
    const bool memory_only = static_cast<int>(step) >= timed;
    const int64_t limit_ns =
        memory_only ? 0 : give_up_ns(index, steps.size(), simulated_s, tokens, threshold);
    if (!options_.exhaustive && in.dp > 1 && look != Look::kFullOnly) {
      // One rank first: the rank of the step's longest group, scheduled alone, has the same
      // streams, memory and pipeline as in the whole plan, so over the budget there is over
      // it here, and its step (its own ends, reductions and optimizer) is at most the whole
      // step's: past the limit there is past it here. A screen stops there, with the one
      // rank's steps as the score's floor.
      PlanInputs one = in;
      one.only_rank = memory_screen_rank(chunks, static_cast<int>(step), in.dp, in.pair_weight);
      StatusOr<Plan> screen = build_plan_with_chunks(one, chunks.steps[step]);
      if (screen.ok()) {
        SimOptions first;
        first.memory_only = memory_only;
        first.memory_budget_bytes = budget_bytes_;
        first.give_up_above_ns = limit_ns;
        CF_ASSIGN_OR_RETURN(const SimResult alone, simulate(worker, *screen, **cost, first, c));
        if (!fits_budget(alone.metrics)) return infeasible(c, o, alone.metrics);
        if (!memory_only && limit_ns > 0 &&
            (!alone.metrics.timed || std::llround(alone.metrics.step_time_s * 1e9) > limit_ns)) {
          return pruned(alone.metrics.step_time_s);
        }
        if (look == Look::kScreen) {
          if (memory_only) continue;
          // The rank's step stands for the whole step (a lower bound) in what follows.
          simulated_s += alone.metrics.step_time_s;
          steps.emplace_back();
          continue;
        }
      }
    }
    StatusOr<Plan> plan = build_plan_with_chunks(in, chunks.steps[step]);
    if (!plan.ok()) {
      o.kind = Outcome::kInfeasible;
      o.reason = "no valid plan: " + plan.status().message();
      o.detail = label(c) + ": " + o.reason;
      return Status::Ok();
    }
    // Memory first (simulator.h): the worst-case batch is judged for memory only, and a step
    // over the budget stops before its times are computed.
    SimOptions sim;
    sim.memory_only = memory_only;
    sim.memory_budget_bytes = budget_bytes_;
    sim.give_up_above_ns = limit_ns;
    StatusOr<SimResult> result = simulate(worker, *plan, **cost, sim, c);
    if (!result.ok()) return result.status();
    const bool fits = fits_budget(result->metrics);
    if (fits && !sim.memory_only && !result->metrics.timed) {
      // The step alone took the candidate past the N-th best (give_up_ns).
      return pruned(result->metrics.step_time_s);
    }
    if (static_cast<int>(step) < timed) {
      simulated_s += result->metrics.step_time_s;
      steps.push_back(std::move(result->metrics));
    } else {
      worst_case = std::move(result->metrics);
    }
    if (!fits) {
      // Over the budget in one step is infeasible whatever the others do.
      return infeasible(c, o, steps.empty() ? *worst_case : steps.back());
    }
    if (!options_.exhaustive && static_cast<int>(steps.size()) < timed &&
        static_cast<int>(bounds_[index].step_s.size()) == timed) {
      double bound_s = simulated_s;
      for (int later = static_cast<int>(steps.size()); later < timed; ++later) {
        bound_s += bounds_[index].step_s[static_cast<size_t>(later)];
      }
      const double score = score_of_steps(bound_s, timed, tokens);
      if (score > threshold) {
        o.kind = Outcome::kPrunedTime;
        o.score_floor = score;
        return Status::Ok();
      }
    }
  }
  if (look == Look::kScreen) {
    // Screened on one rank per step: waits with the score those steps prove it exceeds.
    o.kind = Outcome::kPending;
    o.score_floor = score_of_steps(simulated_s, timed, tokens);
    return Status::Ok();
  }
  o.metrics = average_steps(steps);
  if (worst_case) {
    apply_worst_case(*worst_case,
                     steps_.back().sequence_lengths.empty()
                         ? 0
                         : *std::max_element(steps_.back().sequence_lengths.begin(),
                                             steps_.back().sequence_lengths.end()),
                     &o.metrics);
    // The worst case's peak counts against the budget like the sampled steps' peaks.
    for (const StageMetrics& st : worst_case->stages) {
      StageMetrics& mine = o.metrics.stages[static_cast<size_t>(st.stage)];
      if (st.peak_memory_bytes > mine.peak_memory_bytes) {
        mine.peak_memory_bytes = st.peak_memory_bytes;
        mine.peak_breakdown = st.peak_breakdown;
      }
    }
  }
  if (fits_budget(o.metrics)) {
    o.kind = Outcome::kFeasible;
    label_kv_offload(job, &o.metrics, c.auto_offload);
    if (options_.feasible) options_.feasible(c, o.metrics);
    return Status::Ok();
  }
  return infeasible(c, o, o.metrics);
}

// The step time (ns) above which sampled step number `done` (steps before it simulated,
// `simulated_s` in all) cannot leave the candidate in the top N, given the bounds of the
// steps after it and the N-th best score `threshold`; 0 (no limit) in an exhaustive search,
// before N candidates are known, or without per-step bounds. One nanosecond of slack keeps
// the comparison on the safe side of rounding.
int64_t Search::give_up_ns(int index, size_t done, double simulated_s, double tokens,
                           double threshold) const {
  const std::vector<double>& bound_s = bounds_[index].step_s;
  const size_t timed = bound_s.size();
  if (options_.exhaustive || !std::isfinite(threshold) || done >= timed ||
      static_cast<size_t>(chunks_[index]->timed_steps()) != timed) {
    return 0;
  }
  double later_s = 0;
  for (size_t j = done + 1; j < timed; ++j) later_s += bound_s[j];
  double total_s = 0;  // the most the steps may take together
  if (space_.objective == Objective::kStepTime) {
    total_s = threshold * static_cast<double>(timed);
  } else {
    if (threshold >= 0) return 0;
    total_s = tokens / -threshold;
  }
  const double allowed_s = total_s - simulated_s - later_s;
  if (!(allowed_s > 0)) return 1;
  if (allowed_s > 9e9) return 0;  // beyond any step (and int64 ns)
  return static_cast<int64_t>(std::ceil(allowed_s * 1e9)) + 1;
}

// The outcome of a candidate whose simulated step `m` does not fit: its worst stage.
Status Search::infeasible(const Candidate& c, Outcome& o, const SimMetrics& m) const {
  o.metrics = m;
  const StageMetrics* worst = &o.metrics.stages.front();
  for (const StageMetrics& st : o.metrics.stages) {
    if (st.peak_memory_bytes > worst->peak_memory_bytes) worst = &st;
  }
  const MemoryBreakdown& b = worst->peak_breakdown;
  o.kind = Outcome::kInfeasible;
  o.reason = "simulated peak memory exceeds the memory budget";
  o.excess_bytes = worst->peak_memory_bytes - budget_bytes_;
  o.detail = fmt::format(
      "{}: stage {} peaks at {} (model states {}, activations {}, state store {}, working "
      "memory {}) > budget {}",
      label(c), worst->stage, format_bytes(worst->peak_memory_bytes),
      format_bytes(b.weights + b.gradients + b.optimizer), format_bytes(b.activations),
      format_bytes(b.state_store), format_bytes(b.transient), format_bytes(budget_bytes_));
  return Status::Ok();
}

}  // namespace search_detail
}  // namespace cf

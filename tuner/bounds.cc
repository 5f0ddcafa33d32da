// The tuner's lower bounds. Why each is safe is written beside it; the simulator's own rules
// (sim/simulator.cc, sim/memory_timeline.cc) are what they bound.
#include "tuner/bounds.h"

#include <algorithm>
#include <limits>

#include "core/check.h"
#include "sim/memory_model.h"
#include "sim/memory_source.h"
#include "sim/plan/chunk_schedule.h"
#include "sim/plan/plan_builder.h"
#include "sim/plan/plan_index.h"

namespace cf {
namespace {

// Op times (ns) of one chunk's passes over one model chunk on one stage.
struct PassTimes {
  int64_t forward = 0;        // F
  int64_t forward_kv = 0;     // F* (dependent chunks only)
  int64_t recompute = 0;      // R (dependent chunks only)
  int64_t backward = 0;       // B
  int64_t kept_bytes = 0;     // memory the chunk adds at the start of its F
  int64_t dropped_bytes = 0;  // memory it adds by the start of its R when it ran F* instead
  // Dependent chunks: what its F, or F*, keeps past the op (activations or stage input, K/V);
  // what its R restores and needs while it runs; what its B adds at its start (the group's
  // first backward: the prefix's dK/dV) and needs while it runs.
  int64_t kept_after_f = 0, kept_after_f_star = 0;
  int64_t recompute_bytes = 0, recompute_transient = 0;
  int64_t backward_at_start = 0, backward_transient = 0;
};

// F, not F*, for the chunk (group_forward_pass: the plan's rule).
bool keeps_activations(const Chunk& chunk, int k) {
  return chunk.kind == ChunkKind::kStandalone ||
         group_forward_pass(chunk.index, chunk.group_size, k) == Pass::kForward;
}

// The bounds of one layout over its steps' chunks. Times are priced once per chunk, then each
// K reuses them.
class Bounder {
 public:
  Bounder(const Job& job, const CostModel& cost)
      : job_(job),
        cost_(cost),
        pp_(job.parallel.pp),
        vpp_(job.parallel.vpp),
        split_(layer_split(job.model.layers, job.parallel)),
        memory_(job.model, job.parallel, job.training),
        dp_(job.parallel.dp),
        pair_weight_(dp_pair_weight(job.model)) {
    // The memory the simulator replays (simulator.cc): the job's source. Megatron-LM's is
    // priced chunk by chunk; the executor's counts each op of a plan, so there the bound
    // keeps the model states alone, which every replay starts from.
    StatusOr<std::unique_ptr<OpMemorySource>> source = make_memory_source(job);
    CF_CHECK(source.ok()) << source.status().message();
    executor_accounting_ = job.memory_model == MemoryModelKind::kExecutor;
    // After a stage's last op: its DP reduction and optimizer step (simulator.cc: step time
    // is at least stage_end[s] + dp_reduce(s) + optimizer(s)).
    for (int s = 0; s < pp_; ++s) {
      fixed_ns_.push_back(cost.dp_reduce_time_ns(s) + cost.optimizer_time_ns(s));
      states_.push_back((*source)->model_states(s).total());
    }
  }

  // Prices every chunk of a step's passes on every (stage, model chunk), and finds each
  // chunk's DP rank (the plan's assignment, which K does not change).
  void price(const std::vector<Chunk>& step) {
    n_ = step.size();
    rank_of_ = assign_dp_ranks(step, dp_, pair_weight_);
    times_.assign(n_ * static_cast<size_t>(vpp_ * pp_), PassTimes{});
    for (size_t c = 0; c < n_; ++c) price_chunk(step[c], c);
  }

  // Drain: the last op of stage s on a rank is some chunk's backward; that backward then runs
  // on stages s-1..0 (input_of, plan_index.h), so stage 0 ends at least Σ_{s'<s} B later.
  std::vector<int64_t> drain_ns() const {
    std::vector<int64_t> tail(static_cast<size_t>(pp_));
    for (int s = 0; s < pp_; ++s) {
      int64_t best = std::numeric_limits<int64_t>::max();
      for (size_t c = 0; c < n_; ++c) {
        for (int v = 0; v < vpp_; ++v) {
          int64_t sum = 0;
          for (int s2 = 0; s2 < s; ++s2) sum += at(c, v, s2).backward;
          best = std::min(best, sum);
        }
      }
      tail[static_cast<size_t>(s)] = best;
    }
    return tail;
  }

  // The step-time bound (ns) of the priced step with `k`, and each stage's memory bound
  // raised into *bounds.
  int64_t bound(const std::vector<Chunk>& step, int k, const std::vector<int64_t>& tail,
                CandidateBounds* bounds) const {
    const size_t cells = static_cast<size_t>(dp_) * static_cast<size_t>(pp_);  // [r·pp + s]
    busy_.assign(cells, 0);
    head_.assign(cells, std::numeric_limits<int64_t>::max());
    std::vector<int64_t> mem(static_cast<size_t>(pp_), 0);
    std::vector<int64_t> group(static_cast<size_t>(pp_), 0);  // kept by the group's forwards
    for (size_t c = 0; c < n_; ++c) {
      const bool kept = keeps_activations(step[c], k);
      if (step[c].kind == ChunkKind::kDependent && vpp_ == 1 && !executor_accounting_) {
        group_memory(step[c], kept, c, &group, &mem);
      }
      const size_t row = static_cast<size_t>(rank_of_[c]) * static_cast<size_t>(pp_);
      int64_t fill = 0;  // Σ_{s'<s} forward of model chunk 0
      for (int s = 0; s < pp_; ++s) {
        head_[row + s] = std::min(head_[row + s], fill);
        fill += kept ? at(c, 0, s).forward : at(c, 0, s).forward_kv;
        for (int v = 0; v < vpp_; ++v) {
          const PassTimes& t = at(c, v, s);
          busy_[row + s] += (kept ? t.forward : t.forward_kv + t.recompute) + t.backward;
          mem[s] = std::max(mem[s], kept ? t.kept_bytes : t.dropped_bytes);
        }
      }
    }
    // Fill: the first op of stage s on a rank is a forward whose input passed stages 0..s-1
    // first. A stage's ops run one at a time, so each rank's stage ends at least head + its
    // busy time (the plan's DP assignment, assign_dp_ranks), then adds its own DP reduction and
    // optimizer, or stage 0's after the drain. A rank without chunks has no ops there.
    int64_t lb_ns = 0;
    for (size_t cell = 0; cell < cells; ++cell) {
      if (busy_[cell] == 0) continue;
      const int s = static_cast<int>(cell % static_cast<size_t>(pp_));
      const int64_t end = head_[cell] + busy_[cell];
      lb_ns = std::max(lb_ns, end + std::max(fixed_ns_[s], tail[s] + fixed_ns_[0]));
    }
    for (int s = 0; s < pp_; ++s) {
      lb_ns = std::max(lb_ns, std::max(fixed_ns_[s], tail[s] + fixed_ns_[0]));
    }
    for (int s = 0; s < pp_; ++s) {
      const int64_t bytes = states_[s] + mem[s];
      if (bytes > bounds->memory_bytes) {
        bounds->memory_bytes = bytes;
        bounds->memory_stage = s;
        bounds->model_state_bytes = states_[s];
      }
    }
    return lb_ns;
  }

 private:
  // A dependent group on a stage without virtual stages: its pieces' forwards (F or F*) run in
  // index order before its first backward-side op, the last piece's R (after an F*) or B, and
  // nothing the forwards keep is freed before that B (backwards run from the last piece down,
  // plan_index.h). So at the start of the last piece's R, and of its B, the stage holds at
  // least every piece's kept memory plus what that op adds — what the store of a long sequence
  // split into many chunks costs, which one chunk alone does not show.
  void group_memory(const Chunk& chunk, bool kept, size_t c, std::vector<int64_t>* group,
                    std::vector<int64_t>* mem) const {
    if (chunk.index == 0) std::fill(group->begin(), group->end(), 0);
    for (int s = 0; s < pp_; ++s) {
      const PassTimes& t = at(c, 0, s);
      int64_t& held = (*group)[static_cast<size_t>(s)];
      held += kept ? t.kept_after_f : t.kept_after_f_star;
      if (chunk.index != chunk.group_size - 1) continue;
      int64_t peak = held + t.backward_at_start + t.backward_transient;
      if (!kept) {
        peak = std::max(held + t.recompute_bytes + t.recompute_transient, peak + t.recompute_bytes);
      }
      (*mem)[static_cast<size_t>(s)] = std::max((*mem)[static_cast<size_t>(s)], peak);
    }
  }

  const PassTimes& at(size_t c, int v, int s) const {
    return times_[(c * static_cast<size_t>(vpp_) + static_cast<size_t>(v)) * pp_ + s];
  }

  // Where the simulator prices the chunk's ops (the plan's rules, plan_index.h), and what the
  // replay holds at the start of its F (its activations, K/V and transient) and, after an F*,
  // at the start of its R (F*'s stage input and K/V, R's activations and transient): the
  // simulator's own op memory (memory_source.h; F, F* and R do not depend on K). Everything
  // else held then is >= 0, so these are lower bounds.
  void price_chunk(const Chunk& chunk, size_t c) {
    const bool dependent = chunk.kind == ChunkKind::kDependent;
    spans_.clear();
    attention_spans(chunk, &spans_);
    auto at_start = [](const OpMemory& m) {
      return m.activations_at_start + m.store_at_start + m.transient;
    };
    // Stages with the same layers and the same ends (embedding, LM head) price alike
    // (cost_model.h's contract), so each such place is priced once.
    struct Seen {
      int64_t layers;
      bool first, last;
      size_t at;
    };
    std::vector<Seen> seen;
    for (int v = 0; v < vpp_; ++v) {
      for (int s = 0; s < pp_; ++s) {
        const StagePlace place = stage_place(split_, s, v);
        const size_t at = (c * static_cast<size_t>(vpp_) + static_cast<size_t>(v)) * pp_ + s;
        auto same = std::find_if(seen.begin(), seen.end(), [&](const Seen& x) {
          return x.layers == place.layers() && x.first == place.first && x.last == place.last;
        });
        if (same != seen.end()) {
          times_[at] = times_[same->at];
          continue;
        }
        seen.push_back(Seen{place.layers(), place.first, place.last, at});
        auto time = [&](Pass pass) {
          return cost_.op_time(op_query(pass, 0, s, v, place, chunk.tokens, spans_)).total_ns;
        };
        PassTimes& t = times_[at];
        t.forward = time(Pass::kForward);
        t.backward = time(Pass::kBackward);
        if (dependent) {
          t.forward_kv = time(Pass::kForwardKeepKV);
          t.recompute = time(Pass::kRecompute);
        }
        if (executor_accounting_) continue;
        t.kept_bytes = at_start(megatron_op_memory(memory_, Pass::kForward, chunk, 1, place));
        if (dependent) {
          const OpMemory f_star =
              megatron_op_memory(memory_, Pass::kForwardKeepKV, chunk, 1, place);
          const OpMemory recompute = megatron_op_memory(memory_, Pass::kRecompute, chunk, 1, place);
          t.dropped_bytes =
              f_star.activations_at_start + f_star.store_at_start + at_start(recompute);
          auto kept_after = [](const OpMemory& m) {
            return m.activations_at_start + m.store_at_start + m.activations_at_end +
                   m.store_at_end;
          };
          const OpMemory f = megatron_op_memory(memory_, Pass::kForward, chunk, 1, place);
          t.kept_after_f = kept_after(f);
          t.kept_after_f_star = kept_after(f_star);
          t.recompute_bytes = kept_after(recompute);
          t.recompute_transient = recompute.transient;
          // B's additions do not depend on K (only what its end frees does).
          const OpMemory backward = megatron_op_memory(memory_, Pass::kBackward, chunk, 1, place);
          t.backward_at_start = backward.activations_at_start + backward.store_at_start;
          t.backward_transient = backward.transient;
        }
      }
    }
  }

  const Job& job_;
  const CostModel& cost_;
  int pp_, vpp_;
  LayerSplit split_;
  MemoryModel memory_;
  bool executor_accounting_ = false;
  int dp_ = 1;
  double pair_weight_ = 0;
  std::vector<int64_t> fixed_ns_, states_;
  size_t n_ = 0;
  std::vector<int> rank_of_;                  // per chunk of the priced step
  mutable std::vector<int64_t> busy_, head_;  // per (rank, stage), scratch of bound()
  std::vector<PassTimes> times_;              // [(c·vpp + v)·pp + s]
  std::vector<AttentionSpan> spans_;
};

}  // namespace

std::vector<CandidateBounds> candidate_bounds(const Job& job, const CostModel& cost,
                                              const StepChunks& chunks,
                                              const std::vector<int>& ks) {
  CF_CHECK(!chunks.steps.empty()) << "no sampled steps";
  Bounder bounder(job, cost);
  std::vector<CandidateBounds> out(ks.size());
  std::vector<double> lb_sum_s(ks.size(), 0.0);
  double tokens_sum = 0;
  const int timed = chunks.timed_steps();
  for (int s = 0; s < static_cast<int>(chunks.steps.size()); ++s) {
    const std::vector<Chunk>& step = chunks.steps[static_cast<size_t>(s)];
    CF_CHECK(!step.empty()) << "a step without chunks";
    if (s < timed) {
      for (const Chunk& chunk : step) tokens_sum += static_cast<double>(chunk.tokens);
    }
    bounder.price(step);
    const std::vector<int64_t> tail = bounder.drain_ns();
    for (size_t ki = 0; ki < ks.size(); ++ki) {
      // The worst-case step bounds memory only (bound() keeps the largest memory it sees).
      const double seconds =
          static_cast<double>(bounder.bound(step, ks[ki], tail, &out[ki])) * 1e-9;
      if (s < timed) {
        lb_sum_s[ki] += seconds;
        out[ki].step_s.push_back(seconds);
      }
    }
  }
  const double steps = static_cast<double>(timed);
  for (size_t ki = 0; ki < ks.size(); ++ki) {
    // average_steps: mean of per-step seconds; tokens/s = Σ tokens / Σ seconds.
    out[ki].step_time_s = timed == 1 ? lb_sum_s[ki] : lb_sum_s[ki] / steps;
    out[ki].tokens_per_s =
        lb_sum_s[ki] > 0 ? tokens_sum / lb_sum_s[ki] : std::numeric_limits<double>::infinity();
  }
  return out;
}

}  // namespace cf

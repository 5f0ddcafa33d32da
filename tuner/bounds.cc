// The tuner's lower bounds. Why each is safe is written beside it; the simulator's own rules
// (sim/simulator.cc, sim/memory_timeline.cc) are what they bound.
#include "tuner/bounds.h"

#include <algorithm>
#include <limits>
#include <map>
#include <tuple>

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
  // what its B adds at its start (the group's first backward: the prefix's dK/dV) and needs
  // while it runs.
  int64_t kept_after_f = 0, kept_after_f_star = 0;
  int64_t backward_at_start = 0, backward_transient = 0;
};

// The plan's rule (group_forward_pass): piece i of a group of n runs F* for small K and F from
// some K on, and the pieces running F* are a prefix of the group.
bool runs_f_star(int index, int n, int k) {
  return group_forward_pass(index, n, k) == Pass::kForwardKeepKV;
}
// The position in `ks` (ascending) of the first K that keeps the piece's activations.
size_t first_keeping(const std::vector<int>& ks, int index, int n) {
  return static_cast<size_t>(
      std::partition_point(ks.begin(), ks.end(), [&](int k) { return runs_f_star(index, n, k); }) -
      ks.begin());
}
// How many pieces of a group of n run F* with `k`.
int f_star_pieces(int n, int k) {
  int lo = 0, hi = n;
  while (lo < hi) {
    const int mid = lo + (hi - lo) / 2;
    if (runs_f_star(mid, n, k)) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return lo;
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
    const size_t places = static_cast<size_t>(vpp_ * pp_);
    times_.assign(n_ * places, PassTimes{});
    for (size_t c = 0; c < n_; ++c) {
      const Chunk& chunk = step[c];
      if (chunk.kind != ChunkKind::kDependent || chunk.segments.size() != 1) {
        price_chunk(chunk, c);
        continue;
      }
      // A piece of a split sequence is priced by its tokens and its offset (its one span) and
      // whether it is the group's last (which adds the prefix's dK/dV): pieces alike in these,
      // across sequences and steps, share one pricing.
      const PieceKey key{chunk.tokens, chunk.segments.front().offset,
                         chunk.index == chunk.group_size - 1};
      auto [it, fresh] = pieces_.try_emplace(key);
      if (fresh) {
        price_chunk(chunk, c);
        it->second.assign(times_.begin() + static_cast<std::ptrdiff_t>(c * places),
                          times_.begin() + static_cast<std::ptrdiff_t>((c + 1) * places));
      } else {
        std::copy(it->second.begin(), it->second.end(),
                  times_.begin() + static_cast<std::ptrdiff_t>(c * places));
      }
    }
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

  // The step-time bounds (ns) of the priced step for every K of `ks` (ascending), each
  // stage's memory bound raised into (*bounds)[ki]. A dependent piece i of a group of n keeps
  // its activations from some K on (K ≥ n − i, group_forward_pass), so each piece's share is
  // entered once, at the first K that keeps it, and the K values are summed up in one pass.
  std::vector<int64_t> bound_all(const std::vector<Chunk>& step, const std::vector<int>& ks,
                                 const std::vector<int64_t>& tail,
                                 std::vector<CandidateBounds>* bounds) const {
    const size_t nk = ks.size(), pp = static_cast<size_t>(pp_);
    const size_t cells = static_cast<size_t>(dp_) * pp;  // [r·pp + s]
    std::vector<int64_t> busy(cells, 0), head(cells, std::numeric_limits<int64_t>::max());
    // Per (cell, first K position that keeps the piece): busy added when kept, not dropped.
    std::vector<int64_t> delta(cells * (nk + 1), 0);
    // Per (stage, K position): the largest single-chunk memory of the pieces kept from that
    // position on, and of the dropped pieces kept only from there.
    std::vector<int64_t> kept_max(pp * (nk + 1), 0), dropped_max(pp * (nk + 1), 0);
    std::vector<int64_t> group_peak(pp * nk, 0);
    for (size_t c = 0; c < n_; ++c) {
      const Chunk& chunk = step[c];
      const bool dependent = chunk.kind == ChunkKind::kDependent;
      // The first K position that keeps the piece (nk: none does).
      const size_t from = dependent ? first_keeping(ks, chunk.index, chunk.group_size) : 0;
      const size_t row = static_cast<size_t>(rank_of_[c]) * pp;
      int64_t fill = 0;  // Σ_{s'<s} forward of model chunk 0, F or F*, whichever is shorter
      for (size_t s = 0; s < pp; ++s) {
        head[row + s] = std::min(head[row + s], fill);
        const PassTimes& first = at(c, 0, static_cast<int>(s));
        fill += dependent ? std::min(first.forward, first.forward_kv) : first.forward;
        for (int v = 0; v < vpp_; ++v) {
          const PassTimes& t = at(c, v, static_cast<int>(s));
          const int64_t kept = t.forward + t.backward;
          int64_t& k_max = kept_max[s * (nk + 1) + from];
          k_max = std::max(k_max, t.kept_bytes);
          if (!dependent) {
            busy[row + s] += kept;
            continue;
          }
          const int64_t dropped = t.forward_kv + t.recompute + t.backward;
          busy[row + s] += dropped;
          delta[(row + s) * (nk + 1) + from] += kept - dropped;
          int64_t& d_max = dropped_max[s * (nk + 1) + from];
          d_max = std::max(d_max, t.dropped_bytes);
        }
      }
      if (dependent && chunk.index == chunk.group_size - 1 && vpp_ == 1 && !executor_accounting_) {
        group_memory(c + 1 - static_cast<size_t>(chunk.group_size), chunk.group_size, ks,
                     &group_peak);
      }
    }
    // Fill: the first op of stage s on a rank is a forward whose input passed stages 0..s-1
    // first. A stage's ops run one at a time, so each rank's stage ends at least head + its
    // busy time (the plan's DP assignment, assign_dp_ranks), then adds its own DP reduction and
    // optimizer, or stage 0's after the drain. A rank without chunks has no ops there.
    std::vector<int64_t> lb(nk, 0);
    for (size_t s = 0; s < pp; ++s) {
      for (size_t ki = 0; ki < nk; ++ki) {
        lb[ki] = std::max(lb[ki], std::max(fixed_ns_[s], tail[s] + fixed_ns_[0]));
      }
    }
    for (size_t cell = 0; cell < cells; ++cell) {
      const size_t s = cell % pp;
      const int64_t after = std::max(fixed_ns_[s], tail[s] + fixed_ns_[0]);
      int64_t work = busy[cell];
      for (size_t ki = 0; ki < nk; ++ki) {
        work += delta[cell * (nk + 1) + ki];
        if (work > 0) lb[ki] = std::max(lb[ki], head[cell] + work + after);
      }
    }
    // Memory: a piece counts as kept from its K position on, as dropped before it.
    for (size_t s = 0; s < pp; ++s) {
      std::vector<int64_t> dropped_after(nk + 2, 0);  // [ki]: max over positions ≥ ki
      for (size_t ki = nk + 1; ki-- > 0;) {
        dropped_after[ki] = std::max(dropped_after[ki + 1], dropped_max[s * (nk + 1) + ki]);
      }
      int64_t kept_upto = 0;
      for (size_t ki = 0; ki < nk; ++ki) {
        kept_upto = std::max(kept_upto, kept_max[s * (nk + 1) + ki]);
        const int64_t mem = std::max({kept_upto, dropped_after[ki + 1], group_peak[s * nk + ki]});
        const int64_t bytes = states_[s] + mem;
        CandidateBounds& b = (*bounds)[ki];
        if (bytes > b.memory_bytes) {
          b.memory_bytes = bytes;
          b.memory_stage = static_cast<int>(s);
          b.model_state_bytes = states_[s];
        }
      }
    }
    return lb;
  }

 private:
  // A dependent group (pieces first..first+n−1 of the priced step) on a stage without virtual
  // stages: its pieces' forwards (F or F*) run in index order before its first backward, the
  // last piece's B (the last piece always runs F), and nothing the forwards keep is freed
  // before that B (backwards run from the last piece down, chunk_schedule.h). So at the start
  // of that B the stage holds at least every piece's kept memory plus what the B adds: what
  // the store of a long sequence split into many chunks costs, which one chunk alone does not
  // show. With K, pieces n−K..n−1 keep their activations, the others their stage input.
  void group_memory(size_t first, int n, const std::vector<int>& ks,
                    std::vector<int64_t>* group_peak) const {
    const size_t nk = ks.size(), len = static_cast<size_t>(n);
    std::vector<int64_t> dropped_prefix(len + 1, 0), kept_suffix(len + 1, 0);
    for (int s = 0; s < pp_; ++s) {
      for (size_t i = 0; i < len; ++i) {
        dropped_prefix[i + 1] = dropped_prefix[i] + at(first + i, 0, s).kept_after_f_star;
      }
      for (size_t i = len; i-- > 0;) {
        kept_suffix[i] = kept_suffix[i + 1] + at(first + i, 0, s).kept_after_f;
      }
      const PassTimes& last = at(first + len - 1, 0, s);
      for (size_t ki = 0; ki < nk; ++ki) {
        const size_t dropped = static_cast<size_t>(f_star_pieces(n, ks[ki]));
        const int64_t held = dropped_prefix[dropped] + kept_suffix[dropped];
        int64_t& peak = (*group_peak)[static_cast<size_t>(s) * nk + ki];
        peak = std::max(peak, held + last.backward_at_start + last.backward_transient);
      }
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
  std::vector<int> rank_of_;  // per chunk of the priced step
  // The pricings of dependent pieces by (tokens, offset in the sequence, last of its group).
  using PieceKey = std::tuple<int64_t, int64_t, bool>;
  std::map<PieceKey, std::vector<PassTimes>> pieces_;
  std::vector<PassTimes> times_;  // [(c·vpp + v)·pp + s]
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
    // The worst-case step bounds memory only (bound_all keeps the largest memory it sees).
    const std::vector<int64_t> lb_ns = bounder.bound_all(step, ks, bounder.drain_ns(), &out);
    for (size_t ki = 0; ki < ks.size(); ++ki) {
      const double seconds = static_cast<double>(lb_ns[ki]) * 1e-9;
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

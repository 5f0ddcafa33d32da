// The tuner's lower bounds. Why each is safe is written beside it; the simulator's own rules
// (sim/simulator.cc, sim/memory_timeline.cc) are what they bound.
#include "tuner/bounds.h"

#include <algorithm>
#include <deque>
#include <limits>
#include <unordered_map>
#include <utility>

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

// The position in `ks` (ascending) of the first K that keeps piece `index` of a group of n
// its activations (the plan's rule: smallest_keeping_k).
size_t first_keeping(const std::vector<int>& ks, int index, int n) {
  return static_cast<size_t>(std::lower_bound(ks.begin(), ks.end(), smallest_keeping_k(index, n)) -
                             ks.begin());
}

// The bounds of one layout over its steps' chunks. Times are priced once per chunk and
// place, then each K reuses them.
class Bounder {
 public:
  Bounder(const Job& job, const CostModel& cost)
      : cost_(cost),
        pp_(job.parallel.pp),
        vpp_(job.parallel.vpp),
        schedule_(job.parallel.schedule),
        split_(layer_split(job.model.layers, job.parallel)),
        memory_(job.model, job.parallel, job.training),
        dp_(job.parallel.dp),
        pair_weight_(dp_pair_weight(job.model)),
        chunk_size_(job.strategy.chunk_size) {
    // The memory the simulator replays (simulator.cc): the job's source. Megatron-LM's is
    // priced chunk by chunk; the executor's counts each op of a plan, so there the bound
    // keeps the model states alone, which every replay starts from.
    StatusOr<std::unique_ptr<OpMemorySource>> source = make_memory_source(job);
    CF_CHECK(source.ok()) << source.status().message();
    executor_accounting_ = job.memory_model == MemoryModelKind::kExecutor;
    // After a stage's last op: its DP reduction and optimizer step (simulator.cc: step time
    // is at least stage_end[s] + dp_reduce(s) + optimizer(s)).
    for (int s = 0; s < pp_; ++s) {
      // With overlap.grad_reduce the reduction may hide under the last backward: none counts.
      fixed_ns_.push_back((job.overlap.grad_reduce ? 0 : cost.dp_reduce_time_ns(s)) +
                          cost.optimizer_time_ns(s));
      states_.push_back((*source)->model_states(s).total());
    }
    // Places with the same layers and the same ends (embedding, LM head) price alike
    // (cost_model.h's contract; the memory model reads the same three), so every chunk is
    // priced once per distinct place, its class.
    for (int v = 0; v < vpp_; ++v) {
      for (int s = 0; s < pp_; ++s) {
        const StagePlace place = stage_place(split_, s, v);
        auto same = std::find_if(places_.begin(), places_.end(), [&](const Placed& x) {
          return x.place.layers() == place.layers() && x.place.first == place.first &&
                 x.place.last == place.last;
        });
        class_of_.push_back(static_cast<int>(same - places_.begin()));
        if (same == places_.end()) places_.push_back(Placed{place, s, v});
      }
    }
  }

  int64_t max_model_states() const { return *std::max_element(states_.begin(), states_.end()); }
  bool slower_with_smaller_k() const { return slower_with_smaller_k_; }
  const std::vector<int64_t>& model_states() const { return states_; }

  // A chunk's prices, one entry per class of places: its op times (`times`: the time pass) or
  // its memory (the memory pass; a standalone chunk's is entered by bound_step per token
  // count). A piece of a split sequence is priced by its tokens and its offset (its one span)
  // and whether it is the group's last (which adds the prefix's dK/dV): pieces alike in these,
  // across sequences and steps, share one pricing.
  const PassTimes* times_of(const Chunk& chunk, bool times) {
    if (chunk.kind != ChunkKind::kDependent) {
      scratch_times_.assign(places_.size(), PassTimes{});
      if (times) price_chunk(chunk, scratch_times_.data(), /*times=*/true, /*memory=*/false);
      return scratch_times_.data();
    }
    if (chunk.segments.size() != 1) {  // kept until its group is entered
      if (chunk.index == 0) unshared_.clear();
      unshared_.emplace_back(places_.size());
      price_chunk(chunk, unshared_.back().data(), true, !executor_accounting_);
      return unshared_.back().data();
    }
    const bool last = chunk.index == chunk.group_size - 1;
    Priced* priced = nullptr;
    if (chunk.tokens == chunk_size_ &&
        chunk.segments.front().offset == static_cast<int64_t>(chunk.index) * chunk_size_) {
      // A whole piece where the split puts it (most are): found by its index.
      const size_t slot = static_cast<size_t>(chunk.index) * 2 + (last ? 1 : 0);
      if (regular_.size() <= slot) regular_.resize(slot + 1);
      priced = &regular_[slot];
    } else {
      priced = &pieces_[PieceKey{chunk.tokens, chunk.segments.front().offset, last}];
    }
    // Priced for what the pass needs, once: memory in the memory pass, times in the time pass
    // (which a layout over the budget never runs).
    if (priced->passes.empty()) priced->passes.resize(places_.size());
    if (times && !priced->times) {
      price_chunk(chunk, priced->passes.data(), /*times=*/true, /*memory=*/false);
      priced->times = true;
    }
    if (!times && !priced->memory) {
      price_chunk(chunk, priced->passes.data(), /*times=*/false, !executor_accounting_);
      priced->memory = true;
    }
    return priced->passes.data();
  }

  // The step-time bounds (ns) of one step for every K of `ks` (ascending), each stage's memory
  // bound raised into (*bounds)[ki]. Each chunk is priced once and its share entered as it
  // comes (nothing per chunk is kept but a group's pieces until the group ends), on the DP
  // rank the plan gives it (assign_dp_ranks, which K does not change). A dependent piece i of
  // a group of n keeps its activations from some K on (K ≥ n − i, dropped_pieces), so its
  // share is entered once, at the first K that keeps it, and the K values are summed up at
  // the end. Sums are kept per (DP rank, class of places) and spread over the stages there.
  std::vector<int64_t> bound_step(const StepChunks& chunks, int step_index,
                                  const std::vector<int>& ks, bool times,
                                  std::vector<CandidateBounds>* bounds) {
    const std::vector<Chunk>& step = chunks.steps[static_cast<size_t>(step_index)];
    static const std::vector<int> kNoRanks;
    const std::vector<int>& rank_of =
        times ? chunks.dp_ranks(step_index, dp_, pair_weight_) : kNoRanks;
    const size_t nk = ks.size(), pp = static_cast<size_t>(pp_), classes = places_.size();
    const size_t cells = static_cast<size_t>(dp_) * classes;  // [r·classes + class]
    constexpr int64_t kNone = std::numeric_limits<int64_t>::max();
    std::vector<int64_t> busy(cells, 0), fastest(cells, kNone), shortest_b(classes, kNone);
    // Per (cell, first K position that keeps the piece): busy added when kept, not dropped.
    std::vector<int64_t> delta(cells * (nk + 1), 0);
    // Per (class, K position): the largest single-chunk memory of the pieces kept from that
    // position on, and of the dropped pieces kept only from there.
    std::vector<int64_t> kept_max(classes * (nk + 1), 0), dropped_max(classes * (nk + 1), 0);
    // Per (class, K position): a group's pieces together (group_memory), for K below its
    // piece count; from that K's position on, where every piece keeps its activations alike.
    std::vector<int64_t> group_peak(classes * nk, 0), group_peak_from(classes * (nk + 1), 0);
    std::vector<const PassTimes*> group;  // the pieces of the group being entered
    // Per DP rank, in its feed order (ascending ids, plan_builder.cc): each chunk's shortest
    // forward (F or F*) and its backward on stage 0; and each group's chain (group_chain).
    std::vector<std::vector<int64_t>> feed_f0(static_cast<size_t>(dp_)),
        feed_b0(static_cast<size_t>(dp_));
    struct Chain {
      int rank;
      size_t first, n;  // the group's feed positions on its rank
      int64_t ns;
    };
    std::vector<Chain> chains;
    const size_t stage0 = class_at(0, 0);
    // The chains of each rank's longest groups (half its longest or more) are what bound the
    // step; shorter groups' chains are left out (any subset bounds it).
    std::vector<int> longest(static_cast<size_t>(dp_), 0);
    for (size_t c = 0; times && c < step.size(); ++c) {
      int& n = longest[static_cast<size_t>(rank_of[c])];
      if (step[c].kind == ChunkKind::kDependent) n = std::max(n, step[c].group_size);
    }
    for (size_t c = 0; c < step.size(); ++c) {
      const Chunk& chunk = step[c];
      const bool dependent = chunk.kind == ChunkKind::kDependent;
      const PassTimes* priced = times_of(chunk, times);
      // The first K position that keeps the piece (nk: none does).
      const size_t from = dependent ? first_keeping(ks, chunk.index, chunk.group_size) : 0;
      const size_t rank = times ? static_cast<size_t>(rank_of[c]) : 0;
      const size_t row = rank * classes;
      for (size_t k = 0; times && k < classes; ++k) {
        const PassTimes& t = priced[k];
        const int64_t kept = t.forward + t.backward;
        // The shortest forward it could run here, F or F*: the pipeline's fill.
        fastest[row + k] =
            std::min(fastest[row + k], dependent ? std::min(t.forward, t.forward_kv) : t.forward);
        shortest_b[k] = std::min(shortest_b[k], t.backward);
        if (!dependent) {
          busy[row + k] += kept;
          continue;
        }
        const int64_t dropped = t.forward_kv + t.recompute + t.backward;
        busy[row + k] += dropped;
        delta[(row + k) * (nk + 1) + from] += kept - dropped;
      }
      if (!times && !dependent) {
        standalone_tokens_.push_back(chunk.tokens);  // priced below, each count once
        continue;
      }
      for (size_t k = 0; !times && k < classes; ++k) {
        const PassTimes& t = priced[k];
        int64_t& k_max = kept_max[k * (nk + 1) + from];
        k_max = std::max(k_max, t.kept_bytes);
        if (!dependent) continue;
        int64_t& d_max = dropped_max[k * (nk + 1) + from];
        d_max = std::max(d_max, t.dropped_bytes);
      }
      if (times) {
        const PassTimes& first_stage = priced[stage0];
        feed_f0[rank].push_back(dependent ? std::min(first_stage.forward, first_stage.forward_kv)
                                          : first_stage.forward);
        feed_b0[rank].push_back(first_stage.backward);
      }
      if (!dependent || vpp_ != 1) continue;
      if (chunk.index == 0) group.clear();
      group.push_back(priced);
      if (chunk.index != chunk.group_size - 1) continue;
      if (!times && !executor_accounting_) {
        group_memory(group, ks, &group_peak, &group_peak_from);
      }
      if (times && 2 * chunk.group_size >= longest[rank]) {
        chains.push_back(Chain{rank_of[c], feed_f0[rank].size() - group.size(), group.size(),
                               group_chain(group)});
      }
    }
    if (!times) {
      // A standalone chunk's F holds what its tokens and the place decide
      // (megatron_op_memory): each distinct count is priced once.
      std::sort(standalone_tokens_.begin(), standalone_tokens_.end());
      standalone_tokens_.erase(std::unique(standalone_tokens_.begin(), standalone_tokens_.end()),
                               standalone_tokens_.end());
      Chunk standalone;
      for (const int64_t tokens : standalone_tokens_) {
        standalone.tokens = tokens;
        for (size_t k = 0; k < classes && !executor_accounting_; ++k) {
          const int64_t kept = at_start(
              megatron_op_memory(memory_, Pass::kForward, standalone, 1, places_[k].place));
          kept_max[k * (nk + 1)] = std::max(kept_max[k * (nk + 1)], kept);
        }
      }
      standalone_tokens_.clear();
      for (size_t k = 0; k < classes; ++k) {  // the groups' "from here on" into each K
        int64_t running = 0;
        for (size_t ki = 0; ki < nk; ++ki) {
          running = std::max(running, group_peak_from[k * (nk + 1) + ki]);
          group_peak[k * nk + ki] = std::max(group_peak[k * nk + ki], running);
        }
      }
      memory_bounds(ks, kept_max, dropped_max, group_peak, bounds);
      return {};
    }
    // Drain: the last op of stage s on a rank is some chunk's backward; that backward then
    // runs on stages s-1..0 (input_of, plan_index.h), so stage 0 ends at least Σ_{s'<s} B
    // later — at least the sum over those stages of the shortest backward there.
    std::vector<int64_t> tail(pp, 0);
    for (size_t s = 1; s < pp; ++s) {
      int64_t shortest = kNone;
      for (int v = 0; v < vpp_; ++v) {
        shortest = std::min(shortest, shortest_b[class_at(v, static_cast<int>(s) - 1)]);
      }
      tail[s] = tail[s - 1] + shortest;
    }
    // Fill: the first op of stage s on a rank is a forward whose input passed stages 0..s-1
    // first (model chunk 0), each taking at least the rank's shortest forward there. A
    // stage's ops run one at a time, so each rank's stage ends at least head + its busy time
    // (the plan's DP assignment, assign_dp_ranks), then adds its own DP reduction and
    // optimizer, or stage 0's after the drain. A rank without chunks has no ops there.
    std::vector<int64_t> lb(nk, 0);
    for (size_t s = 0; s < pp; ++s) {
      for (size_t ki = 0; ki < nk; ++ki) {
        lb[ki] = std::max(lb[ki], std::max(fixed_ns_[s], tail[s] + fixed_ns_[0]));
      }
    }
    // A dependent group's chain on its rank (group_chain) starts after stage 0 has run the
    // forwards fed before the group (forwards run in feed order), and stage 0 runs after the
    // group's last backward the backwards of the units fed after it (the group-aware order
    // keeps units in feed order) and, in 1F1B, the forwards not yet run: before the group's
    // first backward stage 0 has run the group and pp − 1 forwards more, and none runs between
    // its backwards (pipeline_schedule.cc's rule). Then its DP reduction and optimizer step.
    // Any K: the chain and these sums take the shortest forward and no R.
    int64_t chain_lb = 0;
    for (std::vector<int64_t>& f0 : feed_f0) {  // into prefix sums: f0[q] = Σ of those before q
      int64_t sum = 0;
      for (int64_t& x : f0) sum += std::exchange(x, sum);
      f0.push_back(sum);
    }
    for (std::vector<int64_t>& b0 : feed_b0) {  // into suffix sums: b0[q] = Σ from q on
      int64_t sum = 0;
      for (size_t q = b0.size(); q-- > 0;) b0[q] = sum += b0[q];
      b0.push_back(0);
    }
    for (const Chain& g : chains) {
      const std::vector<int64_t>& f0 = feed_f0[static_cast<size_t>(g.rank)];
      const std::vector<int64_t>& b0 = feed_b0[static_cast<size_t>(g.rank)];
      const size_t m = f0.size() - 1;
      int64_t after = b0[g.first + g.n];
      if (schedule_ == ScheduleKind::kOneFOneB) {
        after += f0[m] - f0[std::min(m, g.first + g.n + pp - 1)];
      }
      chain_lb = std::max(chain_lb, f0[g.first] + g.ns + after + fixed_ns_[0]);
    }
    for (size_t ki = 0; ki < nk; ++ki) lb[ki] = std::max(lb[ki], chain_lb);
    std::vector<int64_t> work(nk);
    for (int r = 0; r < dp_; ++r) {
      const size_t row = static_cast<size_t>(r) * classes;
      int64_t head = 0;
      for (size_t s = 0; s < pp; ++s) {
        const int64_t after = std::max(fixed_ns_[s], tail[s] + fixed_ns_[0]);
        std::fill(work.begin(), work.end(), 0);
        int64_t base = 0;
        for (int v = 0; v < vpp_; ++v) {
          const size_t cell = row + class_at(v, static_cast<int>(s));
          base += busy[cell];
          int64_t running = 0;
          for (size_t ki = 0; ki < nk; ++ki) {
            running += delta[cell * (nk + 1) + ki];
            work[ki] += running;
          }
        }
        for (size_t ki = 0; ki < nk; ++ki) {
          const int64_t w = base + work[ki];
          if (w > 0) lb[ki] = std::max(lb[ki], head + w + after);
        }
        const int64_t first = fastest[row + class_at(0, static_cast<int>(s))];
        if (first != kNone) head += first;
      }
    }
    return lb;
  }

 private:
  struct Placed {
    StagePlace place;
    int stage, model_chunk;  // one place of the class
  };

  // A dependent group (pieces first..first+n−1 of the priced step) on a stage without virtual
  // stages: its pieces' forwards (F or F*) run in index order before its first backward, the
  // last piece's B (the last piece always runs F), and nothing the forwards keep is freed
  // before that B (backwards run from the last piece down, chunk_schedule.h). So at the start
  // of that B the stage holds at least every piece's kept memory plus what the B adds: what
  // the store of a long sequence split into many chunks costs, which one chunk alone does not
  // show. With K, pieces n−K..n−1 keep their activations, the others their stage input.
  void group_memory(const std::vector<const PassTimes*>& pieces, const std::vector<int>& ks,
                    std::vector<int64_t>* group_peak, std::vector<int64_t>* group_peak_from) {
    const size_t nk = ks.size(), len = pieces.size();
    const int n = static_cast<int>(len);
    // K values from position `all` on keep every piece's activations: one value for them.
    const size_t all = static_cast<size_t>(std::lower_bound(ks.begin(), ks.end(), n) - ks.begin());
    std::vector<size_t>& dropped = scratch_dropped_;
    dropped.resize(all);
    for (size_t ki = 0; ki < all; ++ki) {
      dropped[ki] = static_cast<size_t>(dropped_pieces(n, ks[ki]));
    }
    std::vector<int64_t>& dropped_prefix = scratch_prefix_;
    std::vector<int64_t>& kept_suffix = scratch_suffix_;
    dropped_prefix.assign(len + 1, 0);
    kept_suffix.assign(len + 1, 0);
    for (size_t k = 0; k < places_.size(); ++k) {
      for (size_t i = 0; i < len; ++i) {
        dropped_prefix[i + 1] = dropped_prefix[i] + pieces[i][k].kept_after_f_star;
      }
      for (size_t i = len; i-- > 0;) {
        kept_suffix[i] = kept_suffix[i + 1] + pieces[i][k].kept_after_f;
      }
      const PassTimes& last = pieces[len - 1][k];
      const int64_t adds = last.backward_at_start + last.backward_transient;
      for (size_t ki = 0; ki < all; ++ki) {
        const int64_t held = dropped_prefix[dropped[ki]] + kept_suffix[dropped[ki]];
        int64_t& peak = (*group_peak)[k * nk + ki];
        peak = std::max(peak, held + adds);
      }
      int64_t& from = (*group_peak_from)[k * (nk + 1) + all];
      from = std::max(from, kept_suffix[0] + adds);
    }
  }

  // Each stage's memory bound for every K into (*bounds)[ki]: a piece counts as kept from its
  // K position on, as dropped before it; a group's pieces together at its first backward.
  void memory_bounds(const std::vector<int>& ks, const std::vector<int64_t>& kept_max,
                     const std::vector<int64_t>& dropped_max,
                     const std::vector<int64_t>& group_peak,
                     std::vector<CandidateBounds>* bounds) const {
    const size_t nk = ks.size(), pp = static_cast<size_t>(pp_);
    std::vector<int64_t> dropped_after(nk + 2);
    for (size_t s = 0; s < pp; ++s) {
      std::vector<int64_t> stage_mem(nk, 0);
      for (int v = 0; v < vpp_; ++v) {
        const size_t k = class_at(v, static_cast<int>(s));
        dropped_after[nk + 1] = 0;
        for (size_t ki = nk + 1; ki-- > 0;) {
          dropped_after[ki] = std::max(dropped_after[ki + 1], dropped_max[k * (nk + 1) + ki]);
        }
        int64_t upto = 0;
        for (size_t ki = 0; ki < nk; ++ki) {
          upto = std::max(upto, kept_max[k * (nk + 1) + ki]);
          stage_mem[ki] = std::max({stage_mem[ki], upto, dropped_after[ki + 1]});
        }
      }
      for (size_t ki = 0; ki < nk; ++ki) {
        if (vpp_ == 1) {
          stage_mem[ki] =
              std::max(stage_mem[ki], group_peak[class_at(0, static_cast<int>(s)) * nk + ki]);
        }
        const int64_t bytes = states_[s] + stage_mem[ki];
        CandidateBounds& b = (*bounds)[ki];
        if (bytes > b.memory_bytes) {
          b.memory_bytes = bytes;
          b.memory_stage = static_cast<int>(s);
          b.model_state_bytes = states_[s];
        }
      }
    }
  }

  // The longest path through one dependent group's own ops on a pipeline without virtual
  // stages, from its first forward on stage 0 to its last backward there (input_of,
  // plan_index.h; chunk_schedule.h): on each stage its forwards run in piece order and each
  // needs the piece's forward on the stage before; its backwards run from the last piece down,
  // after its last forward there, and each needs the piece's backward on the stage after.
  // Shortest forwards (F or F*) and no R: a bound for every K. Transfers count 0.
  int64_t group_chain(const std::vector<const PassTimes*>& pieces) {
    const size_t pp = static_cast<size_t>(pp_), n = pieces.size();
    std::vector<int64_t>& forward_end = scratch_prefix_;
    std::vector<int64_t>& backward_end = scratch_suffix_;
    forward_end.assign(pp, 0);
    backward_end.assign(pp, 0);
    for (size_t i = 0; i < n; ++i) {
      for (size_t s = 0; s < pp; ++s) {
        const PassTimes& t = pieces[i][class_at(0, static_cast<int>(s))];
        const int64_t ready = s > 0 ? std::max(forward_end[s], forward_end[s - 1]) : forward_end[s];
        forward_end[s] = ready + std::min(t.forward, t.forward_kv);
      }
    }
    for (size_t j = n; j-- > 0;) {
      for (size_t s = pp; s-- > 0;) {
        const PassTimes& t = pieces[j][class_at(0, static_cast<int>(s))];
        int64_t ready = j == n - 1 ? forward_end[s] : backward_end[s];
        if (s + 1 < pp) ready = std::max(ready, backward_end[s + 1]);
        backward_end[s] = ready + t.backward;
      }
    }
    return backward_end[0];
  }

  // What the replay holds at the start of an op: its activations, store and transient.
  static int64_t at_start(const OpMemory& m) {
    return m.activations_at_start + m.store_at_start + m.transient;
  }

  size_t class_at(int model_chunk, int stage) const {
    return static_cast<size_t>(class_of_[static_cast<size_t>(model_chunk * pp_ + stage)]);
  }

  // Where the simulator prices the chunk's ops (the plan's rules, plan_index.h), and what the
  // replay holds at the start of its F (its activations, K/V and transient) and, after an F*,
  // at the start of its R (F*'s stage input and K/V, R's activations and transient): the
  // simulator's own op memory (memory_source.h; F, F* and R do not depend on K). Everything
  // else held then is >= 0, so these are lower bounds.
  void price_chunk(const Chunk& chunk, PassTimes* out, bool times, bool memory) {
    const bool dependent = chunk.kind == ChunkKind::kDependent;
    if (times) time_chunk(chunk, out);
    for (size_t k = 0; memory && k < places_.size(); ++k) {
      PassTimes& t = out[k];
      const StagePlace& place = places_[k].place;
      const OpMemory f = megatron_op_memory(memory_, Pass::kForward, chunk, 1, place);
      t.kept_bytes = at_start(f);
      if (!dependent) continue;
      const OpMemory f_star = megatron_op_memory(memory_, Pass::kForwardKeepKV, chunk, 1, place);
      const OpMemory recompute = megatron_op_memory(memory_, Pass::kRecompute, chunk, 1, place);
      t.dropped_bytes = f_star.activations_at_start + f_star.store_at_start + at_start(recompute);
      t.kept_after_f = kept_after(f);
      t.kept_after_f_star = kept_after(f_star);
      // B's additions do not depend on K (only what its end frees does).
      const OpMemory backward = megatron_op_memory(memory_, Pass::kBackward, chunk, 1, place);
      t.backward_at_start = backward.activations_at_start + backward.store_at_start;
      t.backward_transient = backward.transient;
    }
  }

  static int64_t kept_after(const OpMemory& m) {
    return m.activations_at_start + m.store_at_start + m.activations_at_end + m.store_at_end;
  }

  // The op times of a chunk's passes in every class of places.
  void time_chunk(const Chunk& chunk, PassTimes* out) {
    const bool dependent = chunk.kind == ChunkKind::kDependent;
    spans_.clear();
    attention_spans(chunk, &spans_);
    static constexpr Pass kPasses[] = {Pass::kForward, Pass::kBackward, Pass::kForwardKeepKV,
                                       Pass::kRecompute};
    const size_t passes = dependent ? 4 : 2;
    queries_.clear();
    for (const Placed& p : places_) {
      for (size_t i = 0; i < passes; ++i) {
        queries_.push_back(
            op_query(kPasses[i], 0, p.stage, p.model_chunk, p.place, chunk.tokens, spans_));
      }
    }
    priced_.resize(queries_.size());
    cost_.op_times(queries_, priced_);
    for (size_t k = 0; k < places_.size(); ++k) {
      PassTimes& t = out[k];
      const OpTime* time = &priced_[k * passes];
      t.forward = time[0].total_ns;
      t.backward = time[1].total_ns;
      if (dependent) {
        t.forward_kv = time[2].total_ns;
        t.recompute = time[3].total_ns;
        if (t.forward_kv < t.forward) slower_with_smaller_k_ = false;
      }
    }
  }

  const CostModel& cost_;
  int pp_, vpp_;
  ScheduleKind schedule_;
  LayerSplit split_;
  MemoryModel memory_;
  bool executor_accounting_ = false;
  int dp_ = 1;
  double pair_weight_ = 0;
  int64_t chunk_size_ = 0;  // the strategy's ChunkSize
  std::vector<int64_t> fixed_ns_, states_;
  std::vector<Placed> places_;         // one per class
  std::vector<int> class_of_;          // per virtual place v·pp + s: its class
  bool slower_with_smaller_k_ = true;  // no chunk's F* priced below its F so far
  // The pricings of dependent pieces by (tokens, offset in the sequence, last of its group).
  struct PieceKey {
    int64_t tokens, offset;
    bool last;
    bool operator==(const PieceKey&) const = default;
  };
  struct PieceHash {
    size_t operator()(const PieceKey& k) const {
      return std::hash<int64_t>()(k.tokens * 1000003 + k.offset * 2 + (k.last ? 1 : 0));
    }
  };
  // A piece's prices per class, and which of them are in.
  struct Priced {
    std::vector<PassTimes> passes;
    bool memory = false, times = false;
  };
  std::unordered_map<PieceKey, Priced, PieceHash> pieces_;
  std::vector<PassTimes> scratch_times_;    // a standalone chunk's, per class
  std::vector<int64_t> standalone_tokens_;  // of the step's standalone chunks (memory pass)
  // Pieces of ChunkSize tokens at offset index·ChunkSize, per (index, last of its group):
  // per class, empty until priced (each its own buffer: a group's pieces stay put).
  std::vector<Priced> regular_;
  std::deque<std::vector<PassTimes>> unshared_;  // pieces of the current group priced alone
  std::vector<AttentionSpan> spans_;
  std::vector<OpQuery> queries_;
  std::vector<OpTime> priced_;
  std::vector<size_t> scratch_dropped_;
  std::vector<int64_t> scratch_prefix_, scratch_suffix_;
};

}  // namespace

const std::vector<int>& StepChunks::dp_ranks(int step, int dp, double pair_weight) const {
  std::lock_guard<std::mutex> lock(ranks_.mu);
  auto [it, fresh] = ranks_.ranks.try_emplace({step, dp, pair_weight});
  if (fresh) it->second = assign_dp_ranks(steps[static_cast<size_t>(step)], dp, pair_weight);
  return it->second;
}

std::vector<CandidateBounds> candidate_bounds(const Job& job, const CostModel& cost,
                                              const StepChunks& chunks, const std::vector<int>& ks,
                                              int64_t memory_budget_bytes) {
  CF_CHECK(!chunks.steps.empty()) << "no sampled steps";
  Bounder bounder(job, cost);
  std::vector<CandidateBounds> out(ks.size());
  if (memory_budget_bytes > 0 && bounder.max_model_states() > memory_budget_bytes) {
    // Over the budget before any chunk: the memory bound is all it takes, the times stay 0.
    const std::vector<int64_t>& states = bounder.model_states();
    const auto worst = std::max_element(states.begin(), states.end());
    for (CandidateBounds& b : out) {
      b.memory_bytes = *worst;
      b.memory_stage = static_cast<int>(worst - states.begin());
      b.model_state_bytes = *worst;
      b.tokens_per_s = std::numeric_limits<double>::infinity();
    }
    return out;
  }
  // Memory first, over every step (the worst-case one included): a layout whose every K is
  // over the budget needs no step-time bound.
  for (int s = 0; s < static_cast<int>(chunks.steps.size()); ++s) {
    CF_CHECK(!chunks.steps[static_cast<size_t>(s)].empty()) << "a step without chunks";
    bounder.bound_step(chunks, s, ks, /*times=*/false, &out);
  }
  if (memory_budget_bytes > 0 && std::all_of(out.begin(), out.end(), [&](const CandidateBounds& b) {
        return b.memory_bytes > memory_budget_bytes;
      })) {
    for (CandidateBounds& b : out) b.tokens_per_s = std::numeric_limits<double>::infinity();
    return out;
  }
  std::vector<double> lb_sum_s(ks.size(), 0.0);
  double tokens_sum = 0;
  const int timed = chunks.timed_steps();
  for (int s = 0; s < timed; ++s) {
    const std::vector<Chunk>& step = chunks.steps[static_cast<size_t>(s)];
    for (const Chunk& chunk : step) tokens_sum += static_cast<double>(chunk.tokens);
    const std::vector<int64_t> lb_ns = bounder.bound_step(chunks, s, ks, /*times=*/true, &out);
    for (size_t ki = 0; ki < ks.size(); ++ki) {
      const double seconds = static_cast<double>(lb_ns[ki]) * 1e-9;
      lb_sum_s[ki] += seconds;
      out[ki].step_s.push_back(seconds);
    }
  }
  const double steps = static_cast<double>(timed);
  for (CandidateBounds& b : out) b.slower_with_smaller_k = bounder.slower_with_smaller_k();
  for (size_t ki = 0; ki < ks.size(); ++ki) {
    // average_steps: mean of per-step seconds; tokens/s = Σ tokens / Σ seconds.
    out[ki].step_time_s = timed == 1 ? lb_sum_s[ki] : lb_sum_s[ki] / steps;
    out[ki].tokens_per_s =
        lb_sum_s[ki] > 0 ? tokens_sum / lb_sum_s[ki] : std::numeric_limits<double>::infinity();
  }
  return out;
}

}  // namespace cf

// The search (search.h, search_detail.h): bounds per family, then waves of screens and
// simulations in bound order with exact pruning, shared between processes when asked. A
// candidate's evaluation is search_evaluate.cc.
#include "tuner/search.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <queue>
#include <tuple>
#include <utility>

#include "sim/cost_model.h"
#include "sim/memory_source.h"
#include "tuner/search_detail.h"
#include "tuner/sweep_wire.h"

namespace cf {
namespace search_detail {

// Families evaluated between two updates of the pruning threshold. A constant (not the thread
// count) so that which candidates are pruned never depends on the machine.
constexpr int kWave = 32;
// At most this many candidates in a wave (over its families' runs).
constexpr int kWaveCandidates = 32;

StatusOr<SearchResult> Search::run(int top_n, int folded) {
  const int n = static_cast<int>(candidates_.size());
  outcomes_.assign(n, Outcome{});
  bounds_.assign(n, CandidateBounds{});
  // Bounds, one family per task.
  // With peers, this process bounds every size()-th family and all exchange them.
  pool_.parallel_for(static_cast<int>(families_.size()), [&](int f, int w) {
    if (f % processes() != process()) return;
    const Family& family = families_[f];
    Job job = job_with(workers_[w].job, family.layout, family.strategy);
    StatusOr<std::unique_ptr<CostModel>> cost = make_cost_model(job);
    // Reported by the evaluation of the same candidates.
    if (!cost.ok() || !make_memory_source(job).ok()) return;
    std::vector<CandidateBounds> b =
        candidate_bounds(job, **cost, *family.chunks, family.ks, budget_bytes_);
    for (size_t i = 0; i < b.size(); ++i) bounds_[family.candidates[i]] = b[i];
  });
  CF_RETURN_IF_ERROR(share_bounds());
  std::vector<int> order;
  for (int i = 0; i < n; ++i) {
    const CandidateBounds& b = bounds_[i];
    if (!options_.exhaustive && options_.prune_by_memory && b.memory_bytes > budget_bytes_) {
      Outcome& o = outcomes_[i];
      o.kind = Outcome::kPrunedMemory;
      o.excess_bytes = b.memory_bytes - budget_bytes_;
      const bool states_alone = b.model_state_bytes > budget_bytes_;
      o.reason = states_alone ? "model states alone exceed the memory budget"
                              : "model states + one chunk's activations exceed the memory budget";
      o.detail = fmt::format(
          "{}: stage {} needs at least {} (model states {} + the largest chunk's activations, "
          "K/V and working memory {}) > budget {}",
          label(candidates_[i]), b.memory_stage, format_bytes(b.memory_bytes),
          format_bytes(b.model_state_bytes), format_bytes(b.memory_bytes - b.model_state_bytes),
          format_bytes(budget_bytes_));
      settle();
    } else {
      order.push_back(i);
    }
  }
  // Pending candidates by (bound now, own bound, index), smallest first: among equal bounds —
  // a family's smaller K raised to one floor — the better own bound (the larger K) first.
  using Entry = std::tuple<double, double, int>;
  std::priority_queue<Entry, std::vector<Entry>, std::greater<Entry>> pending;
  for (const int i : order) pending.push({bound_score(i), bound_score(i), i});
  std::vector<int> feasible;  // sorted by (score, index)
  // Waves in bound order. A wave takes the next candidates of up to kWave families, each
  // family's as one run that one worker evaluates in order: what a run finds prunes the
  // family's smaller K (dominated) without simulating them, in this wave and later ones.
  // A candidate is first screened on one rank per step (Look::kScreen), which proves a floor
  // of its score close to the score: it waits with that floor as its bound, as do the
  // family's smaller K (family_floor), and is evaluated in full when the floor comes up. So
  // full simulations go in nearly the order of their scores and the N-th best is soon
  // found.
  std::vector<int> run_of_family(families_.size(), -1);  // this wave's run, or −1
  looked_.assign(static_cast<size_t>(n), 0);
  for (;;) {
    const double threshold =
        static_cast<int>(feasible.size()) >= top_n ? score_of(feasible[top_n - 1]) : kInf;
    std::vector<std::vector<std::pair<double, int>>> runs;
    std::vector<Entry> later;  // families of a later wave
    int taken = 0;
    while (!pending.empty() && taken < kWaveCandidates) {
      const auto [bound, own, i] = pending.top();
      if (!options_.exhaustive && bound > threshold) break;  // and all others (sorted)
      pending.pop();
      if (outcomes_[static_cast<size_t>(i)].kind != Outcome::kPending) continue;
      const double floor = options_.exhaustive ? -kInf : family_floor(i);
      if (floor > bound) {  // raised by the family since it was queued
        pending.push({floor, own, i});
        continue;
      }
      int& run = run_of_family[static_cast<size_t>(family_of_[i])];
      if (run < 0) {
        if (static_cast<int>(runs.size()) == kWave) {
          later.push_back({bound, own, i});
          continue;
        }
        run = static_cast<int>(runs.size());
        runs.emplace_back();
      }
      runs[static_cast<size_t>(run)].push_back({bound, i});
      ++taken;
    }
    for (const Entry& e : later) pending.push(e);
    if (runs.empty()) break;  // every candidate left is bounded above the threshold
    std::vector<Status> errors(runs.size());
    std::vector<int> mine;  // the runs this process evaluates (with peers, every size()-th)
    for (int r = process(); r < static_cast<int>(runs.size()); r += processes()) {
      mine.push_back(r);
    }
    pool_.parallel_for(static_cast<int>(mine.size()), [&](int m, int w) {
      const int r = mine[static_cast<size_t>(m)];
      for (const auto& [bound, i] : runs[static_cast<size_t>(r)]) {
        Outcome& o = outcomes_[static_cast<size_t>(i)];
        if (!options_.exhaustive && dominated(i, threshold)) {
          o.kind = Outcome::kPrunedTime;
        } else if (!options_.exhaustive && !looked_[static_cast<size_t>(i)] &&
                   family_floor(i) > bound) {
          continue;  // a larger K screened in this run raised it: waits for its turn
        } else {
          errors[r] = evaluate(i, workers_[w], threshold, look_for(i));
          if (!errors[r].ok()) return;
          if (o.kind == Outcome::kPending) {  // screened: waits with its floor
            looked_[static_cast<size_t>(i)] = 1;
            continue;
          }
        }
        settle();
      }
    });
    CF_RETURN_IF_ERROR(share_outcomes(runs, &errors));
    for (size_t r = 0; r < runs.size(); ++r) {
      if (!errors[r].ok()) return errors[r];
      for (const auto& [bound, i] : runs[r]) {
        run_of_family[static_cast<size_t>(family_of_[i])] = -1;
        const Outcome& o = outcomes_[static_cast<size_t>(i)];
        if (o.kind == Outcome::kFeasible) feasible.push_back(i);
        if (o.kind == Outcome::kPending) {
          double key = std::max(bound, family_floor(i));
          if (looked_[static_cast<size_t>(i)]) key = std::max(key, o.score_floor);
          pending.push({key, bound_score(i), i});
        }
      }
    }
    std::stable_sort(feasible.begin(), feasible.end(), [&](int a, int b) {
      const double sa = score_of(a), sb = score_of(b);
      return sa != sb ? sa < sb : a < b;
    });
  }
  for (const int i : order) {
    if (outcomes_[i].kind != Outcome::kPending) continue;
    outcomes_[i].kind = Outcome::kPrunedTime;
    settle();
  }
  return summarise(feasible, folded);
}

// With peers: each process's entries for items p, p + size, p + 2·size, ... of `count` (its
// share, as make(item) writes them) reach every process, which takes each other process's
// with take(item, entry). Throws nlohmann::json::exception on a malformed entry.
template <typename Make, typename Take>
void Search::exchange(size_t count, const Make& make, const Take& take) {
  const size_t me = static_cast<size_t>(process()), step = static_cast<size_t>(processes());
  nlohmann::json mine = nlohmann::json::array();
  for (size_t item = me; item < count; item += step) mine.push_back(make(item));
  const std::vector<std::vector<uint8_t>> all =
      options_.peers->all_gather(nlohmann::json::to_cbor(mine));
  for (size_t p = 0; p < step; ++p) {
    if (p == me) continue;
    size_t item = p;
    for (const nlohmann::json& entry : nlohmann::json::from_cbor(all[p])) {
      CF_CHECK_LT(item, count);
      take(item, entry);
      item += step;
    }
  }
}

// With peers: every process's bounds of the families it took, into bounds_ everywhere.
Status Search::share_bounds() {
  if (processes() == 1) return Status::Ok();
  try {
    exchange(
        families_.size(),
        [&](size_t f) {
          nlohmann::json family = nlohmann::json::array();
          for (const int i : families_[f].candidates) {
            const CandidateBounds& b = bounds_[static_cast<size_t>(i)];
            family.push_back({b.step_time_s, b.step_s, b.tokens_per_s, b.memory_bytes,
                              b.memory_stage, b.model_state_bytes, b.slower_with_smaller_k});
          }
          return family;
        },
        [&](size_t f, const nlohmann::json& family) {
          const std::vector<int>& members = families_[f].candidates;
          CF_CHECK_EQ(family.size(), members.size());
          for (size_t k = 0; k < members.size(); ++k) {
            const nlohmann::json& j = family[k];
            CandidateBounds& b = bounds_[static_cast<size_t>(members[k])];
            b.step_time_s = j.at(0).get<double>();
            b.step_s = j.at(1).get<std::vector<double>>();
            b.tokens_per_s = j.at(2).get<double>();
            b.memory_bytes = j.at(3).get<int64_t>();
            b.memory_stage = j.at(4).get<int>();
            b.model_state_bytes = j.at(5).get<int64_t>();
            b.slower_with_smaller_k = j.at(6).get<bool>();
          }
        });
  } catch (const nlohmann::json::exception& e) {
    return Status::Runtime(std::string("a peer's search bounds do not read: ") + e.what());
  }
  return Status::Ok();
}

// With peers: the outcomes of every process's runs of this wave (and their errors), into
// outcomes_, looked_ and *errors everywhere; candidates settled elsewhere count here too.
Status Search::share_outcomes(const std::vector<std::vector<std::pair<double, int>>>& runs,
                              std::vector<Status>* errors) {
  if (processes() == 1) return Status::Ok();
  try {
    exchange(
        runs.size(),
        [&](size_t r) {
          const Status& error = (*errors)[r];
          nlohmann::json run = {static_cast<int>(error.code()), error.message(),
                                nlohmann::json::array()};
          for (const auto& [bound, i] : runs[r]) {
            const Outcome& o = outcomes_[static_cast<size_t>(i)];
            run[2].push_back(
                {static_cast<int>(o.kind), o.reason, o.detail, o.excess_bytes, o.score_floor,
                 looked_[static_cast<size_t>(i)] != 0,
                 o.kind == Outcome::kFeasible ? sim_metrics_to_wire(o.metrics) : nlohmann::json(),
                 o.offloaded, o.offload_line});
          }
          return run;
        },
        [&](size_t r, const nlohmann::json& run) {
          const int code = run.at(0).get<int>();
          if (code != 0) {
            const std::string message = run.at(1).get<std::string>();
            (*errors)[r] = code == static_cast<int>(StatusCode::kInvalidInput)
                               ? Status::InvalidInput(message)
                               : Status::Runtime(message);
          }
          const nlohmann::json& outcomes = run.at(2);
          CF_CHECK_LE(outcomes.size(), runs[r].size());
          for (size_t k = 0; k < outcomes.size(); ++k) {
            const nlohmann::json& j = outcomes[k];
            const int i = runs[r][k].second;
            Outcome& o = outcomes_[static_cast<size_t>(i)];
            o.kind = static_cast<Outcome::Kind>(j.at(0).get<int>());
            o.reason = j.at(1).get<std::string>();
            o.detail = j.at(2).get<std::string>();
            o.excess_bytes = j.at(3).get<int64_t>();
            o.score_floor = j.at(4).get<double>();
            looked_[static_cast<size_t>(i)] = j.at(5).get<bool>() ? 1 : 0;
            if (o.kind == Outcome::kFeasible) o.metrics = sim_metrics_from_wire(j.at(6));
            o.offloaded = j.at(7).get<bool>();
            o.offload_line = j.at(8).get<int64_t>();
            if (o.kind != Outcome::kPending) settle();
          }
        });
  } catch (const nlohmann::json::exception& e) {
    return Status::Runtime(std::string("a peer's search outcomes do not read: ") + e.what());
  }
  return Status::Ok();
}

// How candidate i is evaluated: screened first where a screen is cheaper than the whole
// step (DP ranks to leave out) and neither it nor a larger K of its family has been
// looked at; in full without the one-rank look once it was screened itself.
Look Search::look_for(int i) const {
  if (options_.exhaustive || candidates_[static_cast<size_t>(i)].layout.dp == 1) {
    return Look::kFull;
  }
  if (looked_[static_cast<size_t>(i)]) return Look::kFullOnly;
  return family_floor(i) > -kInf ? Look::kFull : Look::kScreen;
}

// The largest score floor a larger K of candidate i's family proves for it (a smaller K
// never scores better, bounds.h slower_with_smaller_k): a screened one's floor or a
// simulated one's score; −∞ when none.
double Search::family_floor(int i) const {
  // Under kv_offload: auto a larger K may run offloaded and a smaller one not: no order.
  if (!bounds_[static_cast<size_t>(i)].slower_with_smaller_k ||
      candidates_[static_cast<size_t>(i)].auto_offload) {
    return -kInf;
  }
  const Family& family = families_[static_cast<size_t>(family_of_[static_cast<size_t>(i)])];
  const int k = candidates_[static_cast<size_t>(i)].strategy.k;
  double floor = -kInf;
  for (const int j : family.candidates) {
    if (candidates_[static_cast<size_t>(j)].strategy.k <= k) continue;
    const Outcome& o = outcomes_[static_cast<size_t>(j)];
    if (o.kind == Outcome::kPending && looked_[static_cast<size_t>(j)]) {
      floor = std::max(floor, o.score_floor);
    } else if (o.kind == Outcome::kFeasible) {
      floor = std::max(floor, score_of(j));
    }
  }
  return floor;
}

// Whether candidate i provably scores above `threshold` because a candidate of its family
// with a larger K does (bounds.h slower_with_smaller_k: a smaller K never simulates
// faster, so it never scores better): that one was pruned by time (its score was proved
// above an earlier threshold, and thresholds only fall) or simulated above the threshold.
bool Search::dominated(int i, double threshold) const {
  if (!bounds_[static_cast<size_t>(i)].slower_with_smaller_k ||
      candidates_[static_cast<size_t>(i)].auto_offload) {
    return false;
  }
  const Family& family = families_[static_cast<size_t>(family_of_[static_cast<size_t>(i)])];
  const int k = candidates_[static_cast<size_t>(i)].strategy.k;
  for (const int j : family.candidates) {
    if (candidates_[static_cast<size_t>(j)].strategy.k <= k) continue;
    const Outcome& o = outcomes_[static_cast<size_t>(j)];
    if (o.kind == Outcome::kPrunedTime) return true;
    if (o.kind == Outcome::kFeasible && score_of(j) > threshold) return true;
  }
  return false;
}

SearchResult Search::summarise(const std::vector<int>& feasible, int folded) const {
  SearchResult r;
  r.candidates = static_cast<int>(candidates_.size());
  r.folded = folded;
  int closest = -1;
  for (int i = 0; i < r.candidates; ++i) {
    const Outcome& o = outcomes_[i];
    if (o.kind == Outcome::kFeasible || o.kind == Outcome::kInfeasible) ++r.evaluated;
    if (o.kind == Outcome::kPrunedTime) ++r.pruned_time;
    if (o.kind == Outcome::kPrunedMemory) ++r.pruned_memory;
    if (o.kind == Outcome::kInfeasible || o.kind == Outcome::kPrunedMemory) {
      ++r.infeasible;
      ++r.infeasible_reasons[o.reason];
      const bool memory = o.excess_bytes > 0;
      if (closest < 0 || (memory && (outcomes_[closest].excess_bytes <= 0 ||
                                     o.excess_bytes < outcomes_[closest].excess_bytes))) {
        closest = i;
      }
    }
  }
  if (closest >= 0) r.closest_miss = outcomes_[closest].detail;
  r.outcomes.resize(candidates_.size());
  for (int i = 0; i < r.candidates; ++i) {
    const Outcome& o = outcomes_[i];
    CandidateOutcome& out = r.outcomes[static_cast<size_t>(i)];
    out.candidate = resolved(i);
    switch (o.kind) {
      case Outcome::kFeasible:
      case Outcome::kPending:  // every candidate is settled by now (CHECKed below)
        out.kind = CandidateOutcome::Kind::kFeasible;
        break;
      case Outcome::kInfeasible:
        out.kind = CandidateOutcome::Kind::kInfeasible;
        break;
      case Outcome::kPrunedTime:
        out.kind = CandidateOutcome::Kind::kPrunedTime;
        break;
      case Outcome::kPrunedMemory:
        out.kind = CandidateOutcome::Kind::kPrunedMemory;
        break;
    }
    CF_CHECK(o.kind != Outcome::kPending) << "candidate " << i << " was never settled";
    out.score_floor = o.score_floor;
    out.reason = o.reason;
    out.detail = o.detail;
  }
  for (int i : feasible) {
    r.outcomes[static_cast<size_t>(i)].ranked = static_cast<int>(r.ranked.size());
    r.ranked.push_back({resolved(i), outcomes_[i].metrics});
  }
  return r;
}

// Candidates of one layout and chunking, with K values at or above the longest group folded
// into the first of them. Returns the number folded.
int add_candidates(Search& search, const ParallelLayout& layout, const StrategyConfig& strategy,
                   const StepChunks& chunks, const std::vector<int>& ks) {
  // kv_offload: auto is decided per candidate (Search::evaluate); its bounds are those of the
  // K/V on the GPU (offload only adds time: the copies' stall).
  const bool automatic = strategy.kv_offload == KvOffload::kAuto;
  StrategyConfig placed = strategy;
  if (automatic) placed.kv_offload = KvOffload::kNone;
  Family family{layout, placed, &chunks, {}, {}};
  int folded = 0;
  for (size_t i = 0; i < ks.size(); ++i) {
    const bool covers = ks[i] >= chunks.max_group_size;
    Candidate c;
    c.index = static_cast<int>(search.candidates().size());
    c.layout = layout;
    c.strategy = placed;
    c.strategy.k = ks[i];
    c.auto_offload = automatic;
    c.k_covers = covers ? ks.back() : ks[i];
    c.max_group_size = chunks.max_group_size;
    family.ks.push_back(ks[i]);
    family.candidates.push_back(c.index);
    search.candidates().push_back(c);
    if (covers) {
      folded = static_cast<int>(ks.size() - i - 1);
      break;
    }
  }
  search.add_family(std::move(family));
  return folded;
}

}  // namespace search_detail

class CandidateSearch::Impl : public search_detail::Search {
 public:
  using Search::Search;
};

CandidateSearch::CandidateSearch(const Job& job, const SearchSpace& space,
                                 const std::vector<PlanInputs>& steps, const ThreadPool& pool,
                                 std::vector<SearchWorker>& workers, int64_t budget_bytes,
                                 const TuneOptions& options, std::atomic<int>* done,
                                 const int* total, std::mutex* progress_mu)
    : impl_(std::make_unique<Impl>(job, space, steps, pool, workers, budget_bytes, options, done,
                                   total, progress_mu)) {}

CandidateSearch::~CandidateSearch() = default;

int CandidateSearch::add_candidates(const ParallelLayout& layout, const StrategyConfig& strategy,
                                    const StepChunks& chunks, const std::vector<int>& ks) {
  return search_detail::add_candidates(*impl_, layout, strategy, chunks, ks);
}

int CandidateSearch::size() const { return static_cast<int>(impl_->candidates().size()); }

StatusOr<SearchResult> CandidateSearch::run(int top_n, int folded) {
  return impl_->run(top_n, folded);
}

}  // namespace cf

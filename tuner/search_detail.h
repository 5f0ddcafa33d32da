// The search's internals (search.h is the interface): candidates grouped in families (one
// layout and chunking), their outcomes, and the Search that runs them — its waves, ordering
// and sharing between processes in search.cc, a candidate's evaluation in search_evaluate.cc.
// Internal to tuner/.
#pragma once

#include <fmt/format.h>

#include <atomic>
#include <cstdint>
#include <limits>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "core/status.h"
#include "sim/simulator.h"
#include "tuner/bounds.h"
#include "tuner/search.h"

namespace cf {
// Named (not anonymous) so that CandidateSearch::Impl may derive from Search.
namespace search_detail {
inline constexpr double kInf = std::numeric_limits<double>::infinity();

// One layout and one chunking: the candidates that differ only in K share their bounds.
struct Family {
  ParallelLayout layout;
  StrategyConfig strategy;  // k set per candidate
  const StepChunks* chunks = nullptr;
  std::vector<int> ks;
  std::vector<int> candidates;  // indices, parallel to ks
};

// How a candidate is evaluated: a screen (one DP rank per step: its memory, and its step time
// as a floor of the score), in full (with each step's one-rank look first, which can end it
// early), or in full without the one-rank look (for a candidate already screened).
enum class Look { kScreen, kFull, kFullOnly };

// What happened to one candidate.
struct Outcome {
  enum Kind { kPending, kFeasible, kInfeasible, kPrunedTime, kPrunedMemory } kind = kPending;
  SimMetrics metrics;
  std::string reason;        // infeasible: the category counted in infeasible_reasons
  std::string detail;        // infeasible: the numbers, for the closest miss
  int64_t excess_bytes = 0;  // over the budget (memory reasons only; 0 otherwise)
  double score_floor = 0;    // pruned by time or screened: a score it was proved to exceed
  bool offloaded = false;    // kv_offload: auto — it ran with its K/V offloaded,
  int64_t offload_line = 0;  // those of the sequences of at least this many tokens (0: all)
};

// The DP rank whose memory to judge first: the one holding the step's longest dependent group
// (its store and kept pieces dominate a stage's peak), or the most tokens when nothing splits.
int memory_screen_rank(const StepChunks& step_chunks, int step, int dp, double pair_weight);

class Search {
 public:
  Search(const Job& job, const SearchSpace& space, const std::vector<PlanInputs>& steps,
         const ThreadPool& pool, std::vector<SearchWorker>& workers, int64_t budget_bytes,
         const TuneOptions& options, std::atomic<int>* done, const int* total,
         std::mutex* progress_mu)
      : job_(job),
        space_(space),
        steps_(steps),
        pool_(pool),
        workers_(workers),
        budget_bytes_(budget_bytes),
        options_(options),
        done_(done),
        total_(total),
        progress_mu_(progress_mu) {}

  void add_family(Family family) {
    for (int c : family.candidates) {
      if (chunks_.size() <= static_cast<size_t>(c)) chunks_.resize(c + 1);
      if (family_of_.size() <= static_cast<size_t>(c)) family_of_.resize(c + 1);
      chunks_[c] = family.chunks;
      family_of_[c] = static_cast<int>(families_.size());
    }
    families_.push_back(std::move(family));
  }
  std::vector<Candidate>& candidates() { return candidates_; }

  StatusOr<SearchResult> run(int top_n, int folded);

 private:
  int process() const { return options_.peers ? options_.peers->rank() : 0; }
  int processes() const { return options_.peers ? options_.peers->size() : 1; }

  // With peers: each process's entries for items p, p + size, p + 2·size, ... of `count` (its
  // share, as make(item) writes them) reach every process, which takes each other process's
  // with take(item, entry). Throws nlohmann::json::exception on a malformed entry.
  template <typename Make, typename Take>
  void exchange(size_t count, const Make& make, const Take& take);

  // With peers: every process's bounds of the families it took, into bounds_ everywhere.
  Status share_bounds();

  // With peers: the outcomes of every process's runs of this wave (and their errors), into
  // outcomes_, looked_ and *errors everywhere; candidates settled elsewhere count here too.
  Status share_outcomes(const std::vector<std::vector<std::pair<double, int>>>& runs,
                        std::vector<Status>* errors);

  double bound_score(int i) const {
    return space_.objective == Objective::kStepTime ? bounds_[i].step_time_s
                                                    : -bounds_[i].tokens_per_s;
  }
  double score_of(int i) const { return objective_score(space_.objective, outcomes_[i].metrics); }
  // The score of `timed` sampled steps taking `total_s` together and carrying `tokens`
  // (average_steps: the mean step time; tokens/s = Σ tokens / Σ seconds, negated).
  double score_of_steps(double total_s, int timed, double tokens) const {
    if (space_.objective == Objective::kStepTime) return total_s / timed;
    return -(total_s > 0 ? tokens / total_s : std::numeric_limits<double>::infinity());
  }

  // How candidate i is evaluated: screened first where a screen is cheaper than the whole
  // step (DP ranks to leave out) and neither it nor a larger K of its family has been
  // looked at; in full without the one-rank look once it was screened itself.
  Look look_for(int i) const;

  // The largest score floor a larger K of candidate i's family proves for it (a smaller K
  // never scores better, bounds.h slower_with_smaller_k): a screened one's floor or a
  // simulated one's score; −∞ when none.
  double family_floor(int i) const;

  // Whether candidate i provably scores above `threshold` because a candidate of its family
  // with a larger K does (bounds.h slower_with_smaller_k: a smaller K never simulates
  // faster, so it never scores better): that one was pruned by time (its score was proved
  // above an earlier threshold, and thresholds only fall) or simulated above the threshold.
  bool dominated(int i, double threshold) const;

  static std::string label(const Candidate& c) {
    if (c.strategy.kind == StrategyKind::kBaseline) return "baseline " + describe(c.layout);
    return fmt::format("ChunkSize {} K {} {} {}", c.strategy.chunk_size, c.strategy.k,
                       to_string(c.strategy.packer), describe(c.layout));
  }

  void settle() {
    const int now = done_->fetch_add(1) + 1;
    if (options_.progress) {
      std::lock_guard<std::mutex> lock(*progress_mu_);
      options_.progress(now, *total_);
    }
  }

  // Simulates a candidate step by step: the worst-case batch first (memory only: when it
  // does not fit, nothing else needs simulating), then the sampled steps, each checked for
  // memory; after each sampled step the score can be bounded by the steps simulated so far
  // plus the bounds of the rest (bounds.h), and a candidate whose bound is above `threshold`
  // (the current N-th best score) cannot reach the top N and is pruned there.
  // kv_offload: auto (Candidate::auto_offload): with the K/V on the GPU first; when that is
  // over the memory budget, with every split sequence offloaded (straight so once a screen
  // found it over), and when that fits in full, on the line of the fewest sequences that fit
  // (bisect_offload_line over memory-only probes), which replaces it when it fits too.
  Status evaluate(int index, SearchWorker& worker, double threshold, Look look = Look::kFull);
  Status evaluate_placed(int index, SearchWorker& worker, double threshold, Look look,
                         KvOffload placement, int64_t min_tokens);
  // Whether candidate `index` with the K/V of its sequences of at least `line` tokens
  // offloaded fits the memory budget in every sampled step and the worst case (memory only).
  StatusOr<bool> fits_offloaded(int index, SearchWorker& worker, int64_t line);
  // Candidate i as it ran: an auto_offload one with the placement its outcome found.
  Candidate resolved(int i) const {
    Candidate c = candidates_[static_cast<size_t>(i)];
    if (c.auto_offload) {
      const Outcome& o = outcomes_[static_cast<size_t>(i)];
      c.strategy.kv_offload = o.offloaded ? KvOffload::kAll : KvOffload::kNone;
      c.strategy.kv_offload_min_tokens = o.offloaded ? o.offload_line : 0;
    }
    return c;
  }

  // The step time (ns) above which sampled step number `done` (steps before it simulated,
  // `simulated_s` in all) cannot leave the candidate in the top N, given the bounds of the
  // steps after it and the N-th best score `threshold`; 0 (no limit) in an exhaustive search,
  // before N candidates are known, or without per-step bounds. One nanosecond of slack keeps
  // the comparison on the safe side of rounding.
  int64_t give_up_ns(int index, size_t done, double simulated_s, double tokens,
                     double threshold) const;

  // A simulation that fails is a broken plan (a bug), named with the candidate.
  static StatusOr<SimResult> simulate(SearchWorker& worker, const Plan& plan, const CostModel& cost,
                                      const SimOptions& options, const Candidate& c) {
    StatusOr<SimResult> result = worker.simulator.run(worker.job, plan, cost, options);
    if (!result.ok()) {
      return Status::Runtime(fmt::format("simulating {}: {}", label(c), result.status().message()));
    }
    return result;
  }

  bool fits_budget(const SimMetrics& m) const {
    if (!m.feasible) return false;
    for (const StageMetrics& st : m.stages) {
      if (st.peak_memory_bytes > budget_bytes_) return false;
    }
    return true;
  }

  // The outcome of a candidate whose simulated step `m` does not fit: its worst stage.
  Status infeasible(const Candidate& c, Outcome& o, const SimMetrics& m) const;

  SearchResult summarise(const std::vector<int>& feasible, int folded) const;

  const Job& job_;
  const SearchSpace& space_;
  const std::vector<PlanInputs>& steps_;
  const ThreadPool& pool_;
  std::vector<SearchWorker>& workers_;
  int64_t budget_bytes_;
  const TuneOptions& options_;
  std::atomic<int>* done_;
  const int* total_;
  std::mutex* progress_mu_;
  std::vector<Family> families_;
  std::vector<const StepChunks*> chunks_;  // per candidate: its chunking, built once
  std::vector<int> family_of_;             // per candidate: its family
  std::vector<char> looked_;               // per candidate: screened (Look::kScreen)
  std::vector<Candidate> candidates_;
  std::vector<Outcome> outcomes_;
  std::vector<CandidateBounds> bounds_;
};

// Candidates of one layout and chunking, with K values at or above the longest group folded
// into the first of them. Returns the number folded.
int add_candidates(Search& search, const ParallelLayout& layout, const StrategyConfig& strategy,
                   const StepChunks& chunks, const std::vector<int>& ks);

}  // namespace search_detail
}  // namespace cf

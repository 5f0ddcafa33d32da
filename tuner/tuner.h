// The autotuner (docs/TUNING.md): every candidate (layout × packer × ChunkSize × K) of a
// search space simulated over the job's sampled global batches on a thread pool, skipping a
// candidate only when a lower bound proves it out of memory or out of the top N; ranked by
// the objective; and the Megatron-style baseline tuned over every layout for comparison.
// Deterministic: the result does not depend on the thread count. Never prints.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "sim/metrics.h"
#include "sim/plan/job.h"
#include "tuner/search_peers.h"
#include "tuner/search_space.h"

namespace cf {

struct Candidate {
  int index = 0;  // canonical order: layout, packer, ChunkSize, K ascending
  ParallelLayout layout;
  StrategyConfig strategy;
  // K values k..k_covers (of the space) give the same plan as k: no dependent group has more
  // than k chunks. Equal to strategy.k when nothing was folded.
  int k_covers = 0;
  int max_group_size = 1;  // largest dependent group (chunks) of this ChunkSize; 1: none
  // kv_offload: auto — the K/V on the GPU, or, when that is over the memory budget, those of
  // the longest sequences that must go offloaded; strategy.kv_offload and
  // kv_offload_min_tokens say which it ran with (in a search's results).
  bool auto_offload = false;
};

struct RankedCandidate {
  Candidate candidate;
  SimMetrics metrics;
};

// What became of one candidate: the heat maps of the HTML report (tuner/report_html.h).
struct CandidateOutcome {
  enum class Kind { kFeasible, kInfeasible, kPrunedTime, kPrunedMemory };
  Candidate candidate;
  Kind kind = Kind::kFeasible;
  int ranked = -1;         // kFeasible: its index in SearchResult::ranked
  double score_floor = 0;  // kPrunedTime: an objective score it was proved to exceed
  std::string reason;      // kInfeasible, kPrunedMemory: the category (infeasible_reasons)
  std::string detail;      // and its numbers
};

struct SearchResult {
  int candidates = 0;     // after folding equivalent K values
  int folded = 0;         // K values folded into an equivalent smaller K
  int evaluated = 0;      // simulated
  int pruned_time = 0;    // skipped: the time bound proves them outside the top N
  int pruned_memory = 0;  // skipped: the memory bound proves them over the budget
  int infeasible = 0;     // over the memory budget (simulated or proved) or without a valid plan
  std::map<std::string, int> infeasible_reasons;  // reason → candidates
  // When nothing fits: the infeasible candidate nearest to fitting and its numbers.
  std::string closest_miss;
  std::vector<RankedCandidate> ranked;     // feasible and simulated, best first (top N exact)
  std::vector<CandidateOutcome> outcomes;  // every candidate, in canonical order (index)
};

struct TuneOptions {
  int threads = 0;          // 0: all cores
  bool exhaustive = false;  // simulate every candidate, no pruning
  bool baseline = true;     // also tune the Megatron-style baseline
  // Skip candidates the memory bound proves over the budget (tune() turns it off for a job
  // that offloads K/V: the bound counts them on the GPU).
  bool prune_by_memory = true;
  // Called after each candidate is settled (simulated or pruned), from worker threads, at
  // most one call at a time. `total` counts the ChunkFlow and baseline searches together.
  std::function<void(int done, int total)> progress;
  // Called with each candidate found feasible (simulated within the budget), ChunkFlow and
  // baseline alike, from worker threads and possibly at the same time as other calls of either
  // hook: the caller synchronises. For a "best so far" display; the ranking is the result's.
  std::function<void(const Candidate&, const SimMetrics&)> feasible;
  // Other processes sharing each search (search_peers.h), or nullptr: this process alone.
  // The result is the same either way; `progress` counts every candidate, `feasible` sees the
  // ones simulated here.
  SearchPeers* peers = nullptr;
};

struct TuneResult {
  // The longest sequence the data can produce, judged as one more batch for memory only
  // (0: the sampled batches already hold it).
  int64_t worst_case_length = 0;
  Job job;  // the job tuned (its own layout and strategy as given)
  SearchSpace space;
  // The layouts searched for ChunkFlow: the space's (resolve_layouts) with its layer splits.
  std::vector<ParallelLayout> layouts;
  int64_t memory_budget_bytes = 0;  // per GPU: HBM · (1 − margin) − reserved
  int64_t tokens_per_step = 0;      // mean over the sampled steps
  int max_group_size = 1;           // longest dependent group over all ChunkSizes searched
  SearchResult chunkflow;
  SearchResult baseline;  // strategy kind baseline, micro_batching pack
  bool baseline_searched = false;
  int threads = 1;

  const RankedCandidate* best() const {
    return chunkflow.ranked.empty() ? nullptr : &chunkflow.ranked.front();
  }
  const RankedCandidate* best_baseline() const {
    return baseline.ranked.empty() ? nullptr : &baseline.ranked.front();
  }
};

// Runtime when the simulator fails on a candidate (a broken plan, which is a bug); an
// infeasible search is a result with an empty ranking and the reasons.
StatusOr<TuneResult> tune(const Job& job, const SearchSpace& space, const TuneOptions& options);

// The score the ranking minimises: step time, or −tokens/s.
double objective_score(Objective objective, const SimMetrics& metrics);

// The winner as a job file's contents: the tuned job with the best layout and strategy, no
// `tune:` section. `simulate` on it reproduces the predicted step time.
Job best_job(const TuneResult& result);

}  // namespace cf

// One search of the tuner over a set of candidates — tune() runs two, ChunkFlow's and the
// baseline's: bounds per (layout, chunking), then waves of simulations in bound order with a
// pruning threshold that only moves between waves, so the outcome is the same for every
// thread count. Internal to tuner/ (tuner.h is the interface).
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <vector>

#include "core/status.h"
#include "sim/plan/plan_builder.h"
#include "sim/simulator.h"
#include "tuner/bounds.h"
#include "tuner/search_space.h"
#include "tuner/thread_pool.h"
#include "tuner/tuner.h"

namespace cf {

// A worker thread's simulator and scratch job (a candidate's layout is applied to it).
struct SearchWorker {
  Simulator simulator;
  Job job;
};

class CandidateSearch {
 public:
  // `steps`: the sampled steps' plan inputs, the worst case last when the chunkings say so;
  // `done`, `total` and `progress_mu` are shared with the other search for one progress count.
  CandidateSearch(const Job& job, const SearchSpace& space, const std::vector<PlanInputs>& steps,
                  const ThreadPool& pool, std::vector<SearchWorker>& workers, int64_t budget_bytes,
                  const TuneOptions& options, std::atomic<int>* done, const int* total,
                  std::mutex* progress_mu);
  ~CandidateSearch();
  CandidateSearch(const CandidateSearch&) = delete;
  CandidateSearch& operator=(const CandidateSearch&) = delete;

  // The candidates of one layout and chunking (which must outlive the search), with K values
  // at or above the longest group folded into the first of them. Returns the number folded.
  int add_candidates(const ParallelLayout& layout, const StrategyConfig& strategy,
                     const StepChunks& chunks, const std::vector<int>& ks);
  int size() const;
  // The top `top_n` exact (tuner.h SearchResult); `folded` is reported as is.
  StatusOr<SearchResult> run(int top_n, int folded);

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cf

// The cost-balanced split: per-layer and per-end costs from the cost model, then the smallest
// bottleneck that integer layer counts can reach.
#include "tuner/layer_balance.h"

#include <algorithm>
#include <functional>
#include <numeric>

#include "core/check.h"
#include "sim/plan/layer_split.h"

namespace cf {
namespace {

// Forward + backward of one chunk over `layers` layers with the given ends (the backward
// includes what the recompute policy redoes).
int64_t pass_pair_ns(const CostModel& cost, int64_t layers, bool first, bool last, int64_t tokens,
                     const std::vector<AttentionSpan>& spans) {
  StagePlace place;
  place.first_layer = 0;
  place.end_layer = layers;
  place.first = first;
  place.last = last;
  int64_t ns = 0;
  for (Pass pass : {Pass::kForward, Pass::kBackward}) {
    ns += cost.op_time(op_query(pass, 0, 0, 0, place, tokens, spans)).total_ns;
  }
  return ns;
}

}  // namespace

std::vector<int64_t> balanced_layer_split(const CostModel& cost, int64_t layers, int pp,
                                          int64_t tokens) {
  CF_CHECK(pp >= 1 && layers >= pp) << layers << " layers over " << pp << " stages";
  if (pp == 1) return {layers};
  const std::vector<AttentionSpan> spans{AttentionSpan{tokens, 0}};
  // The cost of one more layer, and what each end adds to a stage (fixed per-op overheads
  // cancel out of the differences and are counted once in `base`).
  const int64_t one = pass_pair_ns(cost, 1, false, false, tokens, spans);
  const int64_t per_layer =
      std::max<int64_t>(1, pass_pair_ns(cost, 2, false, false, tokens, spans) - one);
  const int64_t base = one - per_layer;
  std::vector<int64_t> extra(static_cast<size_t>(pp), base);
  extra.front() += pass_pair_ns(cost, 1, true, false, tokens, spans) - one;
  extra.back() += pass_pair_ns(cost, 1, false, true, tokens, spans) - one;
  // The most layers stage s can take within a bottleneck of t ns (at least 1).
  auto capacity = [&](int64_t t, size_t s) {
    return t < extra[s] + per_layer ? int64_t{0} : (t - extra[s]) / per_layer;
  };
  auto fits = [&](int64_t t) {
    int64_t total = 0;
    for (size_t s = 0; s < extra.size(); ++s) {
      const int64_t c = capacity(t, s);
      if (c < 1) return false;
      total += c;
    }
    return total >= layers;
  };
  // The bottleneck is one of the values n·per_layer + extra[s]: binary search over time, then
  // the smallest such value at or above it.
  int64_t lo = 0, hi = *std::max_element(extra.begin(), extra.end()) + layers * per_layer;
  while (lo < hi) {
    const int64_t mid = lo + (hi - lo) / 2;
    if (fits(mid)) {
      hi = mid;
    } else {
      lo = mid + 1;
    }
  }
  std::vector<int64_t> split(extra.size());
  for (size_t s = 0; s < extra.size(); ++s) split[s] = capacity(lo, s);
  // Too many layers fit within the bottleneck: take the surplus from the stages that hold the
  // most (the split nearest to even), later stages first among equals.
  int64_t surplus = std::accumulate(split.begin(), split.end(), int64_t{0}) - layers;
  while (surplus-- > 0) {
    size_t most = split.size() - 1;
    for (size_t s = split.size(); s-- > 0;) {
      if (split[s] > split[most]) most = s;
    }
    CF_CHECK(split[most] > 1);
    --split[most];
  }
  return split;
}

std::vector<ParallelLayout> with_layer_splits(const std::vector<ParallelLayout>& layouts,
                                              const std::vector<SplitKind>& splits,
                                              const Job& job) {
  const bool even = std::find(splits.begin(), splits.end(), SplitKind::kEven) != splits.end();
  const bool balanced =
      std::find(splits.begin(), splits.end(), SplitKind::kBalanced) != splits.end();
  const int64_t tokens = job.strategy.chunk_size > 0
                             ? std::min(job.strategy.chunk_size, job.dataset.max_length)
                             : job.dataset.max_length;
  std::vector<ParallelLayout> out;
  for (const ParallelLayout& layout : layouts) {
    if (layout.pp < 2 || layout.vpp != 1) {
      out.push_back(layout);
      continue;
    }
    std::vector<std::vector<int64_t>> chosen;
    auto add = [&](std::vector<int64_t> split) {
      if (!split.empty() &&
          std::adjacent_find(split.begin(), split.end(), std::not_equal_to<>()) == split.end()) {
        split.clear();  // every stage alike: the even split
      }
      if (std::find(chosen.begin(), chosen.end(), split) == chosen.end()) chosen.push_back(split);
    };
    if (!layout.layers_per_stage.empty()) add(layout.layers_per_stage);
    if (even || (!balanced && layout.layers_per_stage.empty())) add({});
    if (balanced) {
      ParallelLayout even_layout = layout;
      even_layout.layers_per_stage.clear();
      StatusOr<std::unique_ptr<CostModel>> cost =
          make_cost_model(job_with(job, even_layout, job.strategy));
      // A layout the cost model cannot price is ruled out by the search itself.
      if (cost.ok()) add(balanced_layer_split(**cost, job.model.layers, layout.pp, tokens));
    }
    if (chosen.empty()) add(layout.layers_per_stage);
    for (std::vector<int64_t>& split : chosen) {
      ParallelLayout l = layout;
      l.layers_per_stage = std::move(split);
      out.push_back(std::move(l));
    }
  }
  return out;
}

}  // namespace cf

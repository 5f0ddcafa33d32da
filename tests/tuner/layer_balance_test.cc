// The tuner's uneven pipeline splits: the balanced split reaches the smallest possible
// bottleneck (checked against every split of small pipelines, with made-up end costs and the
// analytical model); the layouts get the job's own split, the even one and the balanced one
// without duplicates, and interleaved layouts none; and `tune` of the even Qwen2.5-7B example
// finds the uneven split that beats it.
#include "tuner/layer_balance.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <numeric>
#include <random>

#include "tuner/tuner.h"

namespace cf {
namespace {

// Forward + backward: `layer` per layer, plus `first` with the embedding, `last` with the
// LM head and loss, plus `fixed` per op; recorded nothing else.
class EndCost final : public CostModel {
 public:
  EndCost(int64_t layer, int64_t first, int64_t last, int64_t fixed)
      : layer_(layer), first_(first), last_(last), fixed_(fixed) {}
  std::string name() const override { return "ends"; }
  OpTime op_time(const OpQuery& q) const override {
    OpTime t;
    const int64_t work = q.layers * layer_ + (q.embedding ? first_ : 0) + (q.lm_head ? last_ : 0);
    t.total_ns = (q.pass == Pass::kBackward ? 2 : 1) * work + fixed_;
    return t;
  }
  int64_t p2p_time_ns(const P2pQuery&) const override { return 0; }
  int64_t dp_reduce_time_ns(int) const override { return 0; }
  int64_t optimizer_time_ns(int) const override { return 0; }

 private:
  int64_t layer_, first_, last_, fixed_;
};

// The busiest stage of `split` under `cost` (forward + backward of one chunk of `tokens`).
int64_t bottleneck(const CostModel& cost, const std::vector<int64_t>& split, int64_t tokens) {
  const std::vector<AttentionSpan> spans{AttentionSpan{tokens, 0}};
  int64_t worst = 0;
  for (size_t s = 0; s < split.size(); ++s) {
    StagePlace place;
    place.end_layer = split[s];
    place.first = s == 0;
    place.last = s + 1 == split.size();
    int64_t ns = 0;
    for (Pass pass : {Pass::kForward, Pass::kBackward}) {
      ns += cost.op_time(op_query(pass, 0, static_cast<int>(s), 0, place, tokens, spans)).total_ns;
    }
    worst = std::max(worst, ns);
  }
  return worst;
}

// Every split of `layers` over `pp` stages with each ≥ 1.
void every_split(int64_t layers, int pp, std::vector<int64_t>* prefix,
                 const std::function<void(const std::vector<int64_t>&)>& visit) {
  if (static_cast<int>(prefix->size()) == pp - 1) {
    prefix->push_back(layers);
    visit(*prefix);
    prefix->pop_back();
    return;
  }
  const int64_t left = pp - 1 - static_cast<int64_t>(prefix->size());
  for (int64_t n = 1; n <= layers - left; ++n) {
    prefix->push_back(n);
    every_split(layers - n, pp, prefix, visit);
    prefix->pop_back();
  }
}

void expect_optimal(const CostModel& cost, int64_t layers, int pp, int64_t tokens) {
  const std::vector<int64_t> split = balanced_layer_split(cost, layers, pp, tokens);
  ASSERT_EQ(static_cast<int>(split.size()), pp);
  EXPECT_EQ(std::accumulate(split.begin(), split.end(), int64_t{0}), layers);
  EXPECT_GE(*std::min_element(split.begin(), split.end()), 1);
  int64_t best = std::numeric_limits<int64_t>::max();
  std::vector<int64_t> prefix;
  every_split(layers, pp, &prefix, [&](const std::vector<int64_t>& s) {
    best = std::min(best, bottleneck(cost, s, tokens));
  });
  EXPECT_EQ(bottleneck(cost, split, tokens), best)
      << layers << " layers over " << pp << " stages, split " << ::testing::PrintToString(split);
}

TEST(BalancedLayerSplit, ReachesTheSmallestBottleneckOfEverySplit) {
  std::mt19937_64 rng(20261207);
  for (int trial = 0; trial < 60; ++trial) {
    const int pp = 2 + static_cast<int>(rng() % 4);
    const int64_t layers = pp + static_cast<int64_t>(rng() % 14);
    const int64_t layer = 50 + static_cast<int64_t>(rng() % 1000);
    const EndCost cost(layer, static_cast<int64_t>(rng() % (4 * layer)),
                       static_cast<int64_t>(rng() % (6 * layer)),
                       static_cast<int64_t>(rng() % 500));
    expect_optimal(cost, layers, pp, 1 + static_cast<int64_t>(rng() % 5000));
  }
}

TEST(BalancedLayerSplit, NoEndCostsIsTheEvenSplit) {
  const EndCost cost(100, 0, 0, 7);
  EXPECT_EQ(balanced_layer_split(cost, 12, 4, 128), (std::vector<int64_t>{3, 3, 3, 3}));
  EXPECT_EQ(balanced_layer_split(cost, 13, 1, 128), (std::vector<int64_t>{13}));
}

TEST(BalancedLayerSplit, TheAnalyticalModelTakesLayersOffTheLastStage) {
  // Qwen2.5-7B's 152K-vocabulary head and loss on the last stage: under the analytical model
  // the split is the fastest possible for one chunk, and the last stage holds fewer layers
  // than the middle ones.
  StatusOr<Job> job = load_job("examples/qwen2.5-7b-8k-uneven.yaml");
  ASSERT_TRUE(job.ok()) << job.status().message();
  job->parallel.layers_per_stage.clear();
  StatusOr<std::unique_ptr<CostModel>> cost = make_cost_model(*job);
  ASSERT_TRUE(cost.ok()) << cost.status().message();
  for (int pp : {2, 4}) {
    const std::vector<int64_t> split = balanced_layer_split(**cost, job->model.layers, pp, 8192);
    EXPECT_LT(split.back(), job->model.layers / pp);
    if (pp == 4) expect_optimal(**cost, job->model.layers, pp, 8192);
  }
}

ParallelLayout layout_of(int pp, ScheduleKind schedule = ScheduleKind::kOneFOneB, int vpp = 1) {
  ParallelLayout l;
  l.tp = 4;
  l.pp = pp;
  l.dp = 16 / (4 * pp);
  l.schedule = schedule;
  l.vpp = vpp;
  return l;
}

TEST(WithLayerSplits, EachPipelineLayoutOncePerDistinctSplit) {
  StatusOr<Job> job = load_job("examples/qwen2.5-7b-8k-uneven.yaml");
  ASSERT_TRUE(job.ok()) << job.status().message();
  const std::vector<int64_t> own = job->parallel.layers_per_stage;  // [7, 8, 7, 6]
  ParallelLayout mine = layout_of(4);
  mine.layers_per_stage = own;
  const std::vector<ParallelLayout> layouts = {layout_of(1), layout_of(2), mine,
                                               layout_of(2, ScheduleKind::kInterleaved, 2)};
  const std::vector<SplitKind> both = {SplitKind::kEven, SplitKind::kBalanced};
  const std::vector<ParallelLayout> out = with_layer_splits(layouts, both, *job);
  // pp 1: as is. pp 2: even, balanced. pp 4: the job's own (which the balanced one equals),
  // then even. Interleaved: as is.
  ASSERT_EQ(out.size(), 6u);
  EXPECT_EQ(out[0], layouts[0]);
  EXPECT_TRUE(out[1].layers_per_stage.empty());
  EXPECT_EQ(out[2].layers_per_stage.size(), 2u);
  EXPECT_EQ(out[3].layers_per_stage, own);
  EXPECT_TRUE(out[4].layers_per_stage.empty());
  EXPECT_EQ(out[4].pp, 4);
  EXPECT_EQ(out[5], layouts[3]);
  // Only even: the job's own split stays at its pp, the other layouts split evenly.
  const std::vector<ParallelLayout> even = with_layer_splits(layouts, {SplitKind::kEven}, *job);
  ASSERT_EQ(even.size(), 5u);
  EXPECT_TRUE(even[1].layers_per_stage.empty());
  EXPECT_EQ(even[2].layers_per_stage, own);
  // Only balanced: one split per layout.
  const std::vector<ParallelLayout> bal = with_layer_splits(layouts, {SplitKind::kBalanced}, *job);
  ASSERT_EQ(bal.size(), 4u);
  EXPECT_EQ(bal[1].layers_per_stage, out[2].layers_per_stage);
  EXPECT_EQ(bal[2].layers_per_stage, own);
}

TEST(WithLayerSplits, TuneFindsTheUnevenSplitOfTheQwenExample) {
  // The example without its split: tune's winner splits the layers as the example does, and
  // is faster than the best even-split candidate.
  StatusOr<Job> job = load_job("examples/qwen2.5-7b-8k-uneven.yaml");
  ASSERT_TRUE(job.ok()) << job.status().message();
  const std::vector<int64_t> example = job->parallel.layers_per_stage;
  job->parallel.layers_per_stage.clear();
  StatusOr<SearchSpace> space = read_search_space(*job, SpaceFlags{});
  ASSERT_TRUE(space.ok()) << space.status().message();
  TuneOptions options;
  options.baseline = false;
  StatusOr<TuneResult> result = tune(*job, *space, options);
  ASSERT_TRUE(result.ok()) << result.status().message();
  ASSERT_NE(result->best(), nullptr);
  EXPECT_EQ(result->best()->candidate.layout.layers_per_stage, example);
  const RankedCandidate* even = nullptr;
  for (const RankedCandidate& r : result->chunkflow.ranked) {
    if (r.candidate.layout.layers_per_stage.empty()) {
      even = &r;
      break;
    }
  }
  ASSERT_NE(even, nullptr);
  EXPECT_LT(result->best()->metrics.step_time_s, 0.95 * even->metrics.step_time_s);
}

}  // namespace
}  // namespace cf

// The calibration profiler on tiny grids: every series has one figure per grid point, in
// grid order, with positive wall time; the attention grid is q × prefix; a speed probe for
// every series and in-situ run; progress reports every series in order. Not its timings' values
// (this machine's), which docs/VALIDATION.md checks against real runs.
#include "executor/calibrate/profiler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "models/model.h"

namespace cf {
namespace {

void expect_series(const Series& series, const std::vector<int64_t>& grid,
                   const std::string& what) {
  ASSERT_EQ(series.size(), grid.size()) << what;
  for (size_t i = 0; i < grid.size(); ++i) {
    EXPECT_EQ(series[i].x, static_cast<double>(grid[i])) << what;
    EXPECT_GT(series[i].wall_ns, 0) << what << " at " << grid[i];
    EXPECT_GE(series[i].cpu_ns, 0) << what << " at " << grid[i];
  }
}

TEST(Profiler, MeasuresEverySeriesOnItsGrid) {
  StatusOr<ModelConfig> model = load_model("tiny");
  ASSERT_TRUE(model.ok()) << model.status().message();
  ProfileOptions o;
  o.warmup = 0;
  o.repetitions = 2;
  o.tokens = {1, 3, 17};
  o.attention_q = {1, 5};
  o.attention_prefix = {0, 7, 33};
  o.message_bytes = {64, 4100};
  o.optimizer_params = {17, 1000};
  o.probe_tokens = 4;  // the probe is taken ~100 times here
  std::vector<std::pair<std::string, int>> calls;
  int total = 0;
  o.progress = [&](const std::string& what, int done, int all) {
    calls.emplace_back(what, done);
    total = all;
  };
  const MachineProfile p = profile_cpu({{"tiny", *model}}, o);
  EXPECT_GE(p.cores, 1);
  EXPECT_FALSE(p.cpu_model.empty());
  // One speed probe per series, one per in-situ stack run (3 rounds over the 3 tokens), one
  // before every visit of the series measured in rounds (fewer than 12 points: a probe each;
  // 3 rounds): embedding and head, forward and backward, over 3 tokens, attention over 2 × 3
  // points each way; and one after the last. Every sample is rescaled to the fastest.
  const size_t in_situ = 3 * 3, rounds = 4 * (3 * 3) + 2 * (3 * 6);
  ASSERT_EQ(p.speed_probe.size(), static_cast<size_t>(total) + in_situ + rounds + 1);
  EXPECT_EQ(p.speed_reference_ns, *std::min_element(p.speed_probe.begin(), p.speed_probe.end()));
  EXPECT_EQ(p.speed_probe_min_ns, *std::min_element(p.speed_probe.begin(), p.speed_probe.end()));
  EXPECT_EQ(p.speed_probe_max_ns, *std::max_element(p.speed_probe.begin(), p.speed_probe.end()));
  EXPECT_GE(p.speed_probe_mean_ns, p.speed_probe_min_ns);
  EXPECT_LE(p.speed_probe_mean_ns, p.speed_probe_max_ns);
  expect_series(p.send, o.message_bytes, "send");
  expect_series(p.p2p, o.message_bytes, "p2p");
  expect_series(p.allreduce, o.message_bytes, "allreduce");
  expect_series(p.optimizer, o.optimizer_params, "optimizer");
  ASSERT_EQ(p.models.size(), 1u);
  const ModelProfile& m = p.models[0];
  for (const auto* s :
       {&m.stack_forward, &m.stack_backward, &m.layer_forward, &m.layer_backward,
        &m.embedding_forward, &m.embedding_backward, &m.head_forward, &m.head_backward}) {
    expect_series(*s, o.tokens, "model curve");
  }
  // One layer is the rescaled stack less the rescaled embedding and head, per layer.
  for (size_t i = 0; i < o.tokens.size(); ++i) {
    for (const bool backward : {false, true}) {
      const Series& stack = backward ? m.stack_backward : m.stack_forward;
      const Series& emb = backward ? m.embedding_backward : m.embedding_forward;
      const Series& head = backward ? m.head_backward : m.head_forward;
      const Series& layer = backward ? m.layer_backward : m.layer_forward;
      const double expected =
          std::max((stack[i].wall_ns - emb[i].wall_ns - head[i].wall_ns) / model->layers, 1.0);
      EXPECT_DOUBLE_EQ(layer[i].wall_ns, expected) << "t " << o.tokens[i] << " " << backward;
      EXPECT_EQ(layer[i].probes, stack[i].probes);
    }
  }
  ASSERT_EQ(m.gemm.size(), 8u);
  EXPECT_EQ(m.gemm[0].name, "wq");
  EXPECT_EQ(m.gemm[7].out_features, model->vocab);
  for (const GemmProfile& g : m.gemm) {
    expect_series(g.forward, o.tokens, g.name);
    expect_series(g.backward, o.tokens, g.name);
  }
  ASSERT_EQ(m.elementwise.size(), 8u);
  for (const NamedSeries& e : m.elementwise) expect_series(e.series, o.tokens, e.name);
  ASSERT_EQ(m.attention_forward.size(), 2u);
  for (const auto* grid : {&m.attention_forward, &m.attention_backward}) {
    for (size_t i = 0; i < 2; ++i) {
      ASSERT_EQ((*grid)[i].size(), 3u);
      for (const Sample& s : (*grid)[i]) EXPECT_GT(s.wall_ns, 0);
    }
  }
  // Progress: every series once, in order, then done == total.
  ASSERT_EQ(static_cast<int>(calls.size()), total + 1);
  for (int i = 0; i <= total; ++i) EXPECT_EQ(calls[static_cast<size_t>(i)].second, i);
  EXPECT_EQ(total, 4 + profile_model_steps());
}

// The statistic of repeated timings is the fastest, not the median: of repetitions half of
// which a burst of load doubled, the median lands on the slow half, the fastest does not.
TEST(Profiler, FastestIsTheMinimumOfTheRepetitions) {
  const std::vector<double> reps = {23.1, 47.0, 22.9, 46.2, 23.4, 48.8};
  EXPECT_EQ(fastest(reps), 22.9);
  EXPECT_EQ(fastest({5.0}), 5.0);
  EXPECT_GT(median(reps), 30.0);
  EXPECT_DOUBLE_EQ(mean(reps), 211.4 / 6);  // the load's statistic (run_with_speed_probe)
}

TEST(Profiler, DefaultGridsArePowersOfTwoAndMidpoints) {
  const ProfileOptions o = ProfileOptions::defaults(64);
  const std::vector<int64_t> expected = {1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64};
  EXPECT_EQ(o.tokens, expected);
  EXPECT_EQ(o.attention_q, expected);
  EXPECT_EQ(o.attention_prefix, (std::vector<int64_t>{0, 16, 64}));
}

}  // namespace
}  // namespace cf

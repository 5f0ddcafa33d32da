// Measurements to table (executor/calibrate/profile_table.h) on hand-made profiles: the
// pool-adjacent-violators fit on hand-computed blocks, series and grids clamped and made
// non-decreasing, and the table's header (machine, speed probe, method, CMake's version),
// which the strict reader then accepts. Not the measuring (profiler_test.cc).
#include "executor/calibrate/profile_table.h"

#include <gtest/gtest.h>

#include <regex>

namespace cf {
namespace {

// Pool-adjacent-violators: the least-squares non-decreasing fit (hand-computed blocks).
TEST(ProfileTable, NonDecreasingFit) {
  EXPECT_EQ(non_decreasing({1, 3, 2, 2, 5, 4}),
            (std::vector<double>{1, 7.0 / 3, 7.0 / 3, 7.0 / 3, 4.5, 4.5}));
  EXPECT_EQ(non_decreasing({4, 3, 2, 1}), (std::vector<double>{2.5, 2.5, 2.5, 2.5}));
  EXPECT_EQ(non_decreasing({1, 2, 9}), (std::vector<double>{1, 2, 9}));
  EXPECT_TRUE(non_decreasing({}).empty());
  AttentionGrid g{{1, 2, 4}, {0, 8}, {{5, 9}, {3, 4}, {7, 20}}};
  make_non_decreasing(&g);
  // Column q: {5,3,7} → {4,4,7}; {9,4,20} → {6.5,6.5,20}; then rows stay ordered.
  EXPECT_EQ(g.ns, (std::vector<std::vector<double>>{{4, 6.5}, {4, 6.5}, {7, 20}}));
}

// Wall time below the clock's 1 ns reads 1, CPU time below 0 reads 0, then both are fitted.
TEST(ProfileTable, SeriesBecomeClampedNonDecreasingCurves) {
  const Series series = {{1, 0.25, -3, {0, 0}}, {3, 40, 30, {0, 0}}, {17, 20, 10, {0, 0}}};
  const Curve c = to_curve(series);
  EXPECT_EQ(c.x, (std::vector<double>{1, 3, 17}));
  EXPECT_EQ(c.ns, (std::vector<double>{1, 30, 30}));
  EXPECT_EQ(c.cpu_ns, (std::vector<double>{0, 20, 20}));
}

ModelProfile tiny_profile() {
  ModelProfile m;
  m.name = "tiny";
  m.model.hidden = 64;
  m.model.ffn_hidden = 176;
  m.model.heads = 4;
  m.model.kv_heads = 2;
  m.model.head_dim = 16;
  m.model.vocab = 257;
  const Series s = {{1, 10, 9, {0, 0}}, {4, 40, 30, {0, 0}}};
  for (Series* out : {&m.layer_forward, &m.layer_backward, &m.embedding_forward,
                      &m.embedding_backward, &m.head_forward, &m.head_backward}) {
    *out = s;
  }
  m.attention_q = {1, 4};
  m.attention_prefix = {0, 8, 32};
  auto sample = [](double ns) { return Sample{1, ns, ns, {0, 0}}; };
  m.attention_forward = {{sample(5), sample(3), sample(9)}, {sample(4), sample(0.5), sample(20)}};
  m.attention_backward = m.attention_forward;
  m.gemm = {GemmProfile{"wq", 64, 64, s, s}};
  m.elementwise = {NamedSeries{"rmsnorm_forward", s}};
  return m;
}

TEST(ProfileTable, GridRowsAreQueriesAndFitBothWays) {
  const ModelProfile m = tiny_profile();
  const AttentionGrid g = to_grid(m, m.attention_forward);
  EXPECT_EQ(g.q_tokens, (std::vector<double>{1, 4}));
  EXPECT_EQ(g.kv_prefix, (std::vector<double>{0, 8, 32}));
  // Columns: {5,4} → {4.5,4.5}; {3,1} (0.5 read as 1 ns) → {2,2}; {9,20}. Rows: {4.5,2,9} →
  // {3.25,3.25,9}, {4.5,2,20} → {3.25,3.25,20}.
  EXPECT_EQ(g.ns, (std::vector<std::vector<double>>{{3.25, 3.25, 9}, {3.25, 3.25, 20}}));
}

TEST(ProfileTable, TableCarriesTheMachineAndThisBuildsVersion) {
  MachineProfile p;
  p.cpu_model = "test cpu";
  p.cores = 3;
  p.load_average = 0.75;
  p.speed_probe = {2.5e7, 2.0e7, 3.0e7};
  p.speed_reference_ns = 2.0e7;
  p.speed_probe_min_ns = 2.0e7;
  p.speed_probe_max_ns = 3.0e7;
  p.speed_probe_mean_ns = 2.5e7;
  p.speed_probe_tokens = 16;
  const Series bytes = {{1024, 500, 400, {0, 0}}, {65536, 900, 800, {0, 0}}};
  p.send = p.p2p = p.allreduce = p.optimizer = bytes;
  p.models = {tiny_profile()};
  ProfileOptions o;
  o.warmup = 1;
  o.repetitions = 3;

  CalibrationTable t = to_table(p, o);
  EXPECT_EQ(t.machine.chunkflow_version, CHUNKFLOW_PROJECT_VERSION);
  EXPECT_EQ(std::string(chunkflow_version()), CHUNKFLOW_PROJECT_VERSION);
  EXPECT_TRUE(std::regex_match(t.machine.date, std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)")))
      << t.machine.date;
  EXPECT_EQ(t.machine.backend, "cpu");
  EXPECT_EQ(t.machine.cpu_model, "test cpu");
  EXPECT_EQ(t.machine.cores, 3);
  EXPECT_EQ(t.machine.speed_probe.samples, 3);
  EXPECT_EQ(t.machine.speed_probe.tokens, 16);
  EXPECT_EQ(t.machine.speed_probe.reference_ns, 2.0e7);
  EXPECT_EQ(t.method.statistic, "fastest");
  EXPECT_EQ(t.method.repetitions, 3);
  ASSERT_EQ(t.models.size(), 1u);
  EXPECT_EQ(t.models[0].shape.vocab, 257);
  EXPECT_EQ(t.models[0].gemm.at(0).name, "wq");
  EXPECT_EQ(t.send.ns, (std::vector<double>{500, 900}));

  // The step fit's figures complete it; the strict reader takes it back unchanged.
  t.concurrency_slowdown = {1.1};
  const std::string text = calibration_to_json(t);
  StatusOr<CalibrationTable> back = calibration_from_json(text, "built.json");
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(calibration_to_json(*back), text);
}

}  // namespace
}  // namespace cf

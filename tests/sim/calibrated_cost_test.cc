// The calibration table and the calibrated cost model on synthetic tables whose curves are
// power laws (exact under log-log interpolation) and whose attention is q²·(1 + p/256)
// (linear in p, a power law in q): interpolation exact between and beyond grid points,
// extrapolation flagged with its factor, ops composed as the executor runs them, the strict
// reader naming file and key, and `simulate` reporting extrapolated ops.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "sim/calibration_table.h"
#include "sim/cost_calibrated.h"
#include "sim/memory_model.h"
#include "sim/simulator.h"
#include "tests/support/executor_fixture.h"

namespace cf {
namespace {

Curve power_law(double c, double exponent, std::vector<double> x) {
  Curve curve{x, {}, {}};
  for (double v : x) {
    curve.ns.push_back(c * std::pow(v, exponent));
    curve.cpu_ns.push_back(c * std::pow(v, exponent));
  }
  return curve;
}

double attention_ns(double q, double p) { return q * q * (1 + p / 256); }

AttentionGrid attention_grid(double scale) {
  AttentionGrid g{{1, 4, 16, 64}, {0, 64, 256}, {}};
  for (double q : g.q_tokens) {
    g.ns.emplace_back();
    for (double p : g.kv_prefix) g.ns.back().push_back(scale * attention_ns(q, p));
  }
  return g;
}

// Curves in ns: layer forward 1000·t, backward 2000·t, embedding 10·t / 20·t, head 500·t /
// 700·t, send 0.5·bytes, p2p 3·bytes^0.5, allreduce 2·bytes, optimizer 4·params.
CalibrationTable synthetic_table(const ModelConfig& model) {
  const std::vector<double> tokens = {1, 4, 16, 64};
  CalibrationTable t;
  t.machine = MachineInfo{"cpu",
                          "test cpu",
                          2,
                          "2026-01-01T00:00:00Z",
                          "0.1.0",
                          0.5,
                          SpeedProbe{128, 2.0e7, 2.0e7, 1.8e7, 2.5e7, 9, 1.2}};
  t.method = MeasurementMethod{1, 3, "median"};
  t.concurrency_slowdown = {1.0, 1.5};
  t.send = power_law(0.5, 1, {64, 4096, 262144});
  t.p2p = power_law(3, 0.5, {64, 4096, 262144});
  t.allreduce = power_law(2, 1, {64, 4096, 262144});
  t.optimizer = power_law(4, 1, {1000, 100000, 10000000});
  ModelCalibration m;
  m.name = "tiny";
  m.shape = ModelShape::of(model);
  m.layer_forward = power_law(1000, 1, tokens);
  m.layer_backward = power_law(2000, 1, tokens);
  m.embedding_forward = power_law(10, 1, tokens);
  m.embedding_backward = power_law(20, 1, tokens);
  m.head_forward = power_law(500, 1, tokens);
  m.head_backward = power_law(700, 1, tokens);
  m.attention_forward = attention_grid(1);
  m.attention_backward = attention_grid(2.5);
  m.gemm = {GemmCurves{"wq", 64, 64, power_law(7, 1, tokens), power_law(14, 1, tokens)}};
  m.elementwise = {NamedCurve{"rmsnorm_forward", power_law(3, 1, tokens)}};
  t.models.push_back(m);
  return t;
}

TEST(CalibrationTable, LogLogInterpolationIsExactForPowerLaws) {
  const Curve c = power_law(3, 1.5, {1, 4, 16, 64});
  for (double x : {1.0, 2.0, 5.5, 16.0, 30.0, 64.0}) {
    const Lookup l = interpolate(c, x);
    EXPECT_NEAR(l.ns, 3 * std::pow(x, 1.5), 1e-9 * l.ns) << x;
    EXPECT_EQ(l.extrapolation, 1.0) << x;
  }
  const Lookup above = interpolate(c, 128);
  EXPECT_NEAR(above.ns, 3 * std::pow(128, 1.5), 1e-9 * above.ns);
  EXPECT_DOUBLE_EQ(above.extrapolation, 2.0);
  EXPECT_DOUBLE_EQ(interpolate(c, 0.25).extrapolation, 4.0);
  EXPECT_EQ(interpolate(c, 0).ns, 0.0);
}

TEST(CalibrationTable, AttentionIsLinearInPrefixAndPowerLawInQueries) {
  const AttentionGrid g = attention_grid(1);
  for (double q : {1.0, 3.0, 17.0, 64.0}) {
    for (double p : {0.0, 10.0, 64.0, 200.0}) {
      const Lookup l = interpolate(g, q, p);
      EXPECT_NEAR(l.ns, attention_ns(q, p), 1e-9 * l.ns) << q << " " << p;
      EXPECT_EQ(l.extrapolation, 1.0);
    }
  }
  const Lookup far = interpolate(g, 128, 512);  // q 2× and p 2× beyond the grid
  EXPECT_NEAR(far.ns, attention_ns(128, 512), 1e-9 * far.ns);
  EXPECT_DOUBLE_EQ(far.extrapolation, 2.0);
}

TEST(CalibrationTable, JsonRoundTrip) {
  const Job job = test::tiny_job(test::TinyJob{{5}});
  const CalibrationTable t = synthetic_table(job.model);
  const std::string text = calibration_to_json(t);
  StatusOr<CalibrationTable> back = calibration_from_json(text, "t.json");
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(calibration_to_json(*back), text);
  EXPECT_EQ(back->models[0].attention_backward.ns, t.models[0].attention_backward.ns);
  EXPECT_EQ(back->find(ModelShape::of(job.model)), &back->models[0]);
}

// Every bad table is InvalidInput naming the file and the key.
TEST(CalibrationTable, StrictReaderNamesFileAndKey) {
  const Job job = test::tiny_job(test::TinyJob{{5}});
  const nlohmann::json good =
      nlohmann::json::parse(calibration_to_json(synthetic_table(job.model)));
  struct Bad {
    std::function<void(nlohmann::json&)> edit;
    std::string key;
  };
  const std::vector<Bad> cases = {
      {[](auto& j) { j["extra"] = 1; }, "extra: unknown key"},
      {[](auto& j) { j.erase("optimizer"); }, "optimizer: required key is missing"},
      {[](auto& j) { j["version"] = 7; }, "version: 7 is not supported"},
      {[](auto& j) { j["format"] = "other"; }, "format: expected"},
      {[](auto& j) { j["machine"].erase("speed_probe"); },
       "machine.speed_probe: required key is missing"},
      {[](auto& j) { j["machine"]["speed_probe"]["step_load"] = 0; },
       "machine.speed_probe.step_load: 0 is not a positive finite number"},
      {[](auto& j) { j["machine"]["speed_probe"].erase("step_load"); },
       "machine.speed_probe.step_load: required key is missing"},
      {[](auto& j) { j["machine"]["speed_probe"]["min_ns"] = 3e7; },
       "machine.speed_probe: expected 0 < min_ns ≤ reference_ns, mean_ns ≤ max_ns"},
      {[](auto& j) { j["transport"]["p2p"]["x"][1] = 64; }, "transport.p2p.x[1]: the grid"},
      {[](auto& j) { j["models"][0]["layer_forward"]["ns"][2] = -1; },
       "models[0].layer_forward.ns[2]: -1 is not a positive"},
      {[](auto& j) { j["models"][0]["attention_forward"]["ns"][1].erase(0); },
       "models[0].attention_forward.ns[1]: expected an array of at least 3"},
      {[](auto& j) { j["models"][0]["shape"]["hidden"] = "64"; },
       "models[0].shape.hidden: expected an integer"},
      {[](auto& j) { j["models"][0]["gemm"][0]["forward"]["cpu_ns"].erase(0); },
       "models[0].gemm[0].forward.ns: x, ns and cpu_ns"},
      {[](auto& j) { j["models"][0]["gemm"][0]["colour"] = "red"; },
       "models[0].gemm[0].colour: unknown key"},
      {[](auto& j) { j["machine"]["load_average"] = "high"; },
       "machine.load_average: expected a number, got \"high\""},
      {[](auto& j) { j["machine"]["cpu_model"] = 5; }, "machine.cpu_model: expected a string"},
      {[](auto& j) { j["models"][0]["shape"]["qkv_bias"] = 1; },
       "models[0].shape.qkv_bias: expected true or false"},
      {[](auto& j) {
         j["models"][0]["attention_backward"]["kv_prefix"] = {0, 64, 64};
       },
       "models[0].attention_backward.kv_prefix[2]: the grid must be strictly increasing"},
      {[](auto& j) { j["models"][0]["elementwise"][0] = 3; },
       "models[0].elementwise[0]: expected a JSON object"},
      {[](auto& j) { j["models"] = nlohmann::json::array(); },
       "models: expected a non-empty array"},
      {[](auto& j) { j["transport"] = 1; }, "transport: expected a JSON object"},
  };
  for (const Bad& bad : cases) {
    nlohmann::json j = good;
    bad.edit(j);
    StatusOr<CalibrationTable> t = calibration_from_json(j.dump(), "cal.json");
    ASSERT_FALSE(t.ok()) << bad.key;
    EXPECT_EQ(t.status().code(), StatusCode::kInvalidInput);
    EXPECT_NE(t.status().message().find("cal.json: " + bad.key), std::string::npos)
        << t.status().message();
  }
  StatusOr<CalibrationTable> not_json =
      calibration_from_json("{\"format\": 1,\n not json", "x.json");
  ASSERT_FALSE(not_json.ok());
  EXPECT_EQ(not_json.status().code(), StatusCode::kInvalidInput);
  EXPECT_NE(not_json.status().message().find("x.json: not valid JSON:"), std::string::npos)
      << not_json.status().message();
  EXPECT_NE(not_json.status().message().find("line 2"), std::string::npos)
      << not_json.status().message();
  StatusOr<CalibrationTable> missing = load_calibration("/nonexistent/cal.json");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("/nonexistent/cal.json"), std::string::npos);
  // Hostile tables: a directory or a device is refused before reading; nesting past 64
  // levels and numbers no double holds are InvalidInput, not a crash or an exception.
  StatusOr<CalibrationTable> device = load_calibration("/dev/zero");
  ASSERT_FALSE(device.ok());
  EXPECT_EQ(device.status().message(), "/dev/zero: not a regular file (a character device)");
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  EXPECT_EQ(calibration_from_json(deep, "d.json").status().message(),
            "d.json: JSON nested deeper than 64 at byte 65");
  nlohmann::json overflowing = good;
  overflowing["format"] = 987654321;
  std::string text = overflowing.dump();
  text.replace(text.find("987654321"), 9, "1e999");
  EXPECT_EQ(calibration_from_json(text, "o.json").status().message(),
            "o.json: format: number out of range: 1e999");
}

std::unique_ptr<CalibratedCostModel> model_for(const Job& job) {
  StatusOr<std::unique_ptr<CalibratedCostModel>> m =
      CalibratedCostModel::create(job, synthetic_table(job.model), "t.json");
  CF_CHECK(m.ok()) << m.status().message();
  return std::move(*m);
}

// pp = 2 (2 layers per stage), one stage thread per stage: slowdown 1.5 (2 threads measured).
TEST(CalibratedCostModel, OpsComposeAsTheExecutorRunsThem) {
  const Job job = test::tiny_job(test::TinyJob{{5}, 2});
  const auto model = model_for(job);
  const std::vector<AttentionSpan> spans = {{7, 0}, {9, 0}};
  OpQuery q;
  q.layers = 2;
  q.tokens = 16;
  q.spans = spans;
  q.embedding = true;  // stage 0: embedding, sends its output
  const double h = static_cast<double>(job.model.hidden);
  const double layer_fwd =
      1000 * 16 - attention_ns(16, 0) + attention_ns(7, 0) + attention_ns(9, 0);
  double expected = 1.5 * (2 * layer_fwd + 10 * 16 + 0.5 * 4 * 16 * h);
  EXPECT_EQ(model->op_time(q).total_ns, std::llround(expected));
  EXPECT_EQ(model->op_time(q).extrapolation, 1.0);
  q.pass = Pass::kRecompute;  // R sends nothing
  EXPECT_EQ(model->op_time(q).total_ns, std::llround(1.5 * (2 * layer_fwd + 10 * 16)));
  q.pass = Pass::kBackward;  // B on stage 0: embedding backward, no send
  const double layer_bwd =
      2000 * 16 - 2.5 * attention_ns(16, 0) + 2.5 * (attention_ns(7, 0) + attention_ns(9, 0));
  EXPECT_EQ(model->op_time(q).total_ns, std::llround(1.5 * (2 * layer_bwd + 20 * 16)));
  // Last stage: a dependent piece after 40 tokens; LM head, no send forward.
  const std::vector<AttentionSpan> piece = {{16, 40}};
  q = OpQuery{};
  q.layers = 2;
  q.tokens = 16;
  q.spans = piece;
  q.lm_head = true;
  expected = 1.5 * (2 * (1000 * 16 - attention_ns(16, 0) + attention_ns(16, 40)) + 500 * 16);
  EXPECT_EQ(model->op_time(q).total_ns, std::llround(expected));
  EXPECT_EQ(model->p2p_time_ns(P2pQuery{0, 0, 1, 4096}), std::llround(3 * 64.0));
  const double params = static_cast<double>(
      stage_local_parameters(job.model, 1, LayerSplit{2, 1, job.model.layers}, 1));
  EXPECT_EQ(model->optimizer_time_ns(1), std::llround(1.5 * 4 * params));
  EXPECT_EQ(model->dp_reduce_time_ns(0), 0);  // dp 1, untied
}

TEST(CalibratedCostModel, ExtrapolationAndConcurrencyBeyondTheTable) {
  const Job job = test::tiny_job(test::TinyJob{{5}, 4});  // 4 stage threads, 2 measured
  const auto model = model_for(job);
  EXPECT_DOUBLE_EQ(model->concurrency_slowdown(1), 1.0);
  EXPECT_DOUBLE_EQ(model->concurrency_slowdown(4), 3.0);  // 1.5 · 4 / 2 cores
  // On a machine with 8 cores, 4 threads still fit: the last measured factor; 16 share them.
  CalibrationTable wide = synthetic_table(job.model);
  wide.machine.cores = 8;
  StatusOr<std::unique_ptr<CalibratedCostModel>> on_wide =
      CalibratedCostModel::create(job, wide, "wide.json");
  ASSERT_TRUE(on_wide.ok()) << on_wide.status().message();
  EXPECT_DOUBLE_EQ((*on_wide)->concurrency_slowdown(4), 1.5);
  EXPECT_DOUBLE_EQ((*on_wide)->concurrency_slowdown(16), 3.0);  // 1.5 · 16 / 8
  const std::vector<AttentionSpan> spans = {{256, 0}};
  OpQuery q;
  q.layers = 1;
  q.tokens = 256;  // 4× the token grid
  q.spans = spans;
  q.lm_head = true;
  const OpTime time = model->op_time(q);
  EXPECT_DOUBLE_EQ(time.extrapolation, 4.0);
  EXPECT_EQ(time.total_ns, std::llround(3.0 * (1000 * 256 + 500 * 256)));
}

TEST(CalibratedCostModel, RejectsWhatTheBackendCannotRun) {
  test::TinyJob spec{{5}, 1};
  const Job job = test::tiny_job(spec);
  Job tp2 = job;
  tp2.parallel.tp = 2;
  EXPECT_FALSE(CalibratedCostModel::create(tp2, synthetic_table(job.model), "t.json").ok());
  Job other = job;
  other.model.hidden = 128;
  other.model_name = "wide";
  StatusOr<std::unique_ptr<CalibratedCostModel>> m =
      CalibratedCostModel::create(other, synthetic_table(job.model), "t.json");
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("t.json has no measurements for model wide"),
            std::string::npos)
      << m.status().message();
}

// simulate through a job file: extrapolated ops counted in the metrics and their JSON.
TEST(CalibratedCostModel, SimulateReportsExtrapolation) {
  const std::string dir = ::testing::TempDir();
  const std::string path = dir + "/calibrated_cost_test.json";
  test::TinyJob spec{{5, 100, 30}, 2};
  spec.strategy = "{kind: chunkflow, chunk_size: 128, k: 1}";  // chunks of 100 and 35 tokens
  Job job = test::tiny_job(spec);
  std::ofstream(path) << calibration_to_json(synthetic_table(job.model));
  job.cost_model.kind = CostModelKind::kCalibrated;
  job.cost_model.table = path;
  StatusOr<SimResult> result = simulate_job(job);
  ASSERT_TRUE(result.ok()) << result.status().message();
  EXPECT_EQ(result->metrics.cost_model, "calibrated");
  EXPECT_GT(result->metrics.extrapolated_ops, 0);  // 100 tokens > the grid's 64
  const nlohmann::json j = metrics_to_json(result->metrics);
  EXPECT_EQ(j.at("extrapolated_ops"), result->metrics.extrapolated_ops);
  EXPECT_GT(j.at("worst_extrapolation").get<double>(), 1.0);
  EXPECT_NE(metrics_table(result->metrics).find("EXTRAPOLATED"), std::string::npos);
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace cf

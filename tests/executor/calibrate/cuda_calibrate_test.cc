// The GPU calibration's grids, fits and hardware file (executor/calibrate/cuda_calibrate.h) on
// synthetic measurements, with no GPU: times made from known efficiencies, latencies and
// bandwidths (some with seeded noise) must give them back; the written file must parse with
// parse_gpu_yaml into exactly the calibrated GpuSpec, say where each value comes from, and load
// as a job's `cluster.gpu`.
#include "executor/calibrate/cuda_calibrate.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <random>

#include "tests/support/presets.h"
#include "tests/support/subprocess.h"

namespace cf {
namespace {

constexpr double kPeak = 989.4e12;  // h100-sxm-80g's peak_bf16_tflops

ModelConfig qwen() {
  StatusOr<ModelConfig> m = load_model("qwen2.5-0.5b");
  CF_CHECK(m.ok()) << m.status().message();
  return *m;
}

// The true GEMM efficiency of the synthetic GPU: rises with size and saturates at 0.75.
double true_gemm_efficiency(double flops) { return 0.75 * flops / (flops + 20e9); }

// FlashAttention's computed pairs of one segment in 128 × 128 tiles, counted here by hand
// (sim/cost_analytical.cc counts them for the fit): ⌈q/B⌉·⌈p/B⌉ prefix tiles and the causal
// diagonal's ⌈q/B⌉(⌈q/B⌉+1)/2.
double tile_pairs(int64_t q, int64_t prefix) {
  const double nq = std::ceil(q / 128.0), np = std::ceil(prefix / 128.0);
  return (nq * np + nq * (nq + 1) / 2) * 128 * 128;
}

// Collective times of α and β for `ranks`, each × (1 + noise·u), u uniform in [−1, 1].
std::vector<CollectiveSample> collectives(const std::vector<int64_t>& sizes, int ranks,
                                          double alpha_s, double beta, double noise,
                                          uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> u(-1, 1);
  std::vector<CollectiveSample> out;
  for (const char* op : {"all_reduce", "all_gather", "reduce_scatter", "send_recv"}) {
    const StatusOr<CollectiveTerms> t = collective_terms(op, ranks);
    CF_CHECK(t.ok());
    for (const int64_t s : sizes) {
      const double time = t->latencies * alpha_s + t->bytes_factor * static_cast<double>(s) / beta;
      out.push_back({op, s, time * (1 + noise * u(rng))});
    }
  }
  return out;
}

// A full-grid measurement of the synthetic GPU: GEMMs at true_gemm_efficiency (× noise),
// attention at efficiency 0.4 (backward 2.5× the forward), elementwise at 85% of 3.35 TB/s,
// 2.1 µs per launch on the GPU and 3.3 µs on the host; on `ranks` GPUs, collectives at
// α = 3 µs, β = 360 GB/s.
GpuMeasurements synthetic(int ranks, double gemm_noise, uint32_t seed = 7) {
  GpuMeasurements m;
  m.plan = gpu_measure_plan({{"qwen2.5-0.5b", qwen()}}, false, 2, 7);
  m.device.name = "NVIDIA H100 80GB HBM3";
  m.device.compute_capability = "9.0";
  m.device.multiprocessors = 132;
  m.device.driver_version = "13.0";
  m.device.runtime_version = "13.0";
  m.device.cublas_version = "13.0.0";
  m.device.nccl_version = "2.28.9";
  m.device.hbm_total_bytes = 85'031'714'816;  // 81092.5 MiB
  m.device.context_bytes = 537'919'488;
  m.device.visible = ranks;
  m.date = "2026-12-07T10:00:00Z";
  m.chunkflow_version = "0.1.0";
  m.ranks = ranks;
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> u(-1, 1);
  for (const GemmShape& g : m.plan.gemm) {
    const double t = g.flops() / (kPeak * true_gemm_efficiency(g.flops()));
    m.gemm.push_back({g, t * (1 + gemm_noise * u(rng))});
  }
  const double q_width = 14 * 64;
  for (const AttentionPoint& a : m.plan.attention) {
    const double forward = 4 * q_width * tile_pairs(a.q, a.prefix) / (kPeak * 0.4);
    m.attention.push_back({a, forward, 2.5 * forward});
  }
  for (const int64_t n : m.plan.memory_elements) {
    for (const char* kernel : {"residual_add", "swiglu_forward"}) {
      m.memory.push_back({kernel, n, 12 * n, 12.0 * n / (3.35e12 * 0.85)});
    }
  }
  m.launch = {1000, 2.1e-6, 3.3e-6};
  if (ranks > 1) m.collectives = collectives(m.plan.collective_bytes, ranks, 3e-6, 360e9, 0, 1);
  return m;
}

GpuCalibration fitted(const GpuMeasurements& m) {
  StatusOr<GpuCalibration> c = fit_gpu_calibration(m, test::shipped_gpu("h100-sxm-80g"),
                                                   "models/hardware/h100-sxm-80g.yaml", qwen());
  CF_CHECK(c.ok()) << c.status().message();
  return *c;
}

TEST(GpuMeasurePlan, GridsOfTheBrief) {
  const GpuMeasurePlan p = gpu_measure_plan({{"qwen2.5-0.5b", qwen()}}, false, 2, 7);
  EXPECT_EQ(p.gemm.size(), 35u);  // 5 shapes × tokens 256..16384
  EXPECT_EQ(p.gemm.front().name, "qkv");
  EXPECT_EQ(p.gemm.front().out_features, 896 + 2 * 128);  // Q + 2·g·d_h
  EXPECT_EQ(p.gemm[14].name, "mlp_up_gate");
  EXPECT_EQ(p.gemm[14].out_features, 2 * 4864);  // gate and up, fused as the cost model prices
  EXPECT_EQ(p.gemm.back().name, "lm_head");
  EXPECT_EQ(p.gemm.back().tokens, 16384);
  EXPECT_EQ(p.gemm.back().out_features, 151936);
  ASSERT_EQ(p.attention.size(), 12u);
  EXPECT_EQ(p.attention[11].q, 8192);
  EXPECT_EQ(p.attention[11].prefix, 3 * 8192);
  EXPECT_EQ(p.heads, 14);
  EXPECT_EQ(p.kv_heads, 2);
  EXPECT_EQ(p.collective_bytes.front(), 4096);
  EXPECT_EQ(p.collective_bytes.back(), int64_t{1} << 30);
  // A second model's shapes that the first already has are measured once.
  const GpuMeasurePlan twice = gpu_measure_plan({{"a", qwen()}, {"b", qwen()}}, true, 1, 3);
  EXPECT_EQ(twice.gemm.size(), 10u);
  EXPECT_EQ(twice.attention.size(), 6u);
}

TEST(GpuFit, RecoversTheEfficienciesOfSyntheticTimes) {
  const GpuCalibration c = fitted(synthetic(1, 0));
  const GpuSpec& s = c.calibrated;
  EXPECT_EQ(s.name, "h100-sxm-80g-calibrated");
  EXPECT_EQ(s.hbm_bytes, int64_t{81092} << 20);
  EXPECT_DOUBLE_EQ(s.attention_efficiency, 0.4);
  EXPECT_LT(c.attention.forward.max_rel, 1e-9);
  EXPECT_LT(c.attention.backward.max_rel, 1e-9);
  EXPECT_DOUBLE_EQ(s.memory_efficiency, 0.85);
  EXPECT_LT(c.memory.error.max_rel, 1e-9);
  EXPECT_DOUBLE_EQ(s.kernel_launch_s, 2.1e-6);
  EXPECT_DOUBLE_EQ(s.host_kernel_s, 3.3e-6);
  // The curve goes through every GEMM but for the rounding to 4 significant digits (at most
  // 0.05%).
  EXPECT_LT(c.gemm.error.max_rel, 0.001);
  EXPECT_EQ(c.gemm.error.points, 35);
  for (const GemmSample& g : c.measured.gemm) {
    EXPECT_NEAR(s.gemm_efficiency_at(g.shape.flops()) / true_gemm_efficiency(g.shape.flops()), 1,
                0.001)
        << g.shape.name << " " << g.shape.tokens;
  }
  // Links, IB, reserve, microbatch and tile are the base file's.
  const GpuSpec base = test::shipped_gpu("h100-sxm-80g");
  EXPECT_EQ(s.nvlink_latency_s, base.nvlink_latency_s);
  EXPECT_EQ(s.collective_efficiency, base.collective_efficiency);
  EXPECT_EQ(s.peak_bf16_flops, base.peak_bf16_flops);
  EXPECT_EQ(s.reserved_bytes, base.reserved_bytes);
  EXPECT_EQ(s.attention_block, base.attention_block);
  EXPECT_FALSE(c.links);
  EXPECT_EQ(c.links_kept, "one GPU: no link to measure");
}

// Monotone-interpolable: FLOPs strictly increasing, efficiency non-decreasing, every value in
// (0, 1] — with noisy times, and with GEMMs faster than the base file's peak.
TEST(GpuFit, GemmCurveIsMonotoneAndAFraction) {
  for (const double noise : {0.0, 0.15, 0.4}) {
    const GpuCalibration c = fitted(synthetic(1, noise, 11));
    const auto& curve = c.calibrated.gemm_efficiency;
    ASSERT_GE(curve.size(), 2u);
    for (size_t i = 0; i < curve.size(); ++i) {
      EXPECT_GT(curve[i].second, 0);
      EXPECT_LE(curve[i].second, 1);
      if (i > 0) {
        EXPECT_GT(curve[i].first, curve[i - 1].first);
        EXPECT_GE(curve[i].second, curve[i - 1].second);
      }
    }
    // Interpolation between and beyond the points stays in (0, 1] and never falls.
    double last = 0;
    for (double f = 1e7; f < 1e15; f *= 1.3) {
      const double e = c.calibrated.gemm_efficiency_at(f);
      EXPECT_GT(e, 0);
      EXPECT_LE(e, 1);
      EXPECT_GE(e, last);
      last = e;
    }
  }
  std::vector<GemmSample> fast;
  for (const int64_t t : {256, 1024, 4096}) {
    const GemmShape g{"m", "x", t, 4096, 4096};
    fast.push_back({g, g.flops() / (kPeak * 1.3)});  // 130% of peak
  }
  const GemmCurveFit fit = fit_gemm_efficiency(fast, kPeak);
  EXPECT_EQ(fit.above_peak, 3);
  for (const auto& point : fit.curve) EXPECT_EQ(point.second, 1.0);
}

TEST(GpuFit, CollectiveTermsAreTheCostModels) {
  const StatusOr<CollectiveTerms> ar = collective_terms("all_reduce", 8);
  ASSERT_TRUE(ar.ok());
  EXPECT_DOUBLE_EQ(ar->latencies, 14);       // 2(n−1) ring steps
  EXPECT_DOUBLE_EQ(ar->bytes_factor, 1.75);  // 2(n−1)/n
  const StatusOr<CollectiveTerms> ag = collective_terms("all_gather", 8);
  ASSERT_TRUE(ag.ok());
  EXPECT_DOUBLE_EQ(ag->latencies, 7);
  EXPECT_DOUBLE_EQ(ag->bytes_factor, 0.875);
  const StatusOr<CollectiveTerms> rs = collective_terms("reduce_scatter", 2);
  ASSERT_TRUE(rs.ok());
  EXPECT_DOUBLE_EQ(rs->latencies, 1);
  EXPECT_DOUBLE_EQ(rs->bytes_factor, 0.5);
  const StatusOr<CollectiveTerms> p2p = collective_terms("send_recv", 4);
  ASSERT_TRUE(p2p.ok());
  EXPECT_DOUBLE_EQ(p2p->latencies, 1);
  EXPECT_DOUBLE_EQ(p2p->bytes_factor, 1);
  EXPECT_FALSE(collective_terms("all_to_all", 8).ok());
  EXPECT_FALSE(collective_terms("all_reduce", 1).ok());
}

TEST(GpuFit, AlphaBetaRecoversKnownLatencyAndBandwidth) {
  std::vector<int64_t> sizes;
  for (int64_t s = 4096; s <= (int64_t{1} << 30); s *= 4) sizes.push_back(s);
  for (const int ranks : {2, 8}) {
    const StatusOr<AlphaBetaFit> exact =
        fit_alpha_beta(collectives(sizes, ranks, 3e-6, 360e9, 0, 1), ranks);
    ASSERT_TRUE(exact.ok()) << exact.status().message();
    EXPECT_NEAR(exact->alpha_s / 3e-6, 1, 1e-9);
    EXPECT_NEAR(exact->beta_bytes_per_s / 360e9, 1, 1e-9);
    EXPECT_LT(exact->error.max_rel, 1e-9);
    ASSERT_EQ(exact->per_op.size(), 4u);
    // ±5% noise on every time, three seeds.
    for (const uint32_t seed : {1u, 2u, 3u}) {
      const StatusOr<AlphaBetaFit> noisy =
          fit_alpha_beta(collectives(sizes, ranks, 3e-6, 360e9, 0.05, seed), ranks);
      ASSERT_TRUE(noisy.ok());
      EXPECT_NEAR(noisy->alpha_s / 3e-6, 1, 0.1) << ranks << " ranks, seed " << seed;
      EXPECT_NEAR(noisy->beta_bytes_per_s / 360e9, 1, 0.05) << ranks << " ranks, seed " << seed;
      EXPECT_LE(noisy->error.max_rel, 0.11);
      EXPECT_GT(noisy->error.mean_rel, 0);
    }
  }
  // No latency at all, and noise: α is held at 0, not negative.
  const StatusOr<AlphaBetaFit> none = fit_alpha_beta(collectives(sizes, 8, 0, 360e9, 0.05, 4), 8);
  ASSERT_TRUE(none.ok());
  EXPECT_GE(none->alpha_s, 0);
  EXPECT_NEAR(none->beta_bytes_per_s / 360e9, 1, 0.05);
  // One size cannot separate α from β.
  const StatusOr<AlphaBetaFit> one = fit_alpha_beta(collectives({4096}, 8, 3e-6, 360e9, 0, 1), 8);
  ASSERT_FALSE(one.ok());
  EXPECT_EQ(one.status().code(), StatusCode::kRuntime);
}

TEST(GpuFit, LinksFromSeveralGpusOfOneNode) {
  const GpuCalibration c = fitted(synthetic(8, 0));
  ASSERT_TRUE(c.links);
  EXPECT_DOUBLE_EQ(c.calibrated.nvlink_latency_s, 3e-6);
  EXPECT_DOUBLE_EQ(c.calibrated.collective_efficiency, 0.8);  // 360 of 450 GB/s
  GpuMeasurements two_nodes = synthetic(16, 0);
  two_nodes.nodes = 2;
  two_nodes.collectives.clear();
  const GpuCalibration kept = fitted(two_nodes);
  EXPECT_FALSE(kept.links);
  EXPECT_NE(kept.links_kept.find("on 2 nodes"), std::string::npos) << kept.links_kept;
  GpuMeasurements visible = synthetic(1, 0);
  visible.device.visible = 4;
  EXPECT_NE(fitted(visible).links_kept.find("mpirun -np 4"), std::string::npos);
}

void expect_same(const GpuSpec& a, const GpuSpec& b) {
  EXPECT_EQ(a.name, b.name);
  EXPECT_DOUBLE_EQ(a.peak_bf16_flops, b.peak_bf16_flops);
  EXPECT_EQ(a.hbm_bytes, b.hbm_bytes);
  EXPECT_DOUBLE_EQ(a.hbm_bandwidth_bytes_per_s, b.hbm_bandwidth_bytes_per_s);
  EXPECT_DOUBLE_EQ(a.nvlink_bandwidth_bytes_per_s, b.nvlink_bandwidth_bytes_per_s);
  EXPECT_DOUBLE_EQ(a.nvlink_latency_s, b.nvlink_latency_s);
  EXPECT_DOUBLE_EQ(a.ib_bandwidth_bytes_per_s, b.ib_bandwidth_bytes_per_s);
  EXPECT_DOUBLE_EQ(a.ib_latency_s, b.ib_latency_s);
  ASSERT_EQ(a.gemm_efficiency.size(), b.gemm_efficiency.size());
  for (size_t i = 0; i < a.gemm_efficiency.size(); ++i) {
    EXPECT_DOUBLE_EQ(a.gemm_efficiency[i].first, b.gemm_efficiency[i].first);
    EXPECT_DOUBLE_EQ(a.gemm_efficiency[i].second, b.gemm_efficiency[i].second);
  }
  EXPECT_DOUBLE_EQ(a.attention_efficiency, b.attention_efficiency);
  EXPECT_DOUBLE_EQ(a.memory_efficiency, b.memory_efficiency);
  EXPECT_DOUBLE_EQ(a.collective_efficiency, b.collective_efficiency);
  EXPECT_EQ(a.reserved_bytes, b.reserved_bytes);
  EXPECT_DOUBLE_EQ(a.kernel_launch_s, b.kernel_launch_s);
  EXPECT_DOUBLE_EQ(a.host_kernel_s, b.host_kernel_s);
  EXPECT_DOUBLE_EQ(a.microbatch_s, b.microbatch_s);
  EXPECT_EQ(a.attention_block, b.attention_block);
}

// The comment lines right above the line that starts with `key` (lines joined by spaces).
std::string comment_above(const std::string& yaml, const std::string& key) {
  const size_t at = yaml.find("\n" + key);
  if (at == std::string::npos) return "";
  std::string text;
  size_t end = at;  // the '\n' ending the line above
  while (end > 0) {
    const size_t begin = yaml.rfind('\n', end - 1);
    const size_t from = begin == std::string::npos ? 0 : begin + 1;
    if (yaml.compare(from, 2, "# ") != 0) break;
    text = yaml.substr(from + 2, end - from - 2) + " " + text;
    if (begin == std::string::npos) break;
    end = begin;
  }
  return text;
}

TEST(GpuFile, ParsesAndRoundTrips) {
  for (const int ranks : {1, 8}) {
    GpuMeasurements m = synthetic(ranks, 0.2, 5);
    m.device.name = "NVIDIA \"H100\": test\\part";  // quotes, a colon, a backslash
    const GpuCalibration c = fitted(m);
    const std::string yaml = gpu_calibration_yaml(c);
    const StatusOr<GpuSpec> parsed = parse_gpu_yaml(yaml, "gpu-calibrated.yaml");
    ASSERT_TRUE(parsed.ok()) << parsed.status().message() << "\n" << yaml;
    expect_same(*parsed, c.calibrated);
    // Every value line has its comment above it, saying where the value comes from.
    const std::string tag =
        "[measured 2026-12-07T10:00:00Z on NVIDIA \"H100\": test\\part, "
        "driver CUDA 13.0, runtime CUDA 13.0, chunkflow 0.1.0]";
    for (const char* key : {"hbm_mib:", "gemm_efficiency:", "attention_efficiency:",
                            "memory_efficiency:", "kernel_launch_us:", "host_kernel_us:"}) {
      EXPECT_NE(comment_above(yaml, key).find(tag), std::string::npos) << key << "\n" << yaml;
    }
    for (const char* key : {"nvlink_latency_us:", "collective_efficiency:"}) {
      const std::string why = comment_above(yaml, key);
      EXPECT_EQ(why.find(tag) != std::string::npos, ranks > 1) << key << "\n" << yaml;
      EXPECT_EQ(why.find("[assumption]") != std::string::npos, ranks == 1) << key;
    }
    for (const char* key :
         {"ib_latency_us:", "reserved_mib:", "attention_block:", "microbatch_us:"}) {
      EXPECT_NE(comment_above(yaml, key).find("[assumption]"), std::string::npos) << key;
    }
    EXPECT_NE(yaml.find("[assumption] the base file's (h100-sxm-80g), not measured by calibrate: "
                        "a link between nodes"),
              std::string::npos);
    EXPECT_EQ(comment_above(yaml, "nvlink_latency_us:").find("one GPU: no link to measure") !=
                  std::string::npos,
              ranks == 1);
    EXPECT_NE(yaml.find("From the base file h100-sxm-80g (datasheet).\npeak_bf16_tflops: 989.4\n"),
              std::string::npos)
        << yaml;
    // No comment line is wider than the hardware files' 100 columns.
    size_t begin = 0;
    while (begin < yaml.size()) {
      const size_t end = yaml.find('\n', begin);
      if (yaml.compare(begin, 1, "#") == 0) {
        EXPECT_LE(end - begin, 100u) << yaml.substr(begin, end - begin);
      }
      begin = end + 1;
    }
  }
}

TEST(GpuFile, LoadsAsAJobsGpu) {
  const GpuCalibration c = fitted(synthetic(8, 0.1));
  test::TempDir dir;
  const std::string path = dir.write("gpu.yaml", gpu_calibration_yaml(c));
  const StatusOr<GpuSpec> loaded = load_gpu(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status().message();
  expect_same(*loaded, c.calibrated);
}

TEST(GpuFit, EmptySeriesAreRuntimeErrors) {
  GpuMeasurements m = synthetic(1, 0);
  m.memory.clear();
  const StatusOr<GpuCalibration> c =
      fit_gpu_calibration(m, test::shipped_gpu("h100-sxm-80g"), "h100", qwen());
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), StatusCode::kRuntime);
}

TEST(GpuFit, SummaryHasEveryFieldAgainstTheBase) {
  const GpuCalibration one = fitted(synthetic(1, 0.1));
  const std::string s = gpu_calibration_summary(one);
  for (const char* part : {"backend cuda on NVIDIA H100 80GB HBM3",
                           "driver CUDA 13.0, runtime CUDA 13.0",
                           "2 warm-up + 7 timed runs",
                           "hbm_mib",
                           "81559",
                           "81092",
                           "gemm_efficiency",
                           "over 35 points",
                           "attention_efficiency",
                           "0.4000",
                           "memory_efficiency",
                           "0.8500",
                           "kernel_launch_us",
                           "2.1",
                           "host_kernel_us",
                           "3.3",
                           "nvlink_latency_us",
                           "kept",
                           "one GPU: no link to measure",
                           "q ∈ {1024, 2048, 4096, 8192}",
                           "\n  8192   24576 "}) {
    EXPECT_NE(s.find(part), std::string::npos) << part << "\n" << s;
  }
  const std::string eight = gpu_calibration_summary(fitted(synthetic(8, 0)));
  EXPECT_NE(eight.find("α = 3.000 µs, β = 360.0 GB/s"), std::string::npos) << eight;
  EXPECT_NE(eight.find("collective_efficiency"), std::string::npos);
}

TEST(GpuBase, ChosenFromTheDeviceName) {
  EXPECT_EQ(base_gpu_for_device("NVIDIA H100 80GB HBM3"), "h100-sxm-80g");
  EXPECT_EQ(base_gpu_for_device("NVIDIA H200"), "h200-141g");
  EXPECT_EQ(base_gpu_for_device("NVIDIA A100-SXM4-80GB"), "a100-sxm-80g");
  EXPECT_EQ(base_gpu_for_device("NVIDIA H800"), "h800-80g");
  EXPECT_EQ(base_gpu_for_device("NVIDIA H100 PCIe"), "");
  EXPECT_EQ(base_gpu_for_device("NVIDIA H100 NVL"), "");
  EXPECT_EQ(base_gpu_for_device("NVIDIA A100-SXM4-40GB"), "");
  EXPECT_EQ(base_gpu_for_device("NVIDIA L40S"), "");
}

}  // namespace
}  // namespace cf

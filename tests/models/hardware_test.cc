// GPU YAMLs: every shipped GPU loads with positive, unit-converted values; the GEMM efficiency
// curve interpolates in log(flops) and is clamped at its ends; bad inputs name file:line and key.
#include "models/hardware.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "core/resources.h"
#include "tests/models/input_helpers.h"

namespace cf {
namespace {

using test::expect_invalid;
using test::replace;

const char* kShippedGpus[] = {"a100-sxm-80g", "gh200-96g", "h100-sxm-80g", "h200-141g", "h800-80g"};

GpuSpec must_load_gpu(const std::string& name) {
  StatusOr<GpuSpec> gpu = load_gpu(name);
  EXPECT_TRUE(gpu.ok()) << gpu.status().message();
  return gpu.ok() ? *gpu : GpuSpec{};
}

TEST(HardwareTest, EveryShippedGpuLoadsWithPositiveValues) {
  EXPECT_EQ(embedded_files_under("models/hardware").size(), std::size(kShippedGpus));
  for (const char* name : kShippedGpus) {
    SCOPED_TRACE(name);
    GpuSpec gpu = must_load_gpu(name);
    EXPECT_EQ(gpu.name, name);
    EXPECT_GT(gpu.peak_bf16_flops, 1e14);  // all are in the hundreds of TFLOP/s
    EXPECT_GT(gpu.hbm_bytes, int64_t{64} << 30);
    EXPECT_GT(gpu.hbm_bandwidth_bytes_per_s, 1e12);
    EXPECT_GT(gpu.nvlink_bandwidth_bytes_per_s, gpu.ib_bandwidth_bytes_per_s);
    EXPECT_GT(gpu.ib_bandwidth_bytes_per_s, 0);
    EXPECT_GT(gpu.nvlink_latency_s, 0);
    EXPECT_LT(gpu.nvlink_latency_s, 1e-4);
    EXPECT_GT(gpu.ib_latency_s, 0);
    EXPECT_LT(gpu.ib_latency_s, 1e-4);
    EXPECT_GT(gpu.reserved_bytes, 0);
    EXPECT_LT(gpu.reserved_bytes, gpu.hbm_bytes / 4);
    for (double fraction :
         {gpu.attention_efficiency, gpu.memory_efficiency, gpu.collective_efficiency}) {
      EXPECT_GT(fraction, 0);
      EXPECT_LE(fraction, 1);
    }
    ASSERT_GE(gpu.gemm_efficiency.size(), 2u);
    // The host link K/V offload uses: PCIe Gen4/Gen5 x16 (32 or 64 GB/s per direction) or
    // NVLink-C2C (450 GB/s), and at least 400 GiB of host memory per node.
    EXPECT_GE(gpu.host_link_bandwidth_bytes_per_s, 32e9);
    EXPECT_LE(gpu.host_link_bandwidth_bytes_per_s, 450e9);
    EXPECT_GE(gpu.gpus_per_host_link, 1);
    EXPECT_GT(gpu.host_link_efficiency, 0);
    EXPECT_LE(gpu.host_link_efficiency, 1);
    EXPECT_GE(gpu.host_memory_bytes, int64_t{400} << 30);
  }
  // GH200's link is NVLink-C2C, one GPU each; the HGX boards' PCIe switches take two.
  EXPECT_EQ(must_load_gpu("gh200-96g").host_link_bandwidth_bytes_per_s, 450e9);
  EXPECT_EQ(must_load_gpu("gh200-96g").gpus_per_host_link, 1);
  EXPECT_EQ(must_load_gpu("h100-sxm-80g").host_link_bandwidth_bytes_per_s, 64e9);
  EXPECT_EQ(must_load_gpu("h100-sxm-80g").gpus_per_host_link, 2);
}

TEST(HardwareTest, UnitsAreConvertedOnce) {
  GpuSpec h100 = must_load_gpu("h100-sxm-80g");
  EXPECT_DOUBLE_EQ(h100.peak_bf16_flops, 989.4e12);
  EXPECT_EQ(h100.hbm_bytes, int64_t{81559} << 20);
  EXPECT_DOUBLE_EQ(h100.hbm_bandwidth_bytes_per_s, 3.35e12);
  EXPECT_DOUBLE_EQ(h100.nvlink_bandwidth_bytes_per_s, 450e9);  // 900 GB/s bidirectional
  EXPECT_DOUBLE_EQ(h100.ib_bandwidth_bytes_per_s, 50e9);       // NDR 400 Gb/s
  EXPECT_DOUBLE_EQ(h100.nvlink_latency_s, 3e-6);
  EXPECT_EQ(h100.reserved_bytes, int64_t{4096} << 20);
  GpuSpec h800 = must_load_gpu("h800-80g");
  EXPECT_DOUBLE_EQ(h800.nvlink_bandwidth_bytes_per_s, 200e9);  // 400 GB/s bidirectional
  EXPECT_DOUBLE_EQ(h800.peak_bf16_flops, h100.peak_bf16_flops);
  GpuSpec a100 = must_load_gpu("a100-sxm-80g");
  EXPECT_DOUBLE_EQ(a100.peak_bf16_flops, 312e12);
  EXPECT_EQ(a100.hbm_bytes, int64_t{80} << 30);
  GpuSpec h200 = must_load_gpu("h200-141g");
  EXPECT_EQ(h200.hbm_bytes, int64_t{143771} << 20);
  EXPECT_DOUBLE_EQ(h200.hbm_bandwidth_bytes_per_s, 4.8e12);
}

TEST(HardwareTest, GemmEfficiencyIsMonotoneAndHitsEveryPoint) {
  for (const char* name : kShippedGpus) {
    SCOPED_TRACE(name);
    GpuSpec gpu = must_load_gpu(name);
    const auto& points = gpu.gemm_efficiency;
    for (const auto& [flops, efficiency] : points) {
      EXPECT_DOUBLE_EQ(gpu.gemm_efficiency_at(flops), efficiency);
    }
    // Between each pair of points: monotone, and between the two ends of its segment.
    for (std::size_t i = 0; i + 1 < points.size(); ++i) {
      double previous = points[i].second;
      for (int step = 1; step <= 97; ++step) {
        const double flops =
            points[i].first * std::pow(points[i + 1].first / points[i].first, step / 97.0);
        const double efficiency = gpu.gemm_efficiency_at(flops);
        EXPECT_GE(efficiency, previous - 1e-12) << flops;
        EXPECT_GE(efficiency, std::min(points[i].second, points[i + 1].second) - 1e-12);
        EXPECT_LE(efficiency, std::max(points[i].second, points[i + 1].second) + 1e-12);
        previous = efficiency;
      }
    }
    // Clamped at the ends.
    EXPECT_DOUBLE_EQ(gpu.gemm_efficiency_at(points.front().first / 1000), points.front().second);
    EXPECT_DOUBLE_EQ(gpu.gemm_efficiency_at(0), points.front().second);
    EXPECT_DOUBLE_EQ(gpu.gemm_efficiency_at(points.back().first * 1000), points.back().second);
  }
}

TEST(HardwareTest, InterpolationIsLinearInLogFlops) {
  GpuSpec gpu;
  gpu.gemm_efficiency = {{1e9, 0.2}, {1e11, 0.6}, {1e12, 0.5}};
  EXPECT_NEAR(gpu.gemm_efficiency_at(1e10), 0.4, 1e-12);  // halfway in log between 1e9 and 1e11
  EXPECT_NEAR(gpu.gemm_efficiency_at(std::sqrt(1e11 * 1e12)), 0.55, 1e-12);
  EXPECT_NEAR(gpu.gemm_efficiency_at(1e9 * std::pow(100.0, 0.25)), 0.3, 1e-12);
  EXPECT_EQ(GpuSpec{}.gemm_efficiency_at(1e9), 1.0);  // no curve: peak
}

const char* kGpuYaml = R"(name: test-gpu
peak_bf16_tflops: 100
hbm_mib: 1024
hbm_bandwidth_tb_per_s: 1.5
nvlink_gb_per_s: 100
nvlink_latency_us: 2
ib_gb_per_s: 10
ib_latency_us: 5
gemm_efficiency:
  - {gflops: 1, efficiency: 0.3}
  - {gflops: 100, efficiency: 0.7}
attention_efficiency: 0.5
memory_efficiency: 0.8
collective_efficiency: 0.75
reserved_mib: 128
)";

TEST(HardwareTest, BadGpuYamlNamesFileLineAndKey) {
  const std::string f = "g.yaml";
  StatusOr<GpuSpec> good = parse_gpu_yaml(kGpuYaml, f);
  ASSERT_TRUE(good.ok()) << good.status().message();
  EXPECT_DOUBLE_EQ(good->collective_efficiency, 0.75);
  EXPECT_DOUBLE_EQ(good->gemm_efficiency_at(10e9), 0.5);

  expect_invalid(
      parse_gpu_yaml(replace(kGpuYaml, "ib_gb_per_s: 10", "ib_gb_per_s: 10\nib_gbps: 10"), f)
          .status(),
      {"g.yaml:8:1", "ib_gbps", "unknown key"});
  // A misspelt required key is first reported as the missing one.
  expect_invalid(parse_gpu_yaml(replace(kGpuYaml, "ib_gb_per_s: 10", "ib_gbps: 10"), f).status(),
                 {"g.yaml:1:", "ib_gb_per_s", "missing"});
  expect_invalid(parse_gpu_yaml(replace(kGpuYaml, "hbm_mib: 1024", "hbm_mib: lots"), f).status(),
                 {"g.yaml:3:", "hbm_mib", "integer"});
  expect_invalid(
      parse_gpu_yaml(replace(kGpuYaml, "peak_bf16_tflops: 100", "peak_bf16_tflops: 0"), f).status(),
      {"g.yaml:2:", "peak_bf16_tflops", "positive"});
  expect_invalid(
      parse_gpu_yaml(replace(kGpuYaml, "memory_efficiency: 0.8", "memory_efficiency: 1.5"), f)
          .status(),
      {"g.yaml:13:", "memory_efficiency", "fraction"});
  expect_invalid(
      parse_gpu_yaml(
          replace(kGpuYaml, "{gflops: 100, efficiency: 0.7}", "{gflops: 0.5, efficiency: 0.7}"), f)
          .status(),
      {"g.yaml:11:", "gemm_efficiency[1].gflops", "increasing"});
  expect_invalid(
      parse_gpu_yaml(replace(kGpuYaml, "{gflops: 1, efficiency: 0.3}", "{gflops: 1, eff: 0.3}"), f)
          .status(),
      {"g.yaml:10:", "gemm_efficiency[0]", "efficiency"});
  expect_invalid(
      parse_gpu_yaml(replace(kGpuYaml, "reserved_mib: 128", "reserved_mib: 2048"), f).status(),
      {"g.yaml:15:", "reserved_mib"});
  expect_invalid(parse_gpu_yaml(replace(kGpuYaml, "ib_latency_us: 5\n", ""), f).status(),
                 {"g.yaml:1:", "ib_latency_us", "missing"});
  expect_invalid(load_gpu("b300").status(), {"b300", "h100-sxm-80g"});
}

}  // namespace
}  // namespace cf

// `calibrate --from-profile`'s fits (executor/calibrate/profile_calibrate.h) on profiles whose
// ops were timed from known curves: the curves come back, the file parses back into the same
// spec, what a profile lacks keeps the base file's value, and a profile without shapes or
// GEMMs is refused with the file named.
#include "executor/calibrate/profile_calibrate.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "models/hardware.h"
#include "tests/support/presets.h"

namespace cf {
namespace {

// A GEMM efficiency that rises with size, as cuBLAS's does: 0.05 at 1 MFLOP to 0.75 at 1 TFLOP.
double cublas_like_gemm_efficiency(double flops) {
  return 0.05 + 0.7 * std::clamp(std::log10(flops / 1e6) / 6, 0.0, 1.0);
}

ProfileWorkSample sample(const std::string& name, KernelClass kind, double flops, double bytes,
                         int64_t count, double seconds_each, bool backward = false) {
  ProfileWorkSample s;
  s.name = name;
  s.kind = kind;
  s.backward = backward;
  s.flops = flops;
  s.bytes = bytes;
  s.count = count;
  s.total_ns = static_cast<int64_t>(std::llround(seconds_each * 1e9 * static_cast<double>(count)));
  return s;
}

// Two ranks: GEMMs of 23 odd sizes from a seeded generator, attention forward and backward at
// efficiency 0.43 (backward 2.5× the forward's time), elementwise ops at 61% of HBM bandwidth.
std::vector<RankProfile> profiles(const GpuSpec& gpu, unsigned seed) {
  std::mt19937_64 rng(seed);
  std::vector<RankProfile> ranks(2);
  for (int r = 0; r < 2; ++r) {
    RankProfile& p = ranks[r];
    p.path = "rank" + std::to_string(r) + ".json";
    p.rank = r;
    p.work.device_times = true;
    p.work.ops_with_dims = 100;
    for (int i = 0; i < 23; ++i) {
      const double m = static_cast<double>(17 + rng() % 8000);
      const double k = static_cast<double>(31 + rng() % 5000);
      const double n = static_cast<double>(7 + rng() % 9000);
      const double flops = 2 * m * k * n;
      p.work.samples.push_back(
          sample("aten::mm", KernelClass::kGemm, flops, 0, 1 + i % 3,
                 flops / (gpu.peak_bf16_flops * cublas_like_gemm_efficiency(flops))));
    }
    const double attention_flops = 4.0 * 128 * 32 * (4096.0 * 4097 / 2);
    const double forward_s = attention_flops / (gpu.peak_bf16_flops * 0.43);
    p.work.samples.push_back(sample("aten::_scaled_dot_product_flash_attention",
                                    KernelClass::kAttention, attention_flops, 0, 4, forward_s));
    p.work.samples.push_back(sample("aten::_scaled_dot_product_flash_attention_backward",
                                    KernelClass::kAttention, attention_flops, 0, 4, 2.5 * forward_s,
                                    true));
    for (const double bytes : {3e6, 7e7, 1.1e9}) {
      p.work.samples.push_back(sample("aten::add", KernelClass::kElementwise, 0, bytes, 2,
                                      bytes / (gpu.hbm_bandwidth_bytes_per_s * 0.61)));
    }
  }
  return ranks;
}

TEST(ProfileCalibrate, RecoversTheCurvesTheOpsWereTimedFrom) {
  const GpuSpec base = test::shipped_gpu("h100-sxm-80g");
  for (const unsigned seed : {1u, 7u, 2026u}) {
    StatusOr<ProfileCalibration> c = calibrate_from_profiles(profiles(base, seed), base, "h100");
    ASSERT_TRUE(c.ok()) << c.status().message();
    const GpuSpec& s = c->calibrated;
    EXPECT_EQ(s.name, "h100-sxm-80g-profiled");
    EXPECT_EQ(c->gemm_samples.size(), 46u);
    EXPECT_EQ(c->gemm.error.points, 46);
    // The truth is non-decreasing, so the curve passes through every size but for the
    // 4-significant-digit rounding of the file and the log-linear interpolation between
    // neighbouring sizes.
    EXPECT_LT(c->gemm.error.max_rel, 0.01) << "seed " << seed;
    for (const GemmSample& g : c->gemm_samples) {
      EXPECT_NEAR(
          s.gemm_efficiency_at(g.shape.flops()) / cublas_like_gemm_efficiency(g.shape.flops()), 1,
          0.01);
    }
    ASSERT_TRUE(c->attention.has_value());
    EXPECT_DOUBLE_EQ(s.attention_efficiency, 0.43);
    EXPECT_EQ(c->attention->ops, 16);
    EXPECT_LT(c->attention->error.max_rel, 1e-6);
    ASSERT_TRUE(c->memory.has_value());
    EXPECT_DOUBLE_EQ(s.memory_efficiency, 0.61);
    // Not fitted: the links and the fixed costs.
    EXPECT_EQ(s.collective_efficiency, base.collective_efficiency);
    EXPECT_EQ(s.kernel_launch_s, base.kernel_launch_s);
    EXPECT_EQ(s.peak_bf16_flops, base.peak_bf16_flops);

    StatusOr<GpuSpec> back = parse_gpu_yaml(profile_calibration_yaml(*c), "fitted.yaml");
    ASSERT_TRUE(back.ok()) << back.status().message();
    EXPECT_EQ(back->gemm_efficiency, s.gemm_efficiency);
    EXPECT_EQ(back->attention_efficiency, s.attention_efficiency);
    EXPECT_EQ(back->memory_efficiency, s.memory_efficiency);
    EXPECT_EQ(back->name, s.name);
  }
}

TEST(ProfileCalibrate, KeepsWhatTheProfileCannotFitAndSaysWhy) {
  const GpuSpec base = test::shipped_gpu("h100-sxm-80g");
  std::vector<RankProfile> ranks = profiles(base, 3);
  for (RankProfile& p : ranks) {
    std::erase_if(p.work.samples,
                  [](const ProfileWorkSample& s) { return s.kind != KernelClass::kGemm; });
  }
  StatusOr<ProfileCalibration> c = calibrate_from_profiles(ranks, base, "h100");
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_FALSE(c->attention.has_value());
  EXPECT_FALSE(c->memory.has_value());
  EXPECT_EQ(c->calibrated.attention_efficiency, base.attention_efficiency);
  EXPECT_EQ(c->calibrated.memory_efficiency, base.memory_efficiency);
  const std::string yaml = profile_calibration_yaml(*c);
  EXPECT_NE(yaml.find("no fused attention op"), std::string::npos) << yaml;
  EXPECT_NE(yaml.find("no elementwise op"), std::string::npos);
  const std::string summary = profile_calibration_summary(*c);
  EXPECT_NE(summary.find("kept: no fused attention op"), std::string::npos) << summary;
}

// Collectives timed by the cost model's ring formulas at α = 4.5 µs and β = 310 GB/s over a
// group of `group` GPUs, and 300 launch gaps of median 2.3 µs on rank 0 (2.9 µs on rank 1).
void add_links(std::vector<RankProfile>* ranks, int64_t group) {
  for (RankProfile& p : *ranks) {
    for (const char* op : {"all_reduce", "all_gather", "reduce_scatter"}) {
      const StatusOr<CollectiveTerms> terms = collective_terms(op, static_cast<int>(group));
      ASSERT_TRUE(terms.ok());
      for (const double bytes : {65536.0, 3e6, 1.7e8, 1.1e9}) {
        ProfileWorkSample s =
            sample(op, KernelClass::kCollective, 0, bytes, 3,
                   terms->latencies * 4.5e-6 + terms->bytes_factor * bytes / 310e9);
        s.group_size = group;
        p.work.samples.push_back(s);
      }
    }
    p.work.launch_gaps = 300;
    p.work.launch_gap_median_ns = p.rank == 0 ? 2300 : 2900;
  }
}

TEST(ProfileCalibrate, FitsTheLinksAndTheLaunchGapWhenTheProfileHasThem) {
  const GpuSpec base = test::shipped_gpu("h100-sxm-80g");
  std::vector<RankProfile> ranks = profiles(base, 11);
  add_links(&ranks, 8);
  StatusOr<ProfileCalibration> c = calibrate_from_profiles(ranks, base, "h100");
  ASSERT_TRUE(c.ok()) << c.status().message();
  ASSERT_TRUE(c->links.has_value()) << c->links_kept;
  EXPECT_EQ(c->collective_group, 8);
  EXPECT_NEAR(c->links->alpha_s, 4.5e-6, 1e-9);
  EXPECT_NEAR(c->links->beta_bytes_per_s, 310e9, 310e9 * 1e-6);
  EXPECT_NEAR(c->calibrated.nvlink_latency_s, 4.5e-6, 1e-12);
  EXPECT_DOUBLE_EQ(c->calibrated.collective_efficiency,
                   std::stod(fmt::format("{:.4g}", 310.0 / 450)));
  // The median of the two ranks' medians, taken as the upper one of an even count.
  EXPECT_DOUBLE_EQ(c->calibrated.kernel_launch_s, 2.9e-6);
  StatusOr<GpuSpec> back = parse_gpu_yaml(profile_calibration_yaml(*c), "fitted.yaml");
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(back->collective_efficiency, c->calibrated.collective_efficiency);
  EXPECT_DOUBLE_EQ(back->nvlink_latency_s, c->calibrated.nvlink_latency_s);
  EXPECT_DOUBLE_EQ(back->kernel_launch_s, c->calibrated.kernel_launch_s);

  // Groups of 16 span nodes: the links are kept, and the file says why.
  ranks = profiles(base, 11);
  add_links(&ranks, 16);
  c = calibrate_from_profiles(ranks, base, "h100");
  ASSERT_TRUE(c.ok());
  EXPECT_FALSE(c->links.has_value());
  EXPECT_EQ(c->calibrated.collective_efficiency, base.collective_efficiency);
  EXPECT_NE(c->links_kept.find("groups of 16 GPUs, more than a node's 8"), std::string::npos)
      << c->links_kept;
}

// A CPU-only profile: each step's time in no priced class (here "other" ops and the gaps
// between ops) over the passes marked in it is microbatch_us, and the CPU runs its own ops.
// Steps of odd lengths on two ranks; a pass mark outside every step and a step without marks
// count for nothing; the optimizer's mark is no pass.
TEST(ProfileCalibrate, ACpuProfileGivesTheFrameworkTimePerPass) {
  const GpuSpec base = test::shipped_gpu("h100-sxm-80g");
  for (const unsigned seed : {4u, 99u}) {
    std::mt19937_64 rng(seed);
    std::vector<RankProfile> ranks = profiles(base, seed);
    int64_t framework_ns = 0, passes = 0;
    for (RankProfile& p : ranks) {
      p.work.device_times = false;
      int64_t start = 1'000'000;
      for (int i = 0; i < 3 + p.rank; ++i) {
        ProfileStep step;
        step.name = fmt::format("ProfilerStep#{}", i);
        step.start_ns = start;
        step.duration_ns = 50'000'000 + static_cast<int64_t>(rng() % 9'000'001);
        step.by_class_ns[static_cast<int>(KernelClass::kGemm)] = step.duration_ns / 2;
        step.by_class_ns[static_cast<int>(KernelClass::kElementwise)] = step.duration_ns / 7;
        step.by_class_ns[static_cast<int>(KernelClass::kAttention)] = 1'234'567;
        step.by_class_ns[static_cast<int>(KernelClass::kOther)] = 3'000'001;  // not priced
        step.by_class_ns[static_cast<int>(KernelClass::kMemcpy)] = 77'777;    // not priced
        const int marked = i == 1 ? 0 : 2 + static_cast<int>(rng() % 5);
        for (int m = 0; m < marked; ++m) {
          ProfileMark mark;
          mark.op = MarkOp{OpKind::kCompute, m % 2 ? Pass::kBackward : Pass::kForward, m / 2};
          mark.start_ns = start + 1000 * (m + 1);
          mark.end_ns = mark.start_ns + 500;
          p.marks.cpu.push_back(mark);
        }
        ProfileMark optimizer;
        optimizer.op.kind = OpKind::kOptimizer;
        optimizer.start_ns = start + step.duration_ns - 10;
        p.marks.cpu.push_back(optimizer);
        if (marked > 0) {
          framework_ns +=
              step.duration_ns - step.duration_ns / 2 - step.duration_ns / 7 - 1'234'567;
          passes += marked;
        }
        p.steps.push_back(step);
        start += step.duration_ns + 5000;
      }
      ProfileMark outside;  // after the last step
      outside.start_ns = start + 1;
      p.marks.cpu.push_back(outside);
    }
    StatusOr<ProfileCalibration> c = calibrate_from_profiles(ranks, base, "h100");
    ASSERT_TRUE(c.ok()) << c.status().message();
    EXPECT_TRUE(c->microbatch_kept.empty()) << c->microbatch_kept;
    EXPECT_EQ(c->framework_ns, framework_ns);
    EXPECT_EQ(c->passes, passes);
    const double per_pass_us = static_cast<double>(framework_ns) / 1e3 / passes;
    EXPECT_DOUBLE_EQ(c->calibrated.microbatch_s,
                     std::stod(fmt::format("{:.4g}", per_pass_us)) * 1e-6);
    EXPECT_TRUE(c->calibrated.host_runs_kernels);
    StatusOr<GpuSpec> back = parse_gpu_yaml(profile_calibration_yaml(*c), "fitted.yaml");
    ASSERT_TRUE(back.ok()) << back.status().message();
    EXPECT_DOUBLE_EQ(back->microbatch_s, c->calibrated.microbatch_s);
    EXPECT_TRUE(back->host_runs_kernels);
    EXPECT_NE(profile_calibration_summary(*c).find(fmt::format("over {} passes", passes)),
              std::string::npos);

    // Without pass marks the framework time has nothing to divide over: kept, and said.
    for (RankProfile& p : ranks) p.marks.cpu.clear();
    c = calibrate_from_profiles(ranks, base, "h100");
    ASSERT_TRUE(c.ok());
    EXPECT_EQ(c->calibrated.microbatch_s, base.microbatch_s);
    EXPECT_TRUE(c->calibrated.host_runs_kernels);
    EXPECT_NE(c->microbatch_kept.find("no ProfilerStep holds a chunkflow pass mark"),
              std::string::npos)
        << c->microbatch_kept;
  }
  // Kernel times: the host overlaps the GPU, nothing of this is fitted.
  StatusOr<ProfileCalibration> gpu = calibrate_from_profiles(profiles(base, 4), base, "h100");
  ASSERT_TRUE(gpu.ok());
  EXPECT_FALSE(gpu->calibrated.host_runs_kernels);
  EXPECT_EQ(gpu->calibrated.microbatch_s, base.microbatch_s);
  EXPECT_FALSE(parse_gpu_yaml(profile_calibration_yaml(*gpu), "f.yaml")->host_runs_kernels);
}

TEST(ProfileCalibrate, RefusesProfilesWithoutShapesOrGemms) {
  const GpuSpec base = test::shipped_gpu("h100-sxm-80g");
  RankProfile no_shapes;
  no_shapes.path = "legacy.json";
  StatusOr<ProfileCalibration> c = calibrate_from_profiles({no_shapes}, base, "h100");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), StatusCode::kInvalidInput);
  EXPECT_NE(c.status().message().find("legacy.json: no op records its input shapes"),
            std::string::npos)
      << c.status().message();
  EXPECT_NE(c.status().message().find("record_shapes=True"), std::string::npos);

  RankProfile no_gemm = profiles(base, 5)[0];
  std::erase_if(no_gemm.work.samples,
                [](const ProfileWorkSample& s) { return s.kind == KernelClass::kGemm; });
  c = calibrate_from_profiles({no_gemm}, base, "h100");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("rank0.json: no GEMM"), std::string::npos)
      << c.status().message();
}

}  // namespace
}  // namespace cf

// What the profile summary adds for `compare` (traces/profile.h): time by class per step, the
// main CPU thread's busy time per step, the whole profile's busy time and activity span — on
// small profiles written here, every number worked out in the comments (µs in the profiles,
// ns in the checks).
#include <gtest/gtest.h>

#include "tests/support/subprocess.h"
#include "tests/traces/profile_builder.h"
#include "traces/profile.h"

namespace cf {
namespace {

using test::ProfileBuilder;

int64_t of(const std::array<int64_t, kKernelClassCount>& ns, KernelClass kind) {
  return ns[static_cast<int>(kind)];
}

RankProfile profile_from_text(const std::string& text) {
  test::TempDir dir;
  const std::string path = dir.write("p.json", text);
  StatusOr<RankProfile> profile = read_profile(path, 0);
  EXPECT_TRUE(profile.ok()) << profile.status().message();
  return profile.ok() ? *profile : RankProfile{};
}

// Steps [100, 200) and [200, 300). Each device activity counts in the step it starts in, whole:
// the GEMM at 195 runs 20 µs, 15 of them in step 2, and all 20 count in step 1.
TEST(ProfileSummary, DeviceTimeByClassPerStep) {
  ProfileBuilder p;
  p.step(1, 100, 100).step(2, 200, 100);
  p.kernel(test::kGemmKernel, 110, 20).kernel(test::kAttentionKernel, 150, 10);
  p.kernel(test::kGemmKernel, 195, 20);
  p.kernel(test::kCollectiveKernel, 220, 30, 13).memcpy(260, 2);
  p.kernel(test::kElementwiseKernel, 290, 20).kernel(test::kOtherKernel, 400, 1);
  p.cpu_op("aten::mm", 105, 3);
  const RankProfile r = profile_from_text(p.json());
  ASSERT_EQ(r.steps.size(), 2u);
  const auto& s1 = r.steps[0].by_class_ns;
  const auto& s2 = r.steps[1].by_class_ns;
  EXPECT_EQ(of(s1, KernelClass::kGemm), 40'000);
  EXPECT_EQ(of(s1, KernelClass::kAttention), 10'000);
  EXPECT_EQ(of(s2, KernelClass::kCollective), 30'000);
  EXPECT_EQ(of(s2, KernelClass::kMemcpy), 2'000);
  EXPECT_EQ(of(s2, KernelClass::kElementwise), 20'000);
  EXPECT_EQ(of(s2, KernelClass::kGemm), 0);
  // The sort at 400 is in no step: only in the whole profile's classes.
  EXPECT_EQ(of(s1, KernelClass::kOther) + of(s2, KernelClass::kOther), 0);
  EXPECT_EQ(of(r.by_class_ns(), KernelClass::kOther), 1'000);
  // Whole profile: [110, 130) 20 + [150, 160) 10 + [195, 215) 20 + [220, 250) 30 + [260, 262)
  // 2 + [290, 310) 20 + [400, 401) 1 = 103 µs busy; activity from the CPU op at 105 to 401.
  EXPECT_EQ(r.gpu_busy_ns, 103'000);
  EXPECT_EQ(r.activity_start_ns, 105'000);
  EXPECT_EQ(r.activity_end_ns, 401'000);
}

// A CPU-only legacy list: busy is the main thread's ops (thread 1: the most op time), marks
// left out; classes are self time of the ops (every thread) ending in the step, marks left out.
TEST(ProfileSummary, CpuOnlyBusyIsTheMainThreadsOps) {
  ProfileBuilder p(/*legacy=*/true);
  p.step(1, 95, 105);                        // [95, 200)
  p.mark("chunkflow:F:chunk=0", 90, 90);     // [90, 180): not an op
  p.cpu_op("aten::linear", 100, 50);         // self 50 − 10 = 40, gemm
  p.cpu_op("aten::addmm", 110, 10);          // self 10, gemm
  p.cpu_op("aten::add", 160, 10);            // self 10, elementwise
  p.cpu_op("aten::mul", 100, 5, /*tid=*/2);  // self 5, elementwise, another thread
  p.cpu_op("aten::add", 250, 10);            // after the step
  const RankProfile r = profile_from_text(p.json());
  ASSERT_FALSE(r.has_device_activity());
  ASSERT_EQ(r.steps.size(), 1u);
  const ProfileStep& s = r.steps[0];
  // Thread 1's ops: [100, 150) ∪ [160, 170) = 60 µs in the step (with the mark it would be 90).
  EXPECT_EQ(s.cpu_busy_ns, 60'000);
  EXPECT_EQ(s.gpu_busy_ns, 0);
  EXPECT_EQ(of(s.by_class_ns, KernelClass::kGemm), 50'000);
  EXPECT_EQ(of(s.by_class_ns, KernelClass::kElementwise), 15'000);
  EXPECT_EQ(of(s.by_class_ns, KernelClass::kOther), 0);  // the mark's own 30 µs not counted
  EXPECT_EQ(r.cpu_busy_ns, 70'000);                      // and [250, 260) outside the step
  EXPECT_EQ(r.activity_start_ns, 90'000);                // the mark is an event all the same
  EXPECT_EQ(r.activity_end_ns, 260'000);
}

// No ProfilerStep ranges: no steps, the whole profile's numbers still there.
TEST(ProfileSummary, WithoutStepsTheWholeProfile) {
  ProfileBuilder p;
  p.kernel(test::kGemmKernel, 10, 5).kernel(test::kGemmKernel, 12, 5, 9);
  const RankProfile r = profile_from_text(p.json());
  EXPECT_TRUE(r.steps.empty());
  EXPECT_EQ(r.gpu_busy_ns, 7'000);  // [10, 17)
  EXPECT_EQ(r.activity_start_ns, 10'000);
  EXPECT_EQ(r.activity_end_ns, 17'000);
}

}  // namespace
}  // namespace cf

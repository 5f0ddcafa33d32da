// State-aware chunk scheduling of one group (DESIGN §4.2): exact pass sequences and, over
// random (N, K), the memory cap and the backward dependency order.
#include <gtest/gtest.h>

#include <random>

#include "sim/plan/chunk_schedule.h"

namespace cf {
namespace {

TEST(GroupSchedule, PaperExampleFiveChunksKTwo) {
  EXPECT_EQ(group_schedule_string(group_schedule(5, 2)),
            "F*1 F*2 F*3 F4 F5 B5 B4 R3 B3 R2 B2 R1 B1");
}

TEST(GroupSchedule, AtMostKChunksKeepEverything) {
  EXPECT_EQ(group_schedule_string(group_schedule(3, 3)), "F1 F2 F3 B3 B2 B1");
  EXPECT_EQ(group_schedule_string(group_schedule(2, 7)), "F1 F2 B2 B1");
  EXPECT_EQ(group_schedule_string(group_schedule(1, 1)), "F1 B1");
}

TEST(GroupSchedule, KOneRecomputesAllButTheLast) {
  EXPECT_EQ(group_schedule_string(group_schedule(4, 1)), "F*1 F*2 F*3 F4 B4 R3 B3 R2 B2 R1 B1");
}

TEST(GroupSchedule, ForwardPassKind) {
  EXPECT_EQ(group_forward_pass(0, 5, 2), Pass::kForwardKeepKV);
  EXPECT_EQ(group_forward_pass(2, 5, 2), Pass::kForwardKeepKV);
  EXPECT_EQ(group_forward_pass(3, 5, 2), Pass::kForward);
  EXPECT_EQ(group_forward_pass(0, 1, 1), Pass::kForward);
}

TEST(GroupSchedule, RandomGroupsKeepTheCapAndTheBackwardOrder) {
  for (uint64_t seed : {3u, 17u, 81u}) {
    std::mt19937_64 rng(seed);
    std::uniform_int_distribution<int> n_dist(1, 40), k_dist(1, 12);
    for (int trial = 0; trial < 300; ++trial) {
      const int n = n_dist(rng), k = k_dist(rng);
      const std::vector<GroupStep> steps = group_schedule(n, k);
      std::vector<int> forwards(static_cast<size_t>(n), 0), backwards(static_cast<size_t>(n), 0);
      std::vector<bool> holds(static_cast<size_t>(n), false);
      int held = 0, max_held = 0, recomputes = 0;
      for (size_t i = 0; i < steps.size(); ++i) {
        const GroupStep& step = steps[i];
        const size_t j = static_cast<size_t>(step.index);
        switch (step.pass) {
          case Pass::kForward:
          case Pass::kForwardKeepKV:
            // Forwards ascending, each once.
            EXPECT_EQ(forwards[j]++, 0);
            for (size_t earlier = 0; earlier < j; ++earlier) EXPECT_EQ(forwards[earlier], 1);
            EXPECT_EQ(step.pass == Pass::kForwardKeepKV, step.index < n - k);
            if (step.pass == Pass::kForward) holds[j] = true, ++held;
            break;
          case Pass::kRecompute:
            ++recomputes;
            ASSERT_LT(i + 1, steps.size());
            EXPECT_EQ(steps[i + 1], (GroupStep{Pass::kBackward, step.index}));
            holds[j] = true, ++held;
            break;
          case Pass::kBackward:
            EXPECT_EQ(forwards[j], 1);
            EXPECT_EQ(backwards[j]++, 0);
            // Backward j follows the backwards of all later pieces (their dK/dV).
            for (size_t later = j + 1; later < static_cast<size_t>(n); ++later) {
              EXPECT_EQ(backwards[later], 1) << "n " << n << " k " << k;
            }
            EXPECT_TRUE(holds[j]);
            holds[j] = false, --held;
            break;
        }
        max_held = std::max(max_held, held);
      }
      EXPECT_LE(max_held, k) << "n " << n << " k " << k;
      EXPECT_EQ(max_held, std::min(n, k));
      EXPECT_EQ(recomputes, std::max(0, n - k));
      EXPECT_EQ(steps.size(), static_cast<size_t>(2 * n + std::max(0, n - k)));
      if (HasFailure()) return;
    }
  }
}

}  // namespace
}  // namespace cf

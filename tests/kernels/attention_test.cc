// Segment-table attention against the float64 reference: forward rows and log-sum-exp, and
// dQ, dK, dV (prefix keys included) against central differences, for standalone, packed,
// dependent (K/V prefix) and mixed segment tables, odd sizes, GQA with 3 query heads per kv
// head, and query blocks longer than the kernel's 64-row tile.
#include "kernels/cpu/attention.h"

#include <gtest/gtest.h>

#include <string>

#include "tests/kernels/kernel_test_util.h"
#include "tests/kernels/reference.h"

namespace cf::test {
namespace {

struct AttentionCase {
  std::string name;
  AttentionShape shape;
  std::vector<AttentionSegment> segments;
  uint32_t seed;
};

std::vector<AttentionCase> Cases() {
  return {
      {"one token", {1, 1, 1, 1, 1}, {{0, 1, 0, 1}}, 1},
      {"standalone 17, gqa 3:1", {17, 17, 3, 1, 8}, {{0, 17, 0, 17}}, 2},
      {"packed 1+3+17", {21, 21, 3, 1, 4}, {{0, 1, 0, 1}, {1, 3, 1, 3}, {4, 17, 4, 17}}, 3},
      {"dependent prefix 5 + chunk 7", {7, 12, 3, 1, 4}, {{0, 7, 0, 12}}, 4},
      {"mixed, keys elsewhere", {20, 30, 6, 2, 3}, {{0, 3, 10, 5}, {3, 17, 13, 17}}, 5},
      {"multi-tile: prefix 13 + chunk 70", {70, 83, 2, 1, 2}, {{0, 70, 0, 83}}, 6},
      {"empty segment between two", {9, 9, 2, 1, 4}, {{0, 4, 0, 4}, {4, 0, 4, 0}, {4, 5, 4, 5}}, 7},
  };
}

struct Inputs {
  std::vector<float> q, k, v, dout;
};

Inputs MakeInputs(const AttentionCase& c) {
  const AttentionShape& s = c.shape;
  return {RandomNormal(s.q_tokens * s.heads * s.head_dim, c.seed),
          RandomNormal(s.kv_tokens * s.kv_heads * s.head_dim, c.seed + 100),
          RandomNormal(s.kv_tokens * s.kv_heads * s.head_dim, c.seed + 200),
          RandomNormal(s.q_tokens * s.heads * s.head_dim, c.seed + 300)};
}

TEST(Attention, ForwardMatchesReference) {
  for (const AttentionCase& c : Cases()) {
    SCOPED_TRACE(c.name);
    const AttentionShape& s = c.shape;
    const Inputs in = MakeInputs(c);
    auto out = NaNs(in.q.size());
    auto lse = NaNs(s.q_tokens * s.heads);
    cpu::attention_forward(out.data(), lse.data(), in.q.data(), in.k.data(), in.v.data(),
                           c.segments.data(), int64_t(c.segments.size()), s);
    std::vector<double> ref_lse;
    const auto ref =
        AttentionRef(AsDouble(in.q), AsDouble(in.k), AsDouble(in.v), c.segments, s, &ref_lse);
    EXPECT_TRUE(AllClose(out, ref, kReductionTol));
    EXPECT_TRUE(AllClose(lse, ref_lse, kReductionTol));
    EXPECT_TRUE(NonZeroAndFinite(out));
  }
}

TEST(Attention, BackwardMatchesFiniteDifferencesForAllKeys) {
  for (const AttentionCase& c : Cases()) {
    SCOPED_TRACE(c.name);
    const AttentionShape& s = c.shape;
    const Inputs in = MakeInputs(c);
    const auto qd = AsDouble(in.q), kd = AsDouble(in.k), vd = AsDouble(in.v);
    const auto w = AsDouble(in.dout);
    const auto grad_q = NumericGradient(
        [&](const std::vector<double>& x) { return AttentionRef(x, kd, vd, c.segments, s); }, qd,
        w);
    const auto grad_k = NumericGradient(
        [&](const std::vector<double>& x) { return AttentionRef(qd, x, vd, c.segments, s); }, kd,
        w);
    const auto grad_v = NumericGradient(
        [&](const std::vector<double>& x) { return AttentionRef(qd, kd, x, c.segments, s); }, vd,
        w);

    auto out = NaNs(in.q.size());
    auto lse = NaNs(s.q_tokens * s.heads);
    cpu::attention_forward(out.data(), lse.data(), in.q.data(), in.k.data(), in.v.data(),
                           c.segments.data(), int64_t(c.segments.size()), s);
    auto dq = RandomNormal(in.q.size(), c.seed + 400);  // accumulated onto
    auto dk = RandomNormal(in.k.size(), c.seed + 500);
    auto dv = RandomNormal(in.v.size(), c.seed + 600);
    const auto expected_dq = Plus(dq, grad_q);
    const auto expected_dk = Plus(dk, grad_k);
    const auto expected_dv = Plus(dv, grad_v);
    cpu::attention_backward(dq.data(), dk.data(), dv.data(), in.dout.data(), in.q.data(),
                            in.k.data(), in.v.data(), out.data(), lse.data(), c.segments.data(),
                            int64_t(c.segments.size()), s);
    EXPECT_TRUE(AllClose(dq, expected_dq, kBackwardTol));
    EXPECT_TRUE(AllClose(dk, expected_dk, kBackwardTol));
    EXPECT_TRUE(AllClose(dv, expected_dv, kBackwardTol));
    EXPECT_TRUE(NonZeroAndFinite(grad_v));
  }
}

TEST(AttentionDeathTest, RejectsSegmentsThatDoNotTileTheQueries) {
  const AttentionShape shape{4, 4, 1, 1, 2};
  const std::vector<AttentionSegment> gap = {{0, 2, 0, 2}, {3, 1, 3, 1}};
  const std::vector<AttentionSegment> short_keys = {{0, 4, 0, 3}};
  EXPECT_DEATH(check_attention_args(gap.data(), 2, shape), "start where the last ended");
  EXPECT_DEATH(check_attention_args(short_keys.data(), 1, shape), "kv_len");
}

}  // namespace
}  // namespace cf::test

// Linear layer: exact on small-integer inputs (every product and partial sum is an integer
// below 2^24, so fp32 is exact), forward against float64 on random inputs, backward (dx, dW,
// db, each optional) against central differences.
#include "kernels/cpu/linear.h"

#include <gtest/gtest.h>

#include "tests/kernels/kernel_test_util.h"
#include "tests/kernels/reference.h"

namespace cf::test {
namespace {

struct LinearCase {
  int64_t tokens, in_features, out_features;
  bool bias;
  uint32_t seed;
};

const LinearCase kLinearCases[] = {
    {1, 1, 1, true, 1}, {3, 17, 5, true, 2}, {17, 33, 9, false, 3}, {81, 7, 13, true, 4}};

std::vector<float> SmallInts(size_t n, uint32_t seed) {
  const auto ints = RandomInts(n, -4, 4, seed);
  return std::vector<float>(ints.begin(), ints.end());
}

TEST(Linear, ForwardExactOnSmallIntegers) {
  for (const LinearCase& c : kLinearCases) {
    SCOPED_TRACE(::testing::Message() << "case seed " << c.seed);
    const auto x = SmallInts(c.tokens * c.in_features, c.seed);
    const auto w = SmallInts(c.out_features * c.in_features, c.seed + 100);
    const auto b = c.bias ? SmallInts(c.out_features, c.seed + 200) : std::vector<float>{};
    auto y = NaNs(c.tokens * c.out_features);
    cpu::linear_forward(y.data(), x.data(), w.data(), c.bias ? b.data() : nullptr, c.tokens,
                        c.in_features, c.out_features);
    const auto ref =
        LinearRef(AsDouble(x), AsDouble(w), AsDouble(b), c.in_features, c.out_features);
    EXPECT_TRUE(AllClose(y, ref, Tolerance{0.0, 0.0}));
  }
}

TEST(Linear, ForwardMatchesReference) {
  for (const LinearCase& c : kLinearCases) {
    SCOPED_TRACE(::testing::Message() << "case seed " << c.seed);
    const auto x = RandomNormal(c.tokens * c.in_features, c.seed);
    const auto w = RandomNormal(c.out_features * c.in_features, c.seed + 100);
    const auto b = c.bias ? RandomNormal(c.out_features, c.seed + 200) : std::vector<float>{};
    auto y = NaNs(c.tokens * c.out_features);
    cpu::linear_forward(y.data(), x.data(), w.data(), c.bias ? b.data() : nullptr, c.tokens,
                        c.in_features, c.out_features);
    EXPECT_TRUE(
        AllClose(y, LinearRef(AsDouble(x), AsDouble(w), AsDouble(b), c.in_features, c.out_features),
                 kReductionTol));
    EXPECT_TRUE(NonZeroAndFinite(y));
  }
}

TEST(Linear, BackwardMatchesFiniteDifferences) {
  for (const LinearCase& c : kLinearCases) {
    SCOPED_TRACE(::testing::Message() << "case seed " << c.seed);
    const auto x = RandomNormal(c.tokens * c.in_features, c.seed);
    const auto w = RandomNormal(c.out_features * c.in_features, c.seed + 100);
    const auto b = c.bias ? RandomNormal(c.out_features, c.seed + 200) : std::vector<float>{};
    const auto dy = RandomNormal(c.tokens * c.out_features, c.seed + 300);
    const auto xd = AsDouble(x), wd = AsDouble(w), bd = AsDouble(b), dyd = AsDouble(dy);
    const auto fn = [&](const std::vector<double>& xv, const std::vector<double>& wv,
                        const std::vector<double>& bv) {
      return LinearRef(xv, wv, bv, c.in_features, c.out_features);
    };
    const auto grad_x =
        NumericGradient([&](const std::vector<double>& v) { return fn(v, wd, bd); }, xd, dyd);
    const auto grad_w =
        NumericGradient([&](const std::vector<double>& v) { return fn(xd, v, bd); }, wd, dyd);
    auto dx = RandomNormal(x.size(), c.seed + 400);
    auto dw = RandomNormal(w.size(), c.seed + 500);
    const auto expected_dx = Plus(dx, grad_x);
    const auto expected_dw = Plus(dw, grad_w);
    if (c.bias) {
      const auto grad_b =
          NumericGradient([&](const std::vector<double>& v) { return fn(xd, wd, v); }, bd, dyd);
      auto db = RandomNormal(b.size(), c.seed + 600);
      const auto expected_db = Plus(db, grad_b);
      cpu::linear_backward(dx.data(), dw.data(), db.data(), dy.data(), x.data(), w.data(), c.tokens,
                           c.in_features, c.out_features);
      EXPECT_TRUE(AllClose(db, expected_db, kReductionTol));
    } else {
      cpu::linear_backward(dx.data(), dw.data(), nullptr, dy.data(), x.data(), w.data(), c.tokens,
                           c.in_features, c.out_features);
    }
    EXPECT_TRUE(AllClose(dx, expected_dx, kReductionTol));
    EXPECT_TRUE(AllClose(dw, expected_dw, kReductionTol));
    EXPECT_TRUE(NonZeroAndFinite(grad_w));
  }
}

TEST(Linear, BackwardSkipsNullGradients) {
  const LinearCase c{3, 5, 4, false, 9};
  const auto x = RandomNormal(c.tokens * c.in_features, c.seed);
  const auto w = RandomNormal(c.out_features * c.in_features, c.seed + 100);
  const auto dy = RandomNormal(c.tokens * c.out_features, c.seed + 300);
  auto dx_only = std::vector<float>(x.size(), 0.0f);
  auto dx_all = dx_only;
  auto dw = std::vector<float>(w.size(), 0.0f);
  cpu::linear_backward(dx_only.data(), nullptr, nullptr, dy.data(), x.data(), w.data(), c.tokens,
                       c.in_features, c.out_features);
  cpu::linear_backward(dx_all.data(), dw.data(), nullptr, dy.data(), x.data(), w.data(), c.tokens,
                       c.in_features, c.out_features);
  EXPECT_TRUE(BitwiseEqual(dx_only, dx_all));
  EXPECT_TRUE(NonZeroAndFinite(dx_only));
}

}  // namespace
}  // namespace cf::test

// The residual add y += x against a float64 reference on odd sizes: one correctly rounded fp32
// add per element, so the tolerance is the rounding bound itself.
#include "kernels/cpu/residual.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "tests/kernels/kernel_test_util.h"

namespace cf::test {
namespace {

// IEEE 754 round-to-nearest: |fl(a + b) − (a + b)| ≤ 2^-24·|a + b| (unit roundoff of fp32).
// Any other arithmetic (a lost element, a doubled one, an fp16 step) errs by far more.
constexpr Tolerance kOneRoundingTol{0.0, 0x1p-24};

struct ResidualCase {
  int64_t n;
  uint32_t seed;
};

const ResidualCase kResidualCases[] = {{1, 1}, {17, 2}, {987, 3}};

TEST(ResidualAdd, MatchesFloat64OnOddSizes) {
  for (const ResidualCase& c : kResidualCases) {
    SCOPED_TRACE(::testing::Message() << "n " << c.n);
    const auto x = RandomNormal(c.n, c.seed);
    auto y = RandomNormal(c.n, c.seed + 100, 3.0f);  // (n) the residual stream
    std::vector<double> ref(y.size());               // (n) y + x in float64
    for (size_t i = 0; i < y.size(); ++i) ref[i] = double(y[i]) + double(x[i]);
    cpu::residual_add(y.data(), x.data(), c.n);
    EXPECT_TRUE(AllClose(y, ref, kOneRoundingTol));
    EXPECT_TRUE(NonZeroAndFinite(y));
  }
}

// Every element is written and none beyond n: the element after the range keeps its NaN.
TEST(ResidualAdd, TouchesExactlyNElements) {
  const int64_t n = 17;
  const auto x = RandomNormal(n + 1, 4);
  auto y = RandomNormal(n, 5);
  const std::vector<float> before = y;
  y.push_back(NaNs(1)[0]);  // (n + 1): a sentinel past the end
  cpu::residual_add(y.data(), x.data(), n);
  for (int64_t i = 0; i < n; ++i) EXPECT_EQ(y[i], before[i] + x[i]) << "element " << i;
  EXPECT_TRUE(std::isnan(y[n]));
  cpu::residual_add(y.data(), x.data(), 0);  // n = 0 is a no-op
  EXPECT_TRUE(std::isnan(y[n]));
}

}  // namespace
}  // namespace cf::test

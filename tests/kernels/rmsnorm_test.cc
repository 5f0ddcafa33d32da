// RMSNorm: forward against the float64 reference, backward (dx and dweight) against central
// differences of it, on odd hidden sizes and several seeds.
#include "kernels/cpu/rmsnorm.h"

#include <gtest/gtest.h>

#include "tests/kernels/kernel_test_util.h"
#include "tests/kernels/reference.h"

namespace cf::test {
namespace {

struct RmsNormCase {
  int64_t tokens, hidden;
  float eps;
  uint32_t seed;
};

const RmsNormCase kRmsNormCases[] = {
    {1, 1, 1e-6f, 1}, {3, 17, 1e-6f, 2}, {17, 64, 1e-5f, 3}, {5, 129, 1e-6f, 4}};

TEST(RmsNorm, ForwardMatchesReference) {
  for (const RmsNormCase& c : kRmsNormCases) {
    SCOPED_TRACE(::testing::Message() << "tokens " << c.tokens << " hidden " << c.hidden);
    const auto x = RandomNormal(c.tokens * c.hidden, c.seed);
    const auto weight = RandomNormal(c.hidden, c.seed + 100);
    auto out = NaNs(x.size());
    auto rstd = NaNs(c.tokens);
    cpu::rmsnorm_forward(out.data(), rstd.data(), x.data(), weight.data(), c.tokens, c.hidden,
                         c.eps);
    EXPECT_TRUE(
        AllClose(out, RmsNormRef(AsDouble(x), AsDouble(weight), c.hidden, c.eps), kElementwiseTol));
    EXPECT_TRUE(NonZeroAndFinite(out));
    EXPECT_TRUE(NonZeroAndFinite(rstd));
  }
}

TEST(RmsNorm, BackwardMatchesFiniteDifferences) {
  for (const RmsNormCase& c : kRmsNormCases) {
    SCOPED_TRACE(::testing::Message() << "tokens " << c.tokens << " hidden " << c.hidden);
    const auto x = RandomNormal(c.tokens * c.hidden, c.seed);
    const auto weight = RandomNormal(c.hidden, c.seed + 100);
    const auto dout = RandomNormal(x.size(), c.seed + 200);
    const auto xd = AsDouble(x), wd = AsDouble(weight);
    const auto grad_x = NumericGradient(
        [&](const std::vector<double>& v) { return RmsNormRef(v, wd, c.hidden, c.eps); }, xd,
        AsDouble(dout));
    const auto grad_w = NumericGradient(
        [&](const std::vector<double>& v) { return RmsNormRef(xd, v, c.hidden, c.eps); }, wd,
        AsDouble(dout));

    auto out = NaNs(x.size());
    auto rstd = NaNs(c.tokens);
    cpu::rmsnorm_forward(out.data(), rstd.data(), x.data(), weight.data(), c.tokens, c.hidden,
                         c.eps);
    auto dx = RandomNormal(x.size(), c.seed + 300);
    auto dweight = RandomNormal(c.hidden, c.seed + 400);
    const auto expected_dx = Plus(dx, grad_x);
    const auto expected_dw = Plus(dweight, grad_w);
    cpu::rmsnorm_backward(dx.data(), dweight.data(), dout.data(), x.data(), weight.data(),
                          rstd.data(), c.tokens, c.hidden);
    EXPECT_TRUE(AllClose(dx, expected_dx, kBackwardTol));
    EXPECT_TRUE(AllClose(dweight, expected_dw, kBackwardTol));
    EXPECT_TRUE(NonZeroAndFinite(grad_w));
  }
}

}  // namespace
}  // namespace cf::test

// SwiGLU: forward against the float64 reference, backward (dgate, dup) against central
// differences, on odd sizes.
#include "kernels/cpu/swiglu.h"

#include <gtest/gtest.h>

#include "tests/kernels/kernel_test_util.h"
#include "tests/kernels/reference.h"

namespace cf::test {
namespace {

struct SwigluCase {
  int64_t n;
  uint32_t seed;
};

const SwigluCase kSwigluCases[] = {{1, 1}, {17, 2}, {987, 3}};

TEST(Swiglu, ForwardMatchesReference) {
  for (const SwigluCase& c : kSwigluCases) {
    SCOPED_TRACE(::testing::Message() << "n " << c.n);
    const auto gate = RandomNormal(c.n, c.seed, 3.0f);  // wide enough to reach both tails
    const auto up = RandomNormal(c.n, c.seed + 100);
    auto out = NaNs(c.n);
    cpu::swiglu_forward(out.data(), gate.data(), up.data(), c.n);
    EXPECT_TRUE(AllClose(out, SwigluRef(AsDouble(gate), AsDouble(up)), kElementwiseTol));
    EXPECT_TRUE(NonZeroAndFinite(out));
  }
}

TEST(Swiglu, BackwardMatchesFiniteDifferences) {
  for (const SwigluCase& c : kSwigluCases) {
    SCOPED_TRACE(::testing::Message() << "n " << c.n);
    const auto gate = RandomNormal(c.n, c.seed, 3.0f);
    const auto up = RandomNormal(c.n, c.seed + 100);
    const auto dout = RandomNormal(c.n, c.seed + 200);
    const auto gd = AsDouble(gate), ud = AsDouble(up);
    const auto grad_gate = NumericGradient(
        [&](const std::vector<double>& g) { return SwigluRef(g, ud); }, gd, AsDouble(dout));
    const auto grad_up = NumericGradient(
        [&](const std::vector<double>& u) { return SwigluRef(gd, u); }, ud, AsDouble(dout));
    auto dgate = RandomNormal(c.n, c.seed + 300);
    auto dup = RandomNormal(c.n, c.seed + 400);
    const auto expected_gate = Plus(dgate, grad_gate);
    const auto expected_up = Plus(dup, grad_up);
    cpu::swiglu_backward(dgate.data(), dup.data(), dout.data(), gate.data(), up.data(), c.n);
    EXPECT_TRUE(AllClose(dgate, expected_gate, kElementwiseTol));
    EXPECT_TRUE(AllClose(dup, expected_up, kElementwiseTol));
    EXPECT_TRUE(NonZeroAndFinite(grad_gate));
  }
}

}  // namespace
}  // namespace cf::test

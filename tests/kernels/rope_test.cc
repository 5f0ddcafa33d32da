// RoPE: forward against the float64 rotate-half reference (also in place), position 0 is the
// identity exactly, backward against central differences.
#include "kernels/cpu/rope.h"

#include <gtest/gtest.h>

#include "tests/kernels/kernel_test_util.h"
#include "tests/kernels/reference.h"

namespace cf::test {
namespace {

struct RopeCase {
  int64_t tokens, heads, head_dim;
  double theta;
  int32_t max_position;
  uint32_t seed;
};

const RopeCase kRopeCases[] = {{1, 1, 2, 10000.0, 0, 1},
                               {3, 3, 8, 10000.0, 40, 2},
                               {17, 2, 16, 1e6, 131071, 3},
                               {5, 1, 128, 1e6, 262143, 4}};

TEST(Rope, ForwardMatchesReferenceAlsoInPlace) {
  for (const RopeCase& c : kRopeCases) {
    SCOPED_TRACE(::testing::Message() << "tokens " << c.tokens << " d " << c.head_dim);
    const auto x = RandomNormal(c.tokens * c.heads * c.head_dim, c.seed);
    const auto positions = RandomInts(c.tokens, 0, c.max_position, c.seed + 100);
    auto out = NaNs(x.size());
    cpu::rope_forward(out.data(), x.data(), positions.data(), c.tokens, c.heads, c.head_dim,
                      c.theta);
    EXPECT_TRUE(AllClose(out, RopeRef(AsDouble(x), positions, c.heads, c.head_dim, c.theta),
                         kElementwiseTol));
    EXPECT_TRUE(NonZeroAndFinite(out));
    auto in_place = x;
    cpu::rope_forward(in_place.data(), in_place.data(), positions.data(), c.tokens, c.heads,
                      c.head_dim, c.theta);
    EXPECT_TRUE(BitwiseEqual(in_place, out));
  }
}

TEST(Rope, PositionZeroIsTheIdentity) {
  const auto x = RandomNormal(3 * 2 * 6, 7);
  const std::vector<int32_t> positions(3, 0);
  auto out = NaNs(x.size());
  cpu::rope_forward(out.data(), x.data(), positions.data(), 3, 2, 6, 10000.0);
  EXPECT_TRUE(BitwiseEqual(out, x));
}

TEST(Rope, BackwardMatchesFiniteDifferences) {
  for (const RopeCase& c : kRopeCases) {
    SCOPED_TRACE(::testing::Message() << "tokens " << c.tokens << " d " << c.head_dim);
    const auto x = RandomNormal(c.tokens * c.heads * c.head_dim, c.seed);
    const auto positions = RandomInts(c.tokens, 0, c.max_position, c.seed + 100);
    const auto dout = RandomNormal(x.size(), c.seed + 200);
    const auto grad = NumericGradient(
        [&](const std::vector<double>& v) {
          return RopeRef(v, positions, c.heads, c.head_dim, c.theta);
        },
        AsDouble(x), AsDouble(dout));
    auto dx = RandomNormal(x.size(), c.seed + 300);
    const auto expected = Plus(dx, grad);
    cpu::rope_backward(dx.data(), dout.data(), positions.data(), c.tokens, c.heads, c.head_dim,
                       c.theta);
    EXPECT_TRUE(AllClose(dx, expected, kElementwiseTol));
    EXPECT_TRUE(NonZeroAndFinite(grad));
  }
}

}  // namespace
}  // namespace cf::test

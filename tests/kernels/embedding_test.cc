// Embedding lookup: the forward is an exact copy; the backward scatter-adds repeated ids and is
// checked against central differences of the float64 reference.
#include "kernels/cpu/embedding.h"

#include <gtest/gtest.h>

#include "tests/kernels/kernel_test_util.h"
#include "tests/kernels/reference.h"

namespace cf::test {
namespace {

struct EmbeddingCase {
  int64_t tokens, vocab, hidden;
  uint32_t seed;
};

// tokens > vocab forces repeated ids, whose gradients must sum.
const EmbeddingCase kEmbeddingCases[] = {
    {1, 3, 1, 1}, {17, 5, 17, 2}, {3, 1000, 8, 3}, {81, 7, 3, 4}};

TEST(Embedding, ForwardCopiesRowsExactly) {
  for (const EmbeddingCase& c : kEmbeddingCases) {
    SCOPED_TRACE(::testing::Message() << "tokens " << c.tokens << " hidden " << c.hidden);
    const auto ids = RandomInts(c.tokens, 0, int32_t(c.vocab - 1), c.seed);
    const auto table = RandomNormal(c.vocab * c.hidden, c.seed + 100);
    auto out = NaNs(c.tokens * c.hidden);
    cpu::embedding_forward(out.data(), ids.data(), table.data(), c.tokens, c.vocab, c.hidden);
    const auto ref = EmbeddingRef(ids, AsDouble(table), c.hidden);
    EXPECT_TRUE(AllClose(out, ref, Tolerance{0.0, 0.0}));
    EXPECT_TRUE(NonZeroAndFinite(out));
  }
}

TEST(Embedding, BackwardMatchesFiniteDifferencesAndAccumulates) {
  for (const EmbeddingCase& c : kEmbeddingCases) {
    SCOPED_TRACE(::testing::Message() << "tokens " << c.tokens << " hidden " << c.hidden);
    const auto ids = RandomInts(c.tokens, 0, int32_t(c.vocab - 1), c.seed);
    const auto table = RandomNormal(c.vocab * c.hidden, c.seed + 100);
    const auto dout = RandomNormal(c.tokens * c.hidden, c.seed + 200);
    const auto grad = NumericGradient(
        [&](const std::vector<double>& t) { return EmbeddingRef(ids, t, c.hidden); },
        AsDouble(table), AsDouble(dout));
    auto dtable = RandomNormal(c.vocab * c.hidden, c.seed + 300);  // accumulated onto
    const auto expected = Plus(dtable, grad);
    cpu::embedding_backward(dtable.data(), dout.data(), ids.data(), c.tokens, c.vocab, c.hidden);
    EXPECT_TRUE(AllClose(dtable, expected, kReductionTol));
    EXPECT_TRUE(NonZeroAndFinite(grad));
  }
}

}  // namespace
}  // namespace cf::test

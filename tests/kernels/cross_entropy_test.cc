// Cross-entropy: per-token scaled losses and log-sum-exp against float64, ignored targets give
// zero loss and a zero gradient row, dlogits against central differences (also in place), and
// per-chunk losses scaled by the global normaliser sum to the global mean.
#include "kernels/cpu/cross_entropy.h"

#include <gtest/gtest.h>

#include <numeric>

#include "tests/kernels/kernel_test_util.h"
#include "tests/kernels/reference.h"

namespace cf::test {
namespace {

struct CrossEntropyCase {
  int64_t tokens, vocab;
  uint32_t seed;
};

const CrossEntropyCase kCrossEntropyCases[] = {{1, 2, 1}, {17, 33, 2}, {3, 1000, 3}, {5, 17, 4}};

// Random targets in [-1, vocab): about one position in (vocab + 1) is ignored. With more than
// one token the first is always ignored and the last always a real target, so both paths run.
std::vector<int32_t> Targets(const CrossEntropyCase& c) {
  auto targets = RandomInts(c.tokens, -1, int32_t(c.vocab - 1), c.seed + 50);
  targets.back() = int32_t(c.vocab - 1);
  if (c.tokens > 1) targets.front() = cpu::kIgnoreTarget;
  return targets;
}

TEST(CrossEntropy, ForwardMatchesReference) {
  for (const CrossEntropyCase& c : kCrossEntropyCases) {
    SCOPED_TRACE(::testing::Message() << "tokens " << c.tokens << " vocab " << c.vocab);
    const auto logits = RandomNormal(c.tokens * c.vocab, c.seed, 2.0f);
    const auto targets = Targets(c);
    const float scale = 1.0f / 7.0f;
    auto losses = NaNs(c.tokens);
    auto lse = NaNs(c.tokens);
    cpu::cross_entropy_forward(losses.data(), lse.data(), logits.data(), targets.data(), c.tokens,
                               c.vocab, scale);
    std::vector<double> ref_lse;
    const auto ref = CrossEntropyRef(AsDouble(logits), targets, c.vocab, scale, &ref_lse);
    EXPECT_TRUE(AllClose(losses, ref, kReductionTol));
    EXPECT_TRUE(AllClose(lse, ref_lse, kReductionTol));
    EXPECT_TRUE(NonZeroAndFinite(lse));
    for (int64_t t = 0; t < c.tokens; ++t) {
      if (targets[t] == cpu::kIgnoreTarget) {
        EXPECT_EQ(losses[t], 0.0f) << "token " << t;
      }
    }
  }
}

TEST(CrossEntropy, BackwardMatchesFiniteDifferencesAlsoInPlace) {
  for (const CrossEntropyCase& c : kCrossEntropyCases) {
    SCOPED_TRACE(::testing::Message() << "tokens " << c.tokens << " vocab " << c.vocab);
    const auto logits = RandomNormal(c.tokens * c.vocab, c.seed, 2.0f);
    const auto targets = Targets(c);
    const float scale = 1.0f / 7.0f;
    // L = Σ_t loss_t: the weights of the numeric gradient are all 1.
    const auto grad = NumericGradient(
        [&](const std::vector<double>& z) { return CrossEntropyRef(z, targets, c.vocab, scale); },
        AsDouble(logits), std::vector<double>(c.tokens, 1.0));
    auto losses = NaNs(c.tokens);
    auto lse = NaNs(c.tokens);
    cpu::cross_entropy_forward(losses.data(), lse.data(), logits.data(), targets.data(), c.tokens,
                               c.vocab, scale);
    auto dlogits = NaNs(logits.size());  // written, not accumulated
    cpu::cross_entropy_backward(dlogits.data(), logits.data(), lse.data(), targets.data(), c.tokens,
                                c.vocab, scale);
    // dlogits = scale·(p − onehot) has elements of size ≤ scale: atol scales with it.
    EXPECT_TRUE(AllClose(dlogits, grad, Tolerance{kElementwiseTol.atol, kReductionTol.rtol}));
    EXPECT_TRUE(NonZeroAndFinite(dlogits));
    if (targets[0] == cpu::kIgnoreTarget) {
      for (int64_t v = 0; v < c.vocab; ++v) EXPECT_EQ(dlogits[v], 0.0f) << "ignored token 0";
    }
    auto in_place = logits;
    cpu::cross_entropy_backward(in_place.data(), in_place.data(), lse.data(), targets.data(),
                                c.tokens, c.vocab, scale);
    EXPECT_TRUE(BitwiseEqual(in_place, dlogits));
  }
}

// Two chunks of one global batch, each scaled by 1 / (loss tokens of the whole batch): the sum
// of their losses is the mean over the batch's loss tokens.
TEST(CrossEntropy, ChunkLossesSumToTheGlobalMean) {
  const CrossEntropyCase c{17, 33, 11};
  const auto logits = RandomNormal(c.tokens * c.vocab, c.seed, 2.0f);
  const auto targets = Targets(c);
  const auto loss_tokens = std::count_if(targets.begin(), targets.end(),
                                         [](int32_t t) { return t != cpu::kIgnoreTarget; });
  ASSERT_GT(loss_tokens, 0);
  const float scale = 1.0f / float(loss_tokens);
  const int64_t split = 6;  // chunk 1: tokens [0, 6), chunk 2: [6, 17)
  auto losses = NaNs(c.tokens);
  auto lse = NaNs(c.tokens);
  cpu::cross_entropy_forward(losses.data(), lse.data(), logits.data(), targets.data(), split,
                             c.vocab, scale);
  cpu::cross_entropy_forward(losses.data() + split, lse.data() + split,
                             logits.data() + split * c.vocab, targets.data() + split,
                             c.tokens - split, c.vocab, scale);
  const auto unscaled = CrossEntropyRef(AsDouble(logits), targets, c.vocab, 1.0);
  const double mean = std::accumulate(unscaled.begin(), unscaled.end(), 0.0) / loss_tokens;
  const double chunk_sum = std::accumulate(losses.begin(), losses.end(), 0.0);
  EXPECT_NEAR(chunk_sum, mean, kReductionTol.atol + kReductionTol.rtol * mean);
}

}  // namespace
}  // namespace cf::test

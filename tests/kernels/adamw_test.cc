// AdamW: several steps against the float64 reference (torch.optim.AdamW semantics) with and
// without weight decay, on odd sizes; an optimizer has no backward to differentiate.
#include "kernels/cpu/adamw.h"

#include <gtest/gtest.h>

#include "tests/kernels/kernel_test_util.h"
#include "tests/kernels/reference.h"

namespace cf::test {
namespace {

struct AdamWCase {
  int64_t n;
  float weight_decay;
  uint32_t seed;
};

const AdamWCase kAdamWCases[] = {{1, 0.0f, 1}, {17, 0.1f, 2}, {987, 0.01f, 3}};

TEST(AdamW, StepsMatchReference) {
  for (const AdamWCase& c : kAdamWCases) {
    SCOPED_TRACE(::testing::Message() << "n " << c.n << " wd " << c.weight_decay);
    const AdamWHyper hyper{
        .lr = 1e-2f, .beta1 = 0.9f, .beta2 = 0.95f, .eps = 1e-8f, .weight_decay = c.weight_decay};
    auto params = RandomNormal(c.n, c.seed);
    std::vector<float> m(c.n, 0.0f), v(c.n, 0.0f);
    auto params_ref = AsDouble(params);
    std::vector<double> m_ref(c.n, 0.0), v_ref(c.n, 0.0);
    for (int64_t step = 1; step <= 3; ++step) {
      const auto grads = RandomNormal(c.n, c.seed + 100 * uint32_t(step));
      cpu::adamw_step(params.data(), m.data(), v.data(), grads.data(), c.n, hyper, step);
      AdamWRef(params_ref, m_ref, v_ref, AsDouble(grads), hyper, step);
      SCOPED_TRACE(::testing::Message() << "step " << step);
      EXPECT_TRUE(AllClose(params, params_ref, kElementwiseTol));
      EXPECT_TRUE(AllClose(m, m_ref, kElementwiseTol));
      EXPECT_TRUE(AllClose(v, v_ref, kElementwiseTol));
    }
    EXPECT_TRUE(NonZeroAndFinite(m));
  }
}

// Step 1 with no decay moves every parameter by lr·g/(|g| + eps) ≈ lr·sign(g): the bias
// corrections undo the (1 − β) factors exactly as Adam intends.
TEST(AdamW, FirstStepMovesByLearningRate) {
  const AdamWHyper hyper{
      .lr = 1e-3f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 0.0f};
  const auto grads = RandomNormal(17, 5);
  std::vector<float> params(17, 1.0f), m(17, 0.0f), v(17, 0.0f);
  cpu::adamw_step(params.data(), m.data(), v.data(), grads.data(), 17, hyper, 1);
  for (int i = 0; i < 17; ++i) {
    EXPECT_NEAR(params[i], 1.0f - (grads[i] > 0 ? 1e-3f : -1e-3f), 1e-6f) << "element " << i;
  }
}

}  // namespace
}  // namespace cf::test

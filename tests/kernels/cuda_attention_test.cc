// CUDA segment-table attention against the CPU reference (forward rows, log-sum-exp, dQ and
// dK/dV for every key, prefix included) on standalone, packed, dependent and mixed tables with
// head_dim up to the 256 limit, and the dependent-split contract run entirely on the GPU.
// Skips when no CUDA device is present.
#include <gtest/gtest.h>

#include <string>

#include "kernels/cpu/attention.h"
#include "kernels/cuda/kernels.h"
#include "tests/kernels/cuda_test_util.h"

namespace cf::test {
namespace {

struct AttentionCase {
  std::string name;
  AttentionShape shape;
  std::vector<AttentionSegment> segments;
};

std::vector<AttentionCase> Cases() {
  return {
      {"one token", {1, 1, 1, 1, 1}, {{0, 1, 0, 1}}},
      {"packed 1+3+17, gqa 3:1, d 17",
       {21, 21, 3, 1, 17},
       {{0, 1, 0, 1}, {1, 3, 1, 3}, {4, 17, 4, 17}}},
      {"dependent prefix 130 + chunk 70, d 128", {70, 200, 4, 2, 128}, {{0, 70, 0, 200}}},
      {"mixed, keys elsewhere, d 33", {20, 30, 6, 2, 33}, {{0, 3, 10, 5}, {3, 17, 13, 17}}},
      {"empty segment, d 256", {9, 9, 2, 1, 256}, {{0, 4, 0, 4}, {4, 0, 4, 0}, {4, 5, 4, 5}}},
  };
}

using CudaAttention = CudaKernelTest;

TEST_F(CudaAttention, ForwardAndBackwardMatchCpu) {
  uint32_t seed = 1;
  for (const AttentionCase& c : Cases()) {
    SCOPED_TRACE(c.name);
    const AttentionShape& s = c.shape;
    const int64_t nseg = int64_t(c.segments.size());
    const auto q = RandomNormal(s.q_tokens * s.heads * s.head_dim, seed++),
               k = RandomNormal(s.kv_tokens * s.kv_heads * s.head_dim, seed++),
               v = RandomNormal(k.size(), seed++), dout = RandomNormal(q.size(), seed++);
    auto out = NaNs(q.size()), lse = NaNs(s.q_tokens * s.heads);
    auto dq = RandomNormal(q.size(), seed++), dk = RandomNormal(k.size(), seed++),
         dv = RandomNormal(v.size(), seed++);
    DeviceArray<float> d_q(q), d_k(k), d_v(v), d_dout(dout), d_out(out), d_lse(lse), d_dq(dq),
        d_dk(dk), d_dv(dv);
    cuda::attention_forward(d_out.get(), d_lse.get(), d_q.get(), d_k.get(), d_v.get(),
                            c.segments.data(), nseg, s);
    cuda::attention_backward(d_dq.get(), d_dk.get(), d_dv.get(), d_dout.get(), d_q.get(), d_k.get(),
                             d_v.get(), d_out.get(), d_lse.get(), c.segments.data(), nseg, s);
    cpu::attention_forward(out.data(), lse.data(), q.data(), k.data(), v.data(), c.segments.data(),
                           nseg, s);
    cpu::attention_backward(dq.data(), dk.data(), dv.data(), dout.data(), q.data(), k.data(),
                            v.data(), out.data(), lse.data(), c.segments.data(), nseg, s);
    EXPECT_TRUE(AllClose(d_out.ToHost(), AsDouble(out), Twice(kReductionTol)));
    EXPECT_TRUE(AllClose(d_lse.ToHost(), AsDouble(lse), Twice(kReductionTol)));
    EXPECT_TRUE(AllClose(d_dq.ToHost(), AsDouble(dq), Twice(kBackwardTol)));
    EXPECT_TRUE(AllClose(d_dk.ToHost(), AsDouble(dk), Twice(kBackwardTol)));
    EXPECT_TRUE(AllClose(d_dv.ToHost(), AsDouble(dv), Twice(kBackwardTol)));
    EXPECT_TRUE(NonZeroAndFinite(out));
  }
}

// Chunks [0, 64), [64, 128), [128, 150) of one sequence: forwards in order against the growing
// K/V prefix, backwards last to first into one dK/dV, all on the GPU, against the whole
// sequence at once on the GPU. Same contract as attention_chunking_test.cc.
TEST_F(CudaAttention, DependentSplitMatchesWholeSequence) {
  const int64_t n = 150, a = 6, g = 2, d = 64, qw = a * d, kw = g * d;
  const std::vector<int64_t> begins = {0, 64, 128, 150};
  const auto q = RandomNormal(n * qw, 1), k = RandomNormal(n * kw, 2), v = RandomNormal(n * kw, 3),
             dout = RandomNormal(n * qw, 4);
  const std::vector<float> zeros_q(n * qw, 0.0f), zeros_kv(n * kw, 0.0f);
  DeviceArray<float> d_q(q), d_k(k), d_v(v), d_dout(dout);
  DeviceArray<float> whole_out(NaNs(n * qw)), whole_lse(NaNs(n * a)), whole_dq(zeros_q),
      whole_dk(zeros_kv), whole_dv(zeros_kv);
  const AttentionSegment whole_seg{0, n, 0, n};
  const AttentionShape whole_shape{n, n, a, g, d};
  cuda::attention_forward(whole_out.get(), whole_lse.get(), d_q.get(), d_k.get(), d_v.get(),
                          &whole_seg, 1, whole_shape);
  cuda::attention_backward(whole_dq.get(), whole_dk.get(), whole_dv.get(), d_dout.get(), d_q.get(),
                           d_k.get(), d_v.get(), whole_out.get(), whole_lse.get(), &whole_seg, 1,
                           whole_shape);

  DeviceArray<float> out(NaNs(n * qw)), lse(NaNs(n * a)), dq(zeros_q), dk(zeros_kv), dv(zeros_kv);
  auto chunk = [&](size_t j, bool forward) {
    const int64_t b = begins[j], e = begins[j + 1];
    const AttentionSegment seg{0, e - b, 0, e};  // keys: the prefix [0, b) and the chunk itself
    const AttentionShape shape{e - b, e, a, g, d};
    if (forward) {
      cuda::attention_forward(out.get() + b * qw, lse.get() + b * a, d_q.get() + b * qw, d_k.get(),
                              d_v.get(), &seg, 1, shape);
    } else {
      cuda::attention_backward(dq.get() + b * qw, dk.get(), dv.get(), d_dout.get() + b * qw,
                               d_q.get() + b * qw, d_k.get(), d_v.get(), out.get() + b * qw,
                               lse.get() + b * a, &seg, 1, shape);
    }
  };
  for (size_t j = 0; j + 1 < begins.size(); ++j) chunk(j, /*forward=*/true);
  for (size_t j = begins.size() - 1; j-- > 0;) chunk(j, /*forward=*/false);
  const Tolerance contract{1e-5, 1e-5};  // DESIGN.md §4.7
  EXPECT_TRUE(AllClose(out.ToHost(), AsDouble(whole_out.ToHost()), contract));
  EXPECT_TRUE(AllClose(lse.ToHost(), AsDouble(whole_lse.ToHost()), contract));
  EXPECT_TRUE(AllClose(dq.ToHost(), AsDouble(whole_dq.ToHost()), contract));
  EXPECT_TRUE(AllClose(dk.ToHost(), AsDouble(whole_dk.ToHost()), contract));
  EXPECT_TRUE(AllClose(dv.ToHost(), AsDouble(whole_dv.ToHost()), contract));
  EXPECT_TRUE(NonZeroAndFinite(whole_dk.ToHost()));
}

}  // namespace
}  // namespace cf::test

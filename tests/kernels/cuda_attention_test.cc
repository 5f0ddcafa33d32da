// CUDA segment-table attention against the CPU reference (forward rows, log-sum-exp, dQ and
// dK/dV for every key, prefix included) on standalone, packed, dependent and mixed tables, in
// both math modes: kFp32 (CUDA cores) at fp32 tolerances, kBf16 (tensor cores; CUDA cores for
// head dims that are not multiples of 16) at the bf16 tolerances of cuda_test_util.h, and the
// dependent-split contract run entirely on the GPU in each. Skips when no CUDA device is present.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "kernels/cpu/attention.h"
#include "kernels/cuda/kernels.h"
#include "tests/kernels/cuda_test_util.h"

namespace cf::test {
namespace {

struct AttentionCase {
  std::string name;
  AttentionShape shape;                    // {q_tokens, kv_tokens, heads, kv_heads, head_dim}
  std::vector<AttentionSegment> segments;  // {q_begin, q_len, kv_begin, kv_len}
};

std::vector<AttentionCase> Fp32Cases() {
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

// The tensor-core path: 1, 17, 70 and 130 query rows (partial 64-row tiles), query tiles that
// span several packed segments, dependent prefixes (kv_len > q_len) short and long, GQA 8:1,
// 3:1 and 2:1, an empty segment, keys no query sees (a key tile every row skips), head_dim 16,
// 64, 128, 256.
std::vector<AttentionCase> Bf16Cases() {
  return {
      {"one token, d 64", {1, 1, 1, 1, 64}, {{0, 1, 0, 1}}},
      {"17 tokens causal, gqa 8:1, d 64", {17, 17, 8, 1, 64}, {{0, 17, 0, 17}}},
      {"130 tokens causal, gqa 3:1, d 128", {130, 130, 6, 2, 128}, {{0, 130, 0, 130}}},
      {"packed 1+3+17+109, gqa 8:1, d 128",
       {130, 130, 8, 1, 128},
       {{0, 1, 0, 1}, {1, 3, 1, 3}, {4, 17, 4, 17}, {21, 109, 21, 109}}},
      // Dependent chunks whose prefix puts a query row at the end of a 64-row query tile that
      // sees exactly one key of a key tile: rows 63 and 127 see only the first key of the
      // backward's 32-key tiles at 96 and 160 (d 128), of its 64-key tiles at 64 and 128 (d 64).
      {"dependent prefix 33 + chunk 130, gqa 8:1, d 128",
       {130, 163, 8, 1, 128},
       {{0, 130, 0, 163}}},
      {"dependent prefix 1 + chunk 130, gqa 3:1, d 64", {130, 131, 3, 1, 64}, {{0, 130, 0, 131}}},
      {"dependent prefix 200 + chunk 70, gqa 2:1, d 128", {70, 270, 4, 2, 128}, {{0, 70, 0, 270}}},
      // Two dependent pieces packed with an empty segment between them; keys [100, 250) belong
      // to no segment, so their dK/dV keep their bits and the key tile at 128 is skipped.
      {"packed dependent pieces, empty segment, unused keys, gqa 3:1, d 64",
       {70, 400, 3, 1, 64},
       {{0, 30, 0, 100}, {30, 0, 100, 0}, {30, 40, 250, 150}}},
      {"mixed, keys elsewhere, d 16", {20, 30, 6, 2, 16}, {{0, 3, 10, 5}, {3, 17, 13, 17}}},
      {"packed 64+6, gqa 2:1, d 256", {70, 70, 4, 2, 256}, {{0, 64, 0, 64}, {64, 6, 64, 6}}},
  };
}

struct AttentionInputs {
  std::vector<float> q, k, v, dout;
  std::vector<float> dq, dk, dv;  // the accumulators' initial contents
};

// Seeded N(0, 1) inputs, a different seed per operand; bf16_exact rounds q, k, v and dout to
// bf16 values.
AttentionInputs MakeInputs(const AttentionShape& s, uint32_t seed, bool bf16_exact) {
  AttentionInputs in;
  const size_t q_size = s.q_tokens * s.heads * s.head_dim;
  const size_t kv_size = s.kv_tokens * s.kv_heads * s.head_dim;
  in.q = RandomNormal(q_size, seed);
  in.k = RandomNormal(kv_size, seed + 1);
  in.v = RandomNormal(kv_size, seed + 2);
  in.dout = RandomNormal(q_size, seed + 3);
  if (bf16_exact) {
    for (auto* x : {&in.q, &in.k, &in.v, &in.dout}) *x = RoundToBf16(*x);
  }
  in.dq = RandomNormal(q_size, seed + 4);
  in.dk = RandomNormal(kv_size, seed + 5);
  in.dv = RandomNormal(kv_size, seed + 6);
  return in;
}

struct AttentionResults {
  std::vector<float> out, lse, dq, dk, dv;
};

// The forward into NaN-filled out and lse, then the backward (fed this forward's out and lse,
// as the executor does) adding into the initial dq, dk, dv; on the GPU in the calling thread's
// math mode.
AttentionResults RunGpu(const AttentionCase& c, const AttentionInputs& in) {
  const AttentionShape& s = c.shape;
  const int64_t nseg = int64_t(c.segments.size());
  DeviceArray<float> q(in.q), k(in.k), v(in.v), dout(in.dout), out(NaNs(in.q.size())),
      lse(NaNs(s.q_tokens * s.heads)), dq(in.dq), dk(in.dk), dv(in.dv);
  cuda::attention_forward(out.get(), lse.get(), q.get(), k.get(), v.get(), c.segments.data(), nseg,
                          s);
  cuda::attention_backward(dq.get(), dk.get(), dv.get(), dout.get(), q.get(), k.get(), v.get(),
                           out.get(), lse.get(), c.segments.data(), nseg, s);
  return {out.ToHost(), lse.ToHost(), dq.ToHost(), dk.ToHost(), dv.ToHost()};
}

AttentionResults RunCpu(const AttentionCase& c, const AttentionInputs& in) {
  const AttentionShape& s = c.shape;
  const int64_t nseg = int64_t(c.segments.size());
  AttentionResults r{NaNs(in.q.size()), NaNs(s.q_tokens * s.heads), in.dq, in.dk, in.dv};
  cpu::attention_forward(r.out.data(), r.lse.data(), in.q.data(), in.k.data(), in.v.data(),
                         c.segments.data(), nseg, s);
  cpu::attention_backward(r.dq.data(), r.dk.data(), r.dv.data(), in.dout.data(), in.q.data(),
                          in.k.data(), in.v.data(), r.out.data(), r.lse.data(), c.segments.data(),
                          nseg, s);
  return r;
}

// dK and dV rows of keys that no segment with queries reads keep their initial bits.
::testing::AssertionResult UnreadKeysUntouched(const AttentionCase& c, const AttentionInputs& in,
                                               const AttentionResults& got) {
  const AttentionShape& s = c.shape;
  std::vector<bool> read(s.kv_tokens, false);
  for (const AttentionSegment& seg : c.segments) {
    if (seg.q_len == 0) continue;
    for (int64_t j = seg.kv_begin; j < seg.kv_begin + seg.kv_len; ++j) read[j] = true;
  }
  const int64_t width = s.kv_heads * s.head_dim;
  for (int64_t j = 0; j < s.kv_tokens; ++j) {
    if (read[j]) continue;
    for (int64_t x = j * width; x < (j + 1) * width; ++x) {
      if (!(got.dk[x] == in.dk[x]) || !(got.dv[x] == in.dv[x])) {
        return ::testing::AssertionFailure()
               << "key " << j << " is read by no query, but its dK/dV "
               << "element " << x << " changed";
      }
    }
  }
  return ::testing::AssertionSuccess();
}

void ExpectFp32Close(const AttentionResults& got, const AttentionResults& ref) {
  EXPECT_TRUE(AllClose(got.out, AsDouble(ref.out), Twice(kReductionTol)));
  EXPECT_TRUE(AllClose(got.lse, AsDouble(ref.lse), Twice(kReductionTol)));
  EXPECT_TRUE(AllClose(got.dq, AsDouble(ref.dq), Twice(kBackwardTol)));
  EXPECT_TRUE(AllClose(got.dk, AsDouble(ref.dk), Twice(kBackwardTol)));
  EXPECT_TRUE(AllClose(got.dv, AsDouble(ref.dv), Twice(kBackwardTol)));
  EXPECT_TRUE(NonZeroAndFinite(got.out));
}

using CudaAttention = CudaKernelTest;

TEST_F(CudaAttention, ForwardAndBackwardMatchCpu) {
  const MathScope fp32(cuda::Math::kFp32);
  uint32_t seed = 1;
  for (const AttentionCase& c : Fp32Cases()) {
    SCOPED_TRACE(c.name);
    const AttentionInputs in = MakeInputs(c.shape, seed, /*bf16_exact=*/false);
    seed += 7;
    ExpectFp32Close(RunGpu(c, in), RunCpu(c, in));
  }
}

// kFp32 after the thread has run in kBf16 (the math mode is per call, not sticky): still fp32.
TEST_F(CudaAttention, Fp32AfterBf16MatchesCpu) {
  const AttentionCase c = Bf16Cases()[3];
  const AttentionInputs in = MakeInputs(c.shape, 11, /*bf16_exact=*/false);
  {
    const MathScope bf16(cuda::Math::kBf16);
    RunGpu(c, in);
  }
  const MathScope fp32(cuda::Math::kFp32);
  ExpectFp32Close(RunGpu(c, in), RunCpu(c, in));
}

TEST_F(CudaAttention, Bf16MatchesCpuWithinBf16Tolerance) {
  const MathScope bf16(cuda::Math::kBf16);
  for (const uint32_t first_seed : {1u, 1001u, 2001u}) {
    uint32_t seed = first_seed;
    for (const AttentionCase& c : Bf16Cases()) {
      SCOPED_TRACE(::testing::Message() << c.name << ", seed " << seed);
      const AttentionInputs in = MakeInputs(c.shape, seed, /*bf16_exact=*/false);
      seed += 7;
      const AttentionResults got = RunGpu(c, in), ref = RunCpu(c, in);
      EXPECT_TRUE(AllClose(got.out, AsDouble(ref.out), kBf16AttentionOutTol));
      EXPECT_TRUE(AllClose(got.lse, AsDouble(ref.lse), kBf16AttentionLseTol));
      EXPECT_TRUE(AllClose(got.dq, AsDouble(ref.dq), kBf16AttentionGradTol));
      EXPECT_TRUE(AllClose(got.dk, AsDouble(ref.dk), kBf16AttentionGradTol));
      EXPECT_TRUE(AllClose(got.dv, AsDouble(ref.dv), kBf16AttentionGradTol));
      EXPECT_TRUE(NonZeroAndFinite(got.out));
      EXPECT_TRUE(UnreadKeysUntouched(c, in, got));
    }
  }
}

// Inputs that are bf16 values make every score product exact, so the tensor-core scores and
// log-sum-exp match fp32 to the reduction tolerance (only fp32 accumulation order differs).
// That is the sharp test of masking and tiling: a masked key let in, or a visible key left out,
// moves a row's lse by about that key's probability, ≥ 1e-4 here against an allowance of 2e-5
// (the bf16-tolerance test above could miss one such key in a long row).
TEST_F(CudaAttention, Bf16ExactInputsGiveFp32LogSumExp) {
  const MathScope bf16(cuda::Math::kBf16);
  uint32_t seed = 3001;
  for (const AttentionCase& c : Bf16Cases()) {
    SCOPED_TRACE(c.name);
    const AttentionInputs in = MakeInputs(c.shape, seed, /*bf16_exact=*/true);
    seed += 7;
    const AttentionResults got = RunGpu(c, in), ref = RunCpu(c, in);
    EXPECT_TRUE(AllClose(got.lse, AsDouble(ref.lse), Twice(kReductionTol)));
    EXPECT_TRUE(AllClose(got.out, AsDouble(ref.out), kBf16AttentionOutTol));
  }
}

// Head dims the tensor-core path does not take (not multiples of 16) run on the CUDA cores in
// kBf16 too, hence at fp32 tolerances.
TEST_F(CudaAttention, Bf16FallbackHeadDimsAreFp32) {
  const MathScope bf16(cuda::Math::kBf16);
  const std::vector<AttentionCase> cases = {
      {"packed 1+3+17+109, gqa 8:1, d 40",
       {130, 130, 8, 1, 40},
       {{0, 1, 0, 1}, {1, 3, 1, 3}, {4, 17, 4, 17}, {21, 109, 21, 109}}},
      {"dependent prefix 30 + chunk 17, gqa 3:1, d 17", {17, 47, 3, 1, 17}, {{0, 17, 0, 47}}},
  };
  uint32_t seed = 4001;
  for (const AttentionCase& c : cases) {
    SCOPED_TRACE(c.name);
    const AttentionInputs in = MakeInputs(c.shape, seed, /*bf16_exact=*/false);
    seed += 7;
    ExpectFp32Close(RunGpu(c, in), RunCpu(c, in));
  }
}

// Chunks [0, 64), [64, 128), [128, 150) of one sequence: forwards in order against the growing
// K/V prefix, backwards last to first into one dK/dV, all on the GPU, against the whole
// sequence at once on the GPU. Same contract as attention_chunking_test.cc, in each math mode:
// in kBf16 the chunked and whole runs round the same scores, probabilities and dS alike (the
// chunk borders fall on the 64-row query tiles and the key tiles start at key 0 either way), so
// only fp32 summation order differs and the fp32 contract tolerance holds.
void CheckDependentSplit(cuda::Math math) {
  const MathScope scope(math);
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

TEST_F(CudaAttention, DependentSplitMatchesWholeSequence) {
  CheckDependentSplit(cuda::Math::kFp32);
}

TEST_F(CudaAttention, Bf16DependentSplitMatchesWholeSequence) {
  CheckDependentSplit(cuda::Math::kBf16);
}

}  // namespace
}  // namespace cf::test

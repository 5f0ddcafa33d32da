// Every CUDA kernel but attention (cuda_attention_test.cc) against its CPU reference on the same
// inputs, as llm.c's test_gpt2.cu does: forward outputs, and backward gradients accumulated onto
// the same random buffers. Skips when no CUDA device is present.
#include <gtest/gtest.h>

#include "kernels/cpu/kernels.h"
#include "kernels/cuda/kernels.h"
#include "tests/kernels/cuda_test_util.h"

namespace cf::test {
namespace {

using CudaKernels = CudaKernelTest;

TEST_F(CudaKernels, EmbeddingMatchesCpu) {
  const int64_t tokens = 81, vocab = 17, hidden = 33;
  const auto ids = RandomInts(tokens, 0, vocab - 1, 1);
  const auto table = RandomNormal(vocab * hidden, 2), dout = RandomNormal(tokens * hidden, 3);
  auto out = NaNs(tokens * hidden), dtable = RandomNormal(vocab * hidden, 4);
  DeviceArray<int32_t> d_ids(ids);
  DeviceArray<float> d_table(table), d_dout(dout), d_out(out), d_dtable(dtable);
  cuda::embedding_forward(d_out.get(), d_ids.get(), d_table.get(), tokens, vocab, hidden);
  cuda::embedding_backward(d_dtable.get(), d_dout.get(), d_ids.get(), tokens, vocab, hidden);
  cpu::embedding_forward(out.data(), ids.data(), table.data(), tokens, vocab, hidden);
  cpu::embedding_backward(dtable.data(), dout.data(), ids.data(), tokens, vocab, hidden);
  EXPECT_TRUE(BitwiseEqual(d_out.ToHost(), out));
  EXPECT_TRUE(AllClose(d_dtable.ToHost(), AsDouble(dtable), Twice(kReductionTol)));
  EXPECT_TRUE(NonZeroAndFinite(out));
}

TEST_F(CudaKernels, RmsNormMatchesCpu) {
  for (const int64_t hidden : {1, 17, 1025}) {
    SCOPED_TRACE(::testing::Message() << "hidden " << hidden);
    const int64_t tokens = 17;
    const float eps = 1e-6f;
    const auto x = RandomNormal(tokens * hidden, 1), w = RandomNormal(hidden, 2),
               dout = RandomNormal(tokens * hidden, 3);
    auto out = NaNs(x.size()), rstd = NaNs(tokens), dx = RandomNormal(x.size(), 4),
         dw = RandomNormal(hidden, 5);
    DeviceArray<float> d_x(x), d_w(w), d_dout(dout), d_out(out), d_rstd(rstd), d_dx(dx), d_dw(dw);
    cuda::rmsnorm_forward(d_out.get(), d_rstd.get(), d_x.get(), d_w.get(), tokens, hidden, eps);
    cuda::rmsnorm_backward(d_dx.get(), d_dw.get(), d_dout.get(), d_x.get(), d_w.get(), d_rstd.get(),
                           tokens, hidden);
    cpu::rmsnorm_forward(out.data(), rstd.data(), x.data(), w.data(), tokens, hidden, eps);
    cpu::rmsnorm_backward(dx.data(), dw.data(), dout.data(), x.data(), w.data(), rstd.data(),
                          tokens, hidden);
    EXPECT_TRUE(AllClose(d_out.ToHost(), AsDouble(out), Twice(kReductionTol)));
    EXPECT_TRUE(AllClose(d_rstd.ToHost(), AsDouble(rstd), Twice(kReductionTol)));
    EXPECT_TRUE(AllClose(d_dx.ToHost(), AsDouble(dx), Twice(kBackwardTol)));
    EXPECT_TRUE(AllClose(d_dw.ToHost(), AsDouble(dw), Twice(kBackwardTol)));
  }
}

TEST_F(CudaKernels, RopeMatchesCpu) {
  const int64_t tokens = 17, heads = 3, head_dim = 128;
  const double theta = 1e6;
  const auto x = RandomNormal(tokens * heads * head_dim, 1), dout = RandomNormal(x.size(), 2);
  const auto positions = RandomInts(tokens, 0, 262143, 3);
  auto out = NaNs(x.size()), dx = RandomNormal(x.size(), 4);
  DeviceArray<int32_t> d_pos(positions);
  DeviceArray<float> d_x(x), d_dout(dout), d_out(out), d_dx(dx);
  cuda::rope_forward(d_out.get(), d_x.get(), d_pos.get(), tokens, heads, head_dim, theta);
  cuda::rope_backward(d_dx.get(), d_dout.get(), d_pos.get(), tokens, heads, head_dim, theta);
  cpu::rope_forward(out.data(), x.data(), positions.data(), tokens, heads, head_dim, theta);
  cpu::rope_backward(dx.data(), dout.data(), positions.data(), tokens, heads, head_dim, theta);
  // Angles in double on both sides: only cos/sin's last double bits may differ.
  EXPECT_TRUE(AllClose(d_out.ToHost(), AsDouble(out), kElementwiseTol));
  EXPECT_TRUE(AllClose(d_dx.ToHost(), AsDouble(dx), kElementwiseTol));
}

TEST_F(CudaKernels, SwigluMatchesCpu) {
  const int64_t n = 987;
  const auto gate = RandomNormal(n, 1, 3.0f), up = RandomNormal(n, 2), dout = RandomNormal(n, 3);
  auto out = NaNs(n), dgate = RandomNormal(n, 4), dup = RandomNormal(n, 5);
  DeviceArray<float> d_gate(gate), d_up(up), d_dout(dout), d_out(out), d_dgate(dgate), d_dup(dup);
  cuda::swiglu_forward(d_out.get(), d_gate.get(), d_up.get(), n);
  cuda::swiglu_backward(d_dgate.get(), d_dup.get(), d_dout.get(), d_gate.get(), d_up.get(), n);
  cpu::swiglu_forward(out.data(), gate.data(), up.data(), n);
  cpu::swiglu_backward(dgate.data(), dup.data(), dout.data(), gate.data(), up.data(), n);
  EXPECT_TRUE(AllClose(d_out.ToHost(), AsDouble(out), Twice(kElementwiseTol)));
  EXPECT_TRUE(AllClose(d_dgate.ToHost(), AsDouble(dgate), Twice(kElementwiseTol)));
  EXPECT_TRUE(AllClose(d_dup.ToHost(), AsDouble(dup), Twice(kElementwiseTol)));
}

// One correctly rounded fp32 add per element on both sides: the same bits, on odd sizes.
TEST_F(CudaKernels, ResidualAddMatchesCpu) {
  for (const int64_t n : {1, 17, 987}) {
    SCOPED_TRACE(::testing::Message() << "n " << n);
    const auto x = RandomNormal(n, 1 + uint32_t(n));
    auto y = RandomNormal(n, 2 + uint32_t(n), 3.0f);
    DeviceArray<float> d_x(x), d_y(y);
    cuda::residual_add(d_y.get(), d_x.get(), n);
    cpu::residual_add(y.data(), x.data(), n);
    EXPECT_TRUE(BitwiseEqual(d_y.ToHost(), y));
    EXPECT_TRUE(NonZeroAndFinite(y));
  }
}

// Integer inputs make every GEMM exact in fp32 on both sides: x in ±3000, the rest in ±2, so
// every partial sum stays below 2^24. TF32 would round x to 11 significant bits (no odd integer
// above 2048 survives) and fail it. Random inputs check the rest.
TEST_F(CudaKernels, LinearMatchesCpu) {
  const MathScope fp32(cuda::Math::kFp32);
  const int64_t tokens = 17, in = 33, out_features = 9;
  for (const bool integers : {true, false}) {
    SCOPED_TRACE(integers ? "small integers" : "random normal");
    auto make = [&](size_t n, uint32_t seed, int32_t range = 2) {
      if (!integers) return RandomNormal(n, seed);
      const auto ints = RandomInts(n, -range, range, seed);
      return std::vector<float>(ints.begin(), ints.end());
    };
    const auto x = make(tokens * in, 1, 3000), w = make(out_features * in, 2),
               b = make(out_features, 3), dy = make(tokens * out_features, 4);
    auto y = NaNs(tokens * out_features), dx = make(x.size(), 5), dw = make(w.size(), 6),
         db = make(b.size(), 7);
    DeviceArray<float> d_x(x), d_w(w), d_b(b), d_dy(dy), d_y(y), d_dx(dx), d_dw(dw), d_db(db);
    cuda::linear_forward(d_y.get(), d_x.get(), d_w.get(), d_b.get(), tokens, in, out_features);
    cuda::linear_backward(d_dx.get(), d_dw.get(), d_db.get(), d_dy.get(), d_x.get(), d_w.get(),
                          tokens, in, out_features);
    cpu::linear_forward(y.data(), x.data(), w.data(), b.data(), tokens, in, out_features);
    cpu::linear_backward(dx.data(), dw.data(), db.data(), dy.data(), x.data(), w.data(), tokens, in,
                         out_features);
    const Tolerance tol = integers ? Tolerance{0.0, 0.0} : Twice(kReductionTol);
    EXPECT_TRUE(AllClose(d_y.ToHost(), AsDouble(y), tol));
    EXPECT_TRUE(AllClose(d_dx.ToHost(), AsDouble(dx), tol));
    EXPECT_TRUE(AllClose(d_dw.ToHost(), AsDouble(dw), tol));
    EXPECT_TRUE(AllClose(d_db.ToHost(), AsDouble(db), tol));
    EXPECT_TRUE(NonZeroAndFinite(y));
  }
}

// Inputs of the linear tests: seeded N(0, 1), or integers — x in ±x_range, the rest in ±2.
std::vector<float> LinearInput(size_t n, uint32_t seed, bool integers, int32_t range) {
  if (!integers) return RandomNormal(n, seed);
  const auto ints = RandomInts(n, -range, range, seed);
  return std::vector<float>(ints.begin(), ints.end());
}

struct LinearOutputs {
  std::vector<float> y, dx, dw, db;
};

// Linear forward (y NaN-filled first) and backward (dx, dW, db added onto initial contents) on
// the GPU, in the calling thread's math mode, and on the CPU, from the same inputs.
void RunLinear(int64_t tokens, int64_t in, int64_t out_features, bool integers, int32_t x_range,
               LinearOutputs& gpu, LinearOutputs& cpu) {
  auto make = [&](size_t n, uint32_t seed, int32_t range = 2) {
    return LinearInput(n, seed, integers, range);
  };
  const auto x = make(tokens * in, 1, x_range), w = make(out_features * in, 2),
             b = make(out_features, 3), dy = make(tokens * out_features, 4);
  const LinearOutputs init{NaNs(tokens * out_features), make(x.size(), 5), make(w.size(), 6),
                           make(b.size(), 7)};
  DeviceArray<float> d_x(x), d_w(w), d_b(b), d_dy(dy), d_y(init.y), d_dx(init.dx), d_dw(init.dw),
      d_db(init.db);
  cuda::linear_forward(d_y.get(), d_x.get(), d_w.get(), d_b.get(), tokens, in, out_features);
  cuda::linear_backward(d_dx.get(), d_dw.get(), d_db.get(), d_dy.get(), d_x.get(), d_w.get(),
                        tokens, in, out_features);
  gpu = {d_y.ToHost(), d_dx.ToHost(), d_dw.ToHost(), d_db.ToHost()};
  cpu = init;
  cpu::linear_forward(cpu.y.data(), x.data(), w.data(), b.data(), tokens, in, out_features);
  cpu::linear_backward(cpu.dx.data(), cpu.dw.data(), cpu.db.data(), dy.data(), x.data(), w.data(),
                       tokens, in, out_features);
}

void ExpectLinearExact(const LinearOutputs& gpu, const LinearOutputs& cpu) {
  const Tolerance exact{0.0, 0.0};
  EXPECT_TRUE(AllClose(gpu.y, AsDouble(cpu.y), exact));
  EXPECT_TRUE(AllClose(gpu.dx, AsDouble(cpu.dx), exact));
  EXPECT_TRUE(AllClose(gpu.dw, AsDouble(cpu.dw), exact));
  EXPECT_TRUE(AllClose(gpu.db, AsDouble(cpu.db), exact));
  EXPECT_TRUE(NonZeroAndFinite(gpu.y));
}

// (in_features, out_features) of the linear tests: odd sizes, and multiples of 8 (the sizes
// cuBLAS runs on tensor cores).
constexpr std::pair<int64_t, int64_t> kLinearFeatures[] = {{33, 9}, {136, 72}};

// kBf16 with operands that are bf16 values — integers of at most 8 significant bits (x in
// ±200, the rest in ±2) — rounds nothing, and every partial sum is an integer below 2^24: the
// tensor-core GEMMs must give the fp32 reference bit for bit, which pins down their transposes
// and leading dimensions.
TEST_F(CudaKernels, LinearBf16SmallIntegersAreExact) {
  const MathScope bf16(cuda::Math::kBf16);
  for (const int64_t tokens : {1, 17, 130}) {
    for (const auto& [in, out_features] : kLinearFeatures) {
      SCOPED_TRACE(::testing::Message() << tokens << " tokens, " << in << " → " << out_features);
      LinearOutputs gpu, cpu;
      RunLinear(tokens, in, out_features, /*integers=*/true, /*x_range=*/200, gpu, cpu);
      ExpectLinearExact(gpu, cpu);
    }
  }
}

// kBf16 on N(0, 1) inputs: each product is a dot product of length in (y), out (dx) or tokens
// (dW); db is an fp32 sum on both sides.
TEST_F(CudaKernels, LinearBf16MatchesCpuWithinBf16Tolerance) {
  const MathScope bf16(cuda::Math::kBf16);
  for (const int64_t tokens : {1, 17, 130}) {
    for (const auto& [in, out_features] : kLinearFeatures) {
      SCOPED_TRACE(::testing::Message() << tokens << " tokens, " << in << " → " << out_features);
      LinearOutputs gpu, cpu;
      RunLinear(tokens, in, out_features, /*integers=*/false, 0, gpu, cpu);
      EXPECT_TRUE(AllClose(gpu.y, AsDouble(cpu.y), Bf16DotTol(in)));
      EXPECT_TRUE(AllClose(gpu.dx, AsDouble(cpu.dx), Bf16DotTol(out_features)));
      EXPECT_TRUE(AllClose(gpu.dw, AsDouble(cpu.dw), Bf16DotTol(tokens)));
      EXPECT_TRUE(AllClose(gpu.db, AsDouble(cpu.db), Twice(kReductionTol)));
      EXPECT_TRUE(NonZeroAndFinite(gpu.y));
    }
  }
}

// Guards the test above against passing because kBf16 silently computed in fp32: on a GEMM the
// size of a small layer (256 tokens, 512 → 256), bf16 operands must change some output bits.
TEST_F(CudaKernels, LinearBf16RoundsOperands) {
  const int64_t tokens = 256, in = 512, out_features = 256;
  const auto x = RandomNormal(tokens * in, 1), w = RandomNormal(out_features * in, 2);
  DeviceArray<float> d_x(x), d_w(w), y_fp32(NaNs(tokens * out_features)),
      y_bf16(NaNs(tokens * out_features));
  {
    const MathScope fp32(cuda::Math::kFp32);
    cuda::linear_forward(y_fp32.get(), d_x.get(), d_w.get(), nullptr, tokens, in, out_features);
  }
  {
    const MathScope bf16(cuda::Math::kBf16);
    cuda::linear_forward(y_bf16.get(), d_x.get(), d_w.get(), nullptr, tokens, in, out_features);
  }
  const auto a = y_fp32.ToHost(), b = y_bf16.ToHost();
  size_t differ = 0;
  for (size_t i = 0; i < a.size(); ++i) differ += a[i] != b[i];
  EXPECT_GT(differ, a.size() / 2) << "kBf16 left " << a.size() - differ << " of " << a.size()
                                  << " outputs bit-identical to kFp32";
  EXPECT_TRUE(AllClose(b, AsDouble(a), Bf16DotTol(in)));
}

// The math mode is set on every GEMM: kFp32 after kBf16 on the same thread (same cuBLAS
// handle) is plain fp32 again. x in ±3000 has odd integers above 2^8 (and 2^11): bf16 or TF32
// operands would round them and miss the exact result.
TEST_F(CudaKernels, LinearFp32AfterBf16IsExact) {
  const int64_t tokens = 17, in = 33, out_features = 9;
  LinearOutputs gpu, cpu;
  {
    const MathScope bf16(cuda::Math::kBf16);
    RunLinear(tokens, in, out_features, /*integers=*/false, 0, gpu, cpu);
  }
  const MathScope fp32(cuda::Math::kFp32);
  RunLinear(tokens, in, out_features, /*integers=*/true, /*x_range=*/3000, gpu, cpu);
  ExpectLinearExact(gpu, cpu);
}

// The bias gradient over many tokens: 8193 rows make 33 token blocks (and 37 columns two
// column blocks, the second partial), whose sums meet in atomicAdd. Integer inputs keep every
// partial sum exact, so the order of those adds cannot change a bit.
TEST_F(CudaKernels, LinearBiasGradientOverManyTokensIsExact) {
  const int64_t tokens = 8193, in = 3, out_features = 37;
  const auto dy = LinearInput(tokens * out_features, 1, true, 2),
             x = LinearInput(tokens * in, 2, true, 2),
             w = LinearInput(out_features * in, 3, true, 2);
  auto db = LinearInput(out_features, 4, true, 100);
  DeviceArray<float> d_dy(dy), d_x(x), d_w(w), d_db(db);
  cuda::linear_backward(nullptr, nullptr, d_db.get(), d_dy.get(), d_x.get(), d_w.get(), tokens, in,
                        out_features);
  cpu::linear_backward(nullptr, nullptr, db.data(), dy.data(), x.data(), w.data(), tokens, in,
                       out_features);
  EXPECT_TRUE(BitwiseEqual(d_db.ToHost(), db));
  EXPECT_TRUE(NonZeroAndFinite(db));
}

TEST_F(CudaKernels, CrossEntropyMatchesCpu) {
  const int64_t tokens = 17, vocab = 1001;
  const float scale = 1.0f / 13.0f;
  const auto logits = RandomNormal(tokens * vocab, 1, 2.0f);
  auto targets = RandomInts(tokens, -1, vocab - 1, 2);
  targets[0] = cpu::kIgnoreTarget;
  targets[1] = int32_t(vocab - 1);
  auto losses = NaNs(tokens), lse = NaNs(tokens), dlogits = NaNs(logits.size());
  DeviceArray<int32_t> d_targets(targets);
  DeviceArray<float> d_logits(logits), d_losses(losses), d_lse(lse), d_dlogits(dlogits);
  cuda::cross_entropy_forward(d_losses.get(), d_lse.get(), d_logits.get(), d_targets.get(), tokens,
                              vocab, scale);
  cuda::cross_entropy_backward(d_dlogits.get(), d_logits.get(), d_lse.get(), d_targets.get(),
                               tokens, vocab, scale);
  cpu::cross_entropy_forward(losses.data(), lse.data(), logits.data(), targets.data(), tokens,
                             vocab, scale);
  cpu::cross_entropy_backward(dlogits.data(), logits.data(), lse.data(), targets.data(), tokens,
                              vocab, scale);
  EXPECT_TRUE(AllClose(d_losses.ToHost(), AsDouble(losses), Twice(kReductionTol)));
  EXPECT_TRUE(AllClose(d_lse.ToHost(), AsDouble(lse), Twice(kReductionTol)));
  EXPECT_TRUE(AllClose(d_dlogits.ToHost(), AsDouble(dlogits),
                       Tolerance{2 * kElementwiseTol.atol, 2 * kReductionTol.rtol}));
  EXPECT_TRUE(NonZeroAndFinite(dlogits));
}

TEST_F(CudaKernels, AdamWMatchesCpu) {
  const int64_t n = 987;
  const AdamWHyper hyper{
      .lr = 1e-2f, .beta1 = 0.9f, .beta2 = 0.95f, .eps = 1e-8f, .weight_decay = 0.1f};
  auto params = RandomNormal(n, 1);
  std::vector<float> m(n, 0.0f), v(n, 0.0f);
  DeviceArray<float> d_params(params), d_m(m), d_v(v);
  for (int64_t step = 1; step <= 3; ++step) {
    const auto grads = RandomNormal(n, 10 + uint32_t(step));
    DeviceArray<float> d_grads(grads);
    cuda::adamw_step(d_params.get(), d_m.get(), d_v.get(), d_grads.get(), n, hyper, step);
    cpu::adamw_step(params.data(), m.data(), v.data(), grads.data(), n, hyper, step);
  }
  EXPECT_TRUE(AllClose(d_params.ToHost(), AsDouble(params), Twice(kElementwiseTol)));
  EXPECT_TRUE(AllClose(d_m.ToHost(), AsDouble(m), Twice(kElementwiseTol)));
  EXPECT_TRUE(AllClose(d_v.ToHost(), AsDouble(v), Twice(kElementwiseTol)));
}

}  // namespace
}  // namespace cf::test

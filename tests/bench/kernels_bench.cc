// Throughput of the CPU reference attention and linear kernels, in useful FLOP/s (masked
// query-key pairs are not counted). Not a GPU benchmark; not a correctness test.
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "kernels/cpu/attention.h"
#include "kernels/cpu/linear.h"

namespace {

std::vector<float> Random(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> values(n);
  for (float& x : values) x = dist(rng);
  return values;
}

// A dependent chunk of q_tokens queries after a K/V prefix of `prefix` tokens; Qwen2.5-7B-like
// heads scaled down: 8 query heads, 2 kv heads, head_dim 64.
struct AttentionBench {
  static constexpr int64_t kHeads = 8, kKvHeads = 2, kHeadDim = 64;
  int64_t q_tokens, prefix;
  cf::AttentionShape shape;
  cf::AttentionSegment segment;
  std::vector<float> q, k, v, out, lse, dout, dq, dk, dv;

  AttentionBench(int64_t q_tokens_in, int64_t prefix_in)
      : q_tokens(q_tokens_in),
        prefix(prefix_in),
        shape{q_tokens_in, q_tokens_in + prefix_in, kHeads, kKvHeads, kHeadDim},
        segment{0, q_tokens_in, 0, q_tokens_in + prefix_in},
        q(Random(q_tokens * kHeads * kHeadDim, 1)),
        k(Random(shape.kv_tokens * kKvHeads * kHeadDim, 2)),
        v(Random(shape.kv_tokens * kKvHeads * kHeadDim, 3)),
        out(q.size()),
        lse(q_tokens * kHeads),
        dout(Random(q.size(), 4)),
        dq(q.size()),
        dk(k.size()),
        dv(v.size()) {}

  // Unmasked pairs per head: Σ_i (prefix + i + 1) = q·prefix + q(q+1)/2.
  double pairs() const { return double(q_tokens) * prefix + q_tokens * (q_tokens + 1) / 2.0; }
  void forward() {
    cf::cpu::attention_forward(out.data(), lse.data(), q.data(), k.data(), v.data(), &segment, 1,
                               shape);
  }
  void backward() {
    cf::cpu::attention_backward(dq.data(), dk.data(), dv.data(), dout.data(), q.data(), k.data(),
                                v.data(), out.data(), lse.data(), &segment, 1, shape);
  }
};

// Forward: QKᵀ and PV, 2 FLOPs per multiply-add → 4·d per pair per head.
void BM_AttentionForward(benchmark::State& state) {
  AttentionBench bench(state.range(0), state.range(1));
  for (auto _ : state) {
    bench.forward();
    benchmark::DoNotOptimize(bench.out.data());
  }
  state.counters["FLOP/s"] =
      benchmark::Counter(4.0 * AttentionBench::kHeadDim * AttentionBench::kHeads * bench.pairs(),
                         benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_AttentionForward)->Args({256, 0})->Args({256, 768})->Args({512, 0});

// Backward: recompute QKᵀ, then dV = PᵀdO, dP = dO·Vᵀ, dQ = dS·K, dK = dSᵀQ → 10·d per pair.
void BM_AttentionBackward(benchmark::State& state) {
  AttentionBench bench(state.range(0), state.range(1));
  bench.forward();
  for (auto _ : state) {
    bench.backward();
    benchmark::DoNotOptimize(bench.dk.data());
  }
  state.counters["FLOP/s"] =
      benchmark::Counter(10.0 * AttentionBench::kHeadDim * AttentionBench::kHeads * bench.pairs(),
                         benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_AttentionBackward)->Args({256, 0})->Args({256, 768})->Args({512, 0});

// Linear y = x·Wᵀ: 2·T·I·O FLOPs forward; dx and dW: 4·T·I·O backward.
void BM_LinearForward(benchmark::State& state) {
  const int64_t tokens = state.range(0), in = state.range(1), out = state.range(2);
  const auto x = Random(tokens * in, 1), w = Random(out * in, 2), b = Random(out, 3);
  std::vector<float> y(tokens * out);
  for (auto _ : state) {
    cf::cpu::linear_forward(y.data(), x.data(), w.data(), b.data(), tokens, in, out);
    benchmark::DoNotOptimize(y.data());
  }
  state.counters["FLOP/s"] =
      benchmark::Counter(2.0 * tokens * in * out, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_LinearForward)->Args({256, 512, 512})->Args({256, 896, 4864});

void BM_LinearBackward(benchmark::State& state) {
  const int64_t tokens = state.range(0), in = state.range(1), out = state.range(2);
  const auto x = Random(tokens * in, 1), w = Random(out * in, 2), dy = Random(tokens * out, 3);
  std::vector<float> dx(tokens * in), dw(out * in);
  for (auto _ : state) {
    cf::cpu::linear_backward(dx.data(), dw.data(), nullptr, dy.data(), x.data(), w.data(), tokens,
                             in, out);
    benchmark::DoNotOptimize(dw.data());
  }
  state.counters["FLOP/s"] =
      benchmark::Counter(4.0 * tokens * in * out, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_LinearBackward)->Args({256, 512, 512})->Args({256, 896, 4864});

}  // namespace

BENCHMARK_MAIN();

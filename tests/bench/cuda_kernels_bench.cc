// GPU throughput of the CUDA kernels in TFLOP/s and as a fraction of a peak: the tensor-core
// attention (Math::kBf16) forward and backward on one causal sequence, cuBLAS GEMMs with native
// bf16 storage, and the executor's fp32-storage GEMMs in kBf16 (CUBLAS_COMPUTE_32F_FAST_16BF).
// Timed with CUDA events around the launches. Without a CUDA device it prints why and exits 0,
// so its quick ctest passes on machines without a GPU. Not a correctness test.
//
//   cuda_kernels_bench [--peak_tflops=989.4] [benchmark flags]
//   (or CF_PEAK_TFLOPS=989.4; default: H100 SXM dense bf16 tensor-core peak, 989.4 TFLOP/s)
//
// Besides Google Benchmark's table, one line per benchmark for scripts:
//   RESULT <name> tflops=<TFLOP/s> peak_fraction=<fraction of the peak> ms=<ms per call>
#include <benchmark/benchmark.h>
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "kernels/cpu/attention.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/kernels.h"

namespace {

double g_peak_tflops = 989.4;

struct Result {
  double tflops = 0.0, ms = 0.0;
};
std::map<std::string, Result> g_results;  // the last (reported) run of each benchmark

// A device buffer of n elements of T filled with N(0, 1) values (converted to T): one block of
// 2^20 seeded values repeated, which is random enough for timing and quick to make at 16K
// tokens (2^26 floats per query-sized buffer).
template <typename T>
class DeviceRandom {
 public:
  DeviceRandom(size_t n, uint32_t seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> dist(0.0f, 1.0f);
    std::vector<T> block(std::min<size_t>(n, size_t(1) << 20));
    for (T& x : block) x = T(dist(rng));
    CUDA_CHECK(cudaMalloc(&data_, std::max<size_t>(n, 1) * sizeof(T)));
    for (size_t at = 0; at < n; at += block.size()) {
      const size_t count = std::min(block.size(), n - at);
      CUDA_CHECK(cudaMemcpy(data_ + at, block.data(), count * sizeof(T), cudaMemcpyHostToDevice));
    }
  }
  ~DeviceRandom() { cudaFree(data_); }
  DeviceRandom(const DeviceRandom&) = delete;
  DeviceRandom& operator=(const DeviceRandom&) = delete;
  T* get() { return data_; }

 private:
  T* data_ = nullptr;
};

// "what/tokens=4096/in=896/out=4864": the RESULT line's name of a benchmark with these args.
std::string ResultName(const benchmark::State& state, const char* what,
                       std::initializer_list<const char*> arg_names) {
  std::string name = what;
  int i = 0;
  for (const char* arg : arg_names)
    name += "/" + std::string(arg) + "=" + std::to_string(state.range(i++));
  return name;
}

// Runs `launch` once per iteration between two events on the current stream, reports the
// event time as the iteration time (UseManualTime) and the rate `flops` per call gives.
template <typename Launch>
void TimeLaunches(benchmark::State& state, const std::string& name, double flops, Launch launch) {
  cudaEvent_t start, stop;
  CUDA_CHECK(cudaEventCreate(&start));
  CUDA_CHECK(cudaEventCreate(&stop));
  launch();  // warm-up: module load, the allocator's first pool, cuBLAS heuristics
  CUDA_CHECK(cudaDeviceSynchronize());
  double total_ms = 0.0;
  for (auto _ : state) {
    CUDA_CHECK(cudaEventRecord(start, cf::cuda::current_stream()));
    launch();
    CUDA_CHECK(cudaEventRecord(stop, cf::cuda::current_stream()));
    CUDA_CHECK(cudaEventSynchronize(stop));
    float ms = 0.0f;
    CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
    state.SetIterationTime(ms / 1e3);
    total_ms += ms;
  }
  CUDA_CHECK(cudaEventDestroy(start));
  CUDA_CHECK(cudaEventDestroy(stop));
  const double ms_per_call = total_ms / double(state.iterations());
  const double tflops = flops / (ms_per_call / 1e3) / 1e12;
  state.counters["TFLOP/s"] = tflops;
  state.counters["peak_fraction"] = tflops / g_peak_tflops;
  g_results[name] = {tflops, ms_per_call};
}

// Attention: one causal sequence of n tokens, 32 query heads and 4 kv heads (GQA 8:1) of
// head_dim 128 — Qwen2.5-72B's 64/8 heads at tensor parallelism 2.
constexpr int64_t kHeads = 32, kKvHeads = 4, kHeadDim = 128;

// Useful FLOPs (masked pairs not counted): a query row i of a causal sequence sees i + 1 keys,
// n(n+1)/2 pairs per head. Forward: S = Q·Kᵀ and O = P·V, 2 FLOPs per multiply-add each, 4·d
// per pair. Backward: 2.5× the forward (the FlashAttention papers' rule: S recomputed, then
// dV = Pᵀ·dO, dP = dO·Vᵀ, dQ = dS·K, dK = dSᵀ·Q, 10·d per pair).
double AttentionForwardFlops(int64_t n) {
  return 4.0 * kHeadDim * kHeads * (double(n) * double(n + 1) / 2.0);
}

struct AttentionBuffers {
  cf::AttentionShape shape;
  cf::AttentionSegment segment;
  DeviceRandom<float> q, k, v, out, lse, dout, dq, dk, dv;
  explicit AttentionBuffers(int64_t n)
      : shape{n, n, kHeads, kKvHeads, kHeadDim},
        segment{0, n, 0, n},
        q(n * kHeads * kHeadDim, 1),
        k(n * kKvHeads * kHeadDim, 2),
        v(n * kKvHeads * kHeadDim, 3),
        out(n * kHeads * kHeadDim, 4),
        lse(n * kHeads, 5),
        dout(n * kHeads * kHeadDim, 6),
        dq(n * kHeads * kHeadDim, 7),
        dk(n * kKvHeads * kHeadDim, 8),
        dv(n * kKvHeads * kHeadDim, 9) {}
  void forward() {
    cf::cuda::attention_forward(out.get(), lse.get(), q.get(), k.get(), v.get(), &segment, 1,
                                shape);
  }
  void backward() {
    cf::cuda::attention_backward(dq.get(), dk.get(), dv.get(), dout.get(), q.get(), k.get(),
                                 v.get(), out.get(), lse.get(), &segment, 1, shape);
  }
};

void BM_AttentionForwardBf16(benchmark::State& state) {
  cf::cuda::set_math(cf::cuda::Math::kBf16);
  AttentionBuffers buffers(state.range(0));
  TimeLaunches(state, ResultName(state, "attention_forward_bf16", {"tokens"}),
               AttentionForwardFlops(state.range(0)), [&] { buffers.forward(); });
}

void BM_AttentionBackwardBf16(benchmark::State& state) {
  cf::cuda::set_math(cf::cuda::Math::kBf16);
  AttentionBuffers buffers(state.range(0));
  buffers.forward();  // out and lse of these inputs
  TimeLaunches(state, ResultName(state, "attention_backward_bf16", {"tokens"}),
               2.5 * AttentionForwardFlops(state.range(0)), [&] { buffers.backward(); });
}

// GEMMs as the linear layer's forward: y (tokens, out) = x (tokens, in) · Wᵀ, 2·T·I·O FLOPs.
// Args: {tokens, in, out}. Square: {n, n, n}. Qwen2.5-0.5B's layer (hidden 896, 14 query heads
// and 2 kv heads of 64, FFN 4864): q and o 896 → 896, k and v 896 → 128, gate and up
// 896 → 4864, down 4864 → 896.
double GemmFlops(const benchmark::State& state) {
  return 2.0 * double(state.range(0)) * double(state.range(1)) * double(state.range(2));
}

// Native bf16 storage: A, B, C in CUDA_R_16BF, fp32 accumulation (CUBLAS_COMPUTE_32F).
void BM_GemmBf16Storage(benchmark::State& state) {
  const int tokens = int(state.range(0)), in = int(state.range(1)), out = int(state.range(2));
  DeviceRandom<__nv_bfloat16> x(size_t(tokens) * in, 1), w(size_t(out) * in, 2),
      y(size_t(tokens) * out, 3);
  const cublasHandle_t handle = cf::cuda::cublas_handle();
  CUBLAS_CHECK(cublasSetMathMode(handle, CUBLAS_DEFAULT_MATH));
  const float alpha = 1.0f, beta = 0.0f;
  TimeLaunches(state, ResultName(state, "gemm_bf16_storage", {"tokens", "in", "out"}),
               GemmFlops(state), [&] {
                 // yᵀ (out, tokens) = W (out, in) · xᵀ (in, tokens), column-major as in
                 // kernels/cuda/linear.cu.
                 CUBLAS_CHECK(cublasGemmEx(handle, CUBLAS_OP_T, CUBLAS_OP_N, out, tokens, in,
                                           &alpha, w.get(), CUDA_R_16BF, in, x.get(), CUDA_R_16BF,
                                           in, &beta, y.get(), CUDA_R_16BF, out, CUBLAS_COMPUTE_32F,
                                           CUBLAS_GEMM_DEFAULT));
               });
}

// The executor's path: fp32 buffers through cf::cuda::linear_forward in Math::kBf16
// (CUBLAS_COMPUTE_32F_FAST_16BF: operands rounded to bf16 inside cuBLAS).
void BM_GemmFp32StorageFastBf16(benchmark::State& state) {
  const int64_t tokens = state.range(0), in = state.range(1), out = state.range(2);
  cf::cuda::set_math(cf::cuda::Math::kBf16);
  DeviceRandom<float> x(tokens * in, 1), w(out * in, 2), y(tokens * out, 3);
  TimeLaunches(state, ResultName(state, "gemm_fp32_storage_fast_bf16", {"tokens", "in", "out"}),
               GemmFlops(state), [&] {
                 cf::cuda::linear_forward(y.get(), x.get(), w.get(), nullptr, tokens, in, out);
               });
}

void AttentionArgs(benchmark::internal::Benchmark* b) {
  b->ArgName("tokens")->Arg(4096)->Arg(8192)->Arg(16384);
  b->UseManualTime()->Unit(benchmark::kMillisecond);
}

void GemmArgs(benchmark::internal::Benchmark* b) {
  b->ArgNames({"tokens", "in", "out"});
  b->Args({4096, 4096, 4096})->Args({8192, 8192, 8192});
  for (const int64_t tokens : {4096, 8192}) {
    b->Args({tokens, 896, 896})->Args({tokens, 896, 128});
    b->Args({tokens, 896, 4864})->Args({tokens, 4864, 896});
  }
  b->UseManualTime()->Unit(benchmark::kMillisecond);
}

BENCHMARK(BM_AttentionForwardBf16)->Apply(AttentionArgs);
BENCHMARK(BM_AttentionBackwardBf16)->Apply(AttentionArgs);
BENCHMARK(BM_GemmBf16Storage)->Apply(GemmArgs);
BENCHMARK(BM_GemmFp32StorageFastBf16)->Apply(GemmArgs);

// Takes --peak_tflops=X out of argv (Google Benchmark rejects flags it does not know); false
// on a malformed value.
bool TakePeakFlag(int& argc, char** argv) {
  if (const char* env = std::getenv("CF_PEAK_TFLOPS")) g_peak_tflops = std::atof(env);
  const char* prefix = "--peak_tflops=";
  int kept = 1;
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], prefix, std::strlen(prefix)) == 0) {
      char* end = nullptr;
      g_peak_tflops = std::strtod(argv[i] + std::strlen(prefix), &end);
      if (end == argv[i] + std::strlen(prefix) || *end != '\0') return false;
    } else {
      argv[kept++] = argv[i];
    }
  }
  argc = kept;
  return g_peak_tflops > 0.0;
}

}  // namespace

int main(int argc, char** argv) {
  if (!TakePeakFlag(argc, argv)) {
    std::fprintf(stderr,
                 "cuda_kernels_bench: --peak_tflops (or CF_PEAK_TFLOPS) must be a "
                 "positive number of TFLOP/s\n");
    return 2;
  }
  const std::string no_device = cf::cuda::no_device_reason();
  if (!no_device.empty()) {
    std::printf("cuda_kernels_bench: skipped: %s\n", no_device.c_str());
    return 0;
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 2;
  std::printf("peak: %.1f TFLOP/s\n", g_peak_tflops);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  for (const auto& [name, result] : g_results) {
    std::printf("RESULT %s tflops=%.1f peak_fraction=%.3f ms=%.3f\n", name.c_str(), result.tflops,
                result.tflops / g_peak_tflops, result.ms);
  }
  return 0;
}

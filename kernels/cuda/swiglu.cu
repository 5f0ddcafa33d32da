// SwiGLU on the GPU, one thread per element. Mirrors kernels/cpu/swiglu.cc.
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/kernels.h"

namespace cf::cuda {
namespace {

constexpr int kThreads = 256;

__device__ inline float sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

__global__ void swiglu_forward_kernel(float* out, const float* gate, const float* up, int64_t n) {
  const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (i < n) out[i] = gate[i] * sigmoid(gate[i]) * up[i];
}

// dgate += dout·up·σ(g)·(1 + g·(1 − σ(g))), dup += dout·silu(g).
__global__ void swiglu_backward_kernel(float* dgate, float* dup, const float* dout,
                                       const float* gate, const float* up, int64_t n) {
  const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (i >= n) return;
  const float s = sigmoid(gate[i]);
  dgate[i] += dout[i] * up[i] * s * (1.0f + gate[i] * (1.0f - s));
  dup[i] += dout[i] * gate[i] * s;
}

}  // namespace

void swiglu_forward(float* out, const float* gate, const float* up, int64_t n) {
  CF_CHECK_GE(n, 0);
  if (n == 0) return;
  swiglu_forward_kernel<<<blocks_for(n, kThreads), kThreads, 0, current_stream()>>>(out, gate, up,
                                                                                    n);
  CUDA_CHECK_LAUNCH();
}

void swiglu_backward(float* dgate, float* dup, const float* dout, const float* gate,
                     const float* up, int64_t n) {
  CF_CHECK_GE(n, 0);
  if (n == 0) return;
  swiglu_backward_kernel<<<blocks_for(n, kThreads), kThreads, 0, current_stream()>>>(
      dgate, dup, dout, gate, up, n);
  CUDA_CHECK_LAUNCH();
}

}  // namespace cf::cuda

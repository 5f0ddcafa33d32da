// RMSNorm on the GPU: one block per token for the forward and dx, one thread per hidden column
// (a loop over tokens, no atomics) for dweight. Mirrors kernels/cpu/rmsnorm.cc.
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_reduce.cuh"
#include "kernels/cuda/kernels.h"

namespace cf::cuda {
namespace {

constexpr int kThreads = 256;

// Block t: x, out (hidden) of token t; rstd[t] = 1/sqrt(mean(x²) + eps).
__global__ void rmsnorm_forward_kernel(float* out, float* rstd, const float* x, const float* weight,
                                       int64_t hidden, float eps) {
  const int64_t t = blockIdx.x;
  const float* xt = x + t * hidden;
  float sum_sq = 0.0f;
  for (int64_t c = threadIdx.x; c < hidden; c += blockDim.x) sum_sq += xt[c] * xt[c];
  sum_sq = block_sum(sum_sq);
  const float r = rsqrtf(sum_sq / float(hidden) + eps);
  if (threadIdx.x == 0) rstd[t] = r;
  for (int64_t c = threadIdx.x; c < hidden; c += blockDim.x) {
    out[t * hidden + c] = xt[c] * r * weight[c];
  }
}

// dx_c += r·w_c·g_c − (r³ / H)·x_c·Σ_j g_j·w_j·x_j (derivation in the CPU file).
__global__ void rmsnorm_backward_dx_kernel(float* dx, const float* dout, const float* x,
                                           const float* weight, const float* rstd, int64_t hidden) {
  const int64_t t = blockIdx.x;
  const float* xt = x + t * hidden;
  const float* gt = dout + t * hidden;
  const float r = rstd[t];
  float dot = 0.0f;
  for (int64_t c = threadIdx.x; c < hidden; c += blockDim.x) dot += gt[c] * weight[c] * xt[c];
  dot = block_sum(dot);
  const float coeff = r * r * r * dot / float(hidden);
  for (int64_t c = threadIdx.x; c < hidden; c += blockDim.x) {
    dx[t * hidden + c] += r * weight[c] * gt[c] - coeff * xt[c];
  }
}

// dweight_c += Σ_t g_tc·x_tc·r_t, one thread per column c.
__global__ void rmsnorm_backward_dweight_kernel(float* dweight, const float* dout, const float* x,
                                                const float* rstd, int64_t tokens, int64_t hidden) {
  const int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (c >= hidden) return;
  float sum = 0.0f;
  for (int64_t t = 0; t < tokens; ++t) sum += dout[t * hidden + c] * x[t * hidden + c] * rstd[t];
  dweight[c] += sum;
}

}  // namespace

void rmsnorm_forward(float* out, float* rstd, const float* x, const float* weight, int64_t tokens,
                     int64_t hidden, float eps) {
  CF_CHECK_GE(tokens, 0);
  CF_CHECK_GT(hidden, 0);
  CF_CHECK_GT(eps, 0.0f);
  if (tokens == 0) return;
  rmsnorm_forward_kernel<<<blocks_for(tokens, 1), kThreads, 0, current_stream()>>>(
      out, rstd, x, weight, hidden, eps);
  CUDA_CHECK_LAUNCH();
}

void rmsnorm_backward(float* dx, float* dweight, const float* dout, const float* x,
                      const float* weight, const float* rstd, int64_t tokens, int64_t hidden) {
  CF_CHECK_GE(tokens, 0);
  CF_CHECK_GT(hidden, 0);
  if (tokens == 0) return;
  rmsnorm_backward_dx_kernel<<<blocks_for(tokens, 1), kThreads, 0, current_stream()>>>(
      dx, dout, x, weight, rstd, hidden);
  CUDA_CHECK_LAUNCH();
  rmsnorm_backward_dweight_kernel<<<blocks_for(hidden, kThreads), kThreads, 0, current_stream()>>>(
      dweight, dout, x, rstd, tokens, hidden);
  CUDA_CHECK_LAUNCH();
}

}  // namespace cf::cuda

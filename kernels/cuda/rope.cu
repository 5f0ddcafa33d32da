// RoPE on the GPU: one thread per (token, head, j < d/2) rotating the pair (j, j + d/2); angles
// in double as in the CPU reference. Mirrors kernels/cpu/rope.cc.
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/kernels.h"

namespace cf::cuda {
namespace {

constexpr int kThreads = 256;

// x, out (tokens, heads, head_dim); sign +1 rotates by +φ (forward, writes), −1 by −φ
// (backward, accumulates). Each thread reads its pair before writing it, so out may alias x.
__global__ void rope_kernel(float* out, const float* x, const int32_t* positions, int64_t tokens,
                            int64_t heads, int64_t head_dim, double theta, double sign,
                            bool accumulate) {
  const int64_t half = head_dim / 2;
  const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (i >= tokens * heads * half) return;
  const int64_t j = i % half, h = (i / half) % heads, t = i / (half * heads);
  const double angle = double(positions[t]) * pow(theta, -2.0 * double(j) / double(head_dim));
  const float c = float(cos(angle));
  const float s = float(sign * sin(angle));
  const int64_t base = (t * heads + h) * head_dim;
  const float x1 = x[base + j], x2 = x[base + j + half];
  const float y1 = x1 * c - x2 * s;
  const float y2 = x2 * c + x1 * s;
  if (accumulate) {
    out[base + j] += y1;
    out[base + j + half] += y2;
  } else {
    out[base + j] = y1;
    out[base + j + half] = y2;
  }
}

void launch_rope(float* out, const float* x, const int32_t* positions, int64_t tokens,
                 int64_t heads, int64_t head_dim, double theta, double sign, bool accumulate) {
  CF_CHECK_GE(tokens, 0);
  CF_CHECK_GT(heads, 0);
  CF_CHECK(head_dim > 0 && head_dim % 2 == 0) << "head_dim " << head_dim << " must be even";
  CF_CHECK_GT(theta, 0.0);
  const int64_t pairs = tokens * heads * (head_dim / 2);
  if (pairs == 0) return;
  rope_kernel<<<blocks_for(pairs, kThreads), kThreads, 0, current_stream()>>>(
      out, x, positions, tokens, heads, head_dim, theta, sign, accumulate);
  CUDA_CHECK_LAUNCH();
}

}  // namespace

void rope_forward(float* out, const float* x, const int32_t* positions, int64_t tokens,
                  int64_t heads, int64_t head_dim, double theta) {
  launch_rope(out, x, positions, tokens, heads, head_dim, theta, 1.0, /*accumulate=*/false);
}

void rope_backward(float* dx, const float* dout, const int32_t* positions, int64_t tokens,
                   int64_t heads, int64_t head_dim, double theta) {
  // Zero tokens (a context-parallel rank holding no row of a chunk) own no storage to alias.
  CF_CHECK(tokens == 0 || dx != dout) << "rope_backward accumulates and cannot run in place";
  launch_rope(dx, dout, positions, tokens, heads, head_dim, theta, -1.0, /*accumulate=*/true);
}

}  // namespace cf::cuda

// The residual add on the GPU, one thread per element. Mirrors kernels/cpu/residual.cc; the
// launcher is declared beside the CPU reference in kernels/cpu/residual.h.
#include "kernels/cpu/residual.h"
#include "kernels/cuda/cuda_check.h"

namespace cf::cuda {
namespace {

constexpr int kThreads = 256;

// y (n) += x (n). A plain fp32 add (no contraction possible), so the bits equal the CPU's.
__global__ void residual_add_kernel(float* y, const float* x, int64_t n) {
  const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (i < n) y[i] += x[i];
}

}  // namespace

void residual_add(float* y, const float* x, int64_t n) {
  CF_CHECK_GE(n, 0);
  if (n == 0) return;
  residual_add_kernel<<<blocks_for(n, kThreads), kThreads, 0, current_stream()>>>(y, x, n);
  CUDA_CHECK_LAUNCH();
}

}  // namespace cf::cuda

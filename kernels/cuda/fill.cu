// dst = value on the GPU (kernels.h): cudaMemsetAsync sets bytes, this sets floats. The CPU
// backend's counterpart is std::fill.
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/kernels.h"

namespace cf::cuda {
namespace {

constexpr int kThreads = 256;

__global__ void fill_kernel(float* dst, float value, int64_t n) {
  const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (i < n) dst[i] = value;
}

}  // namespace

void fill(float* dst, float value, int64_t n) {
  CF_CHECK_GE(n, 0);
  if (n == 0) return;
  fill_kernel<<<blocks_for(n, kThreads), kThreads, 0, current_stream()>>>(dst, value, n);
  CUDA_CHECK_LAUNCH();
}

}  // namespace cf::cuda

// Warp and block sum/max reductions shared by the CUDA kernels (device code only).
// Not a general reduction library: blocks of at most 1024 threads, results broadcast to all.
#pragma once

#include <cuda_runtime.h>

namespace cf::cuda {

constexpr int kWarpSize = 32;

__device__ inline float warp_sum(float value) {
  for (int offset = kWarpSize / 2; offset > 0; offset /= 2) {
    value += __shfl_xor_sync(0xffffffffu, value, offset);
  }
  return value;
}

__device__ inline float warp_max(float value) {
  for (int offset = kWarpSize / 2; offset > 0; offset /= 2) {
    value = fmaxf(value, __shfl_xor_sync(0xffffffffu, value, offset));
  }
  return value;
}

// Sum (is_max = false) or max over the block, returned to every thread. Every thread of the
// block must call it; blockDim.x a multiple of 32.
template <bool is_max>
__device__ inline float block_reduce(float value) {
  __shared__ float partial[32];
  const int lane = threadIdx.x % kWarpSize, warp = threadIdx.x / kWarpSize;
  const int warps = blockDim.x / kWarpSize;
  value = is_max ? warp_max(value) : warp_sum(value);
  __syncthreads();  // partial[] may still be read by a previous call
  if (lane == 0) partial[warp] = value;
  __syncthreads();
  const float identity = is_max ? -INFINITY : 0.0f;
  value = lane < warps ? partial[lane] : identity;
  return is_max ? warp_max(value) : warp_sum(value);
}

__device__ inline float block_sum(float value) { return block_reduce<false>(value); }
__device__ inline float block_max(float value) { return block_reduce<true>(value); }

}  // namespace cf::cuda

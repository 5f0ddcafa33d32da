// The residual add of the decoder's pre-norm blocks, y += x elementwise: the fp32 CPU reference
// and, declared beside it (STYLE.md §4), its CUDA launcher (kernels/cuda/residual.cu). The
// executor uses it for every in-place sum of two equal-shaped arrays (residual paths, dK/dV).
#pragma once

#include <cstdint>

namespace cf::cpu {

// y (n) += x (n): one fp32 add per element, correctly rounded, so any backend that adds element
// by element gets the same bits. x may equal y (doubles it) but must not partly overlap it.
void residual_add(float* y, const float* x, int64_t n);

}  // namespace cf::cpu

namespace cf::cuda {

// The CUDA mirror of cpu::residual_add, one thread per element (residual_add_kernel), on
// cf::cuda::current_stream(); y and x are device memory. Defined in cf_kernels_cuda.
void residual_add(float* y, const float* x, int64_t n);

}  // namespace cf::cuda

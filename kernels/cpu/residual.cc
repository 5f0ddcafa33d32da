// The residual add, elementwise (residual.h). kernels/cuda/residual.cu mirrors it.
#include "kernels/cpu/residual.h"

#include "core/check.h"

namespace cf::cpu {

void residual_add(float* y, const float* x, int64_t n) {
  CF_CHECK_GE(n, 0);
  for (int64_t i = 0; i < n; ++i) y[i] += x[i];
}

}  // namespace cf::cpu

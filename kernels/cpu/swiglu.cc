// SwiGLU forward and backward, elementwise. kernels/cuda/swiglu.cu mirrors it.
#include "kernels/cpu/swiglu.h"

#include <cmath>

#include "core/check.h"

namespace cf::cpu {
namespace {

float sigmoid(float x) { return 1.0f / (1.0f + std::exp(-x)); }

}  // namespace

void swiglu_forward(float* out, const float* gate, const float* up, int64_t n) {
  CF_CHECK_GE(n, 0);
  for (int64_t i = 0; i < n; ++i) out[i] = gate[i] * sigmoid(gate[i]) * up[i];
}

void swiglu_backward(float* dgate, float* dup, const float* dout, const float* gate,
                     const float* up, int64_t n) {
  CF_CHECK_GE(n, 0);
  for (int64_t i = 0; i < n; ++i) {
    const float s = sigmoid(gate[i]);
    const float silu = gate[i] * s;
    dgate[i] += dout[i] * up[i] * s * (1.0f + gate[i] * (1.0f - s));
    dup[i] += dout[i] * silu;
  }
}

}  // namespace cf::cpu

// RoPE forward and backward. Angles are computed in double: position·theta^(-2j/d) in fp32
// loses ~1e-2 rad at position 2^18, and the CUDA mirror computes them the same way.
#include "kernels/cpu/rope.h"

#include <cmath>

#include "core/check.h"

namespace cf::cpu {
namespace {

void check_rope_args(int64_t tokens, int64_t heads, int64_t head_dim, double theta) {
  CF_CHECK_GE(tokens, 0);
  CF_CHECK_GT(heads, 0);
  CF_CHECK(head_dim > 0 && head_dim % 2 == 0) << "head_dim " << head_dim << " must be even";
  CF_CHECK_GT(theta, 0.0);
}

// Rotates every head of one token by +φ_j (sign = 1) or −φ_j (sign = −1), adding into `out`
// when `accumulate`. x, out (heads, head_dim).
void rotate_token(float* out, const float* x, int32_t position, int64_t heads, int64_t head_dim,
                  double theta, double sign, bool accumulate) {
  const int64_t half = head_dim / 2;
  for (int64_t j = 0; j < half; ++j) {
    // HF: inv_freq_j = 1 / theta^(2j/d); angle = position · inv_freq_j.
    const double angle = double(position) * std::pow(theta, -2.0 * double(j) / double(head_dim));
    const float c = float(std::cos(angle));
    const float s = float(sign * std::sin(angle));
    for (int64_t h = 0; h < heads; ++h) {
      const float x1 = x[h * head_dim + j];
      const float x2 = x[h * head_dim + j + half];
      const float y1 = x1 * c - x2 * s;
      const float y2 = x2 * c + x1 * s;
      if (accumulate) {
        out[h * head_dim + j] += y1;
        out[h * head_dim + j + half] += y2;
      } else {
        out[h * head_dim + j] = y1;
        out[h * head_dim + j + half] = y2;
      }
    }
  }
}

}  // namespace

void rope_forward(float* out, const float* x, const int32_t* positions, int64_t tokens,
                  int64_t heads, int64_t head_dim, double theta) {
  check_rope_args(tokens, heads, head_dim, theta);
  const int64_t width = heads * head_dim;
  for (int64_t t = 0; t < tokens; ++t) {
    CF_CHECK_GE(positions[t], 0);
    rotate_token(out + t * width, x + t * width, positions[t], heads, head_dim, theta, 1.0,
                 /*accumulate=*/false);
  }
}

void rope_backward(float* dx, const float* dout, const int32_t* positions, int64_t tokens,
                   int64_t heads, int64_t head_dim, double theta) {
  check_rope_args(tokens, heads, head_dim, theta);
  // Zero tokens (a context-parallel rank holding no row of a chunk) own no storage to alias.
  CF_CHECK(tokens == 0 || dx != dout) << "rope_backward accumulates and cannot run in place";
  const int64_t width = heads * head_dim;
  for (int64_t t = 0; t < tokens; ++t) {
    CF_CHECK_GE(positions[t], 0);
    // The rotation is orthogonal: its Jacobian transpose is the rotation by −φ.
    rotate_token(dx + t * width, dout + t * width, positions[t], heads, head_dim, theta, -1.0,
                 /*accumulate=*/true);
  }
}

}  // namespace cf::cpu

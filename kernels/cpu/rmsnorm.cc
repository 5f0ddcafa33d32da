// RMSNorm forward and backward; sums are accumulated in double so the reference does not
// depend on the summation order over hidden. kernels/cuda/rmsnorm.cu mirrors it.
#include "kernels/cpu/rmsnorm.h"

#include <cmath>

#include "core/check.h"

namespace cf::cpu {

void rmsnorm_forward(float* out, float* rstd, const float* x, const float* weight, int64_t tokens,
                     int64_t hidden, float eps) {
  CF_CHECK_GE(tokens, 0);
  CF_CHECK_GT(hidden, 0);
  CF_CHECK_GT(eps, 0.0f);
  for (int64_t t = 0; t < tokens; ++t) {
    const float* xt = x + t * hidden;  // (hidden)
    double sum_sq = 0.0;
    for (int64_t c = 0; c < hidden; ++c) sum_sq += double(xt[c]) * xt[c];
    const float r = float(1.0 / std::sqrt(sum_sq / double(hidden) + double(eps)));
    rstd[t] = r;
    float* ot = out + t * hidden;  // (hidden)
    for (int64_t c = 0; c < hidden; ++c) ot[c] = xt[c] * r * weight[c];
  }
}

// y_c = x_c·r·w_c with r = (mean(x²) + eps)^(-1/2) and ∂r/∂x_c = -r³·x_c / H, so
// dx_c = r·w_c·g_c − (r³ / H)·x_c·Σ_j g_j·w_j·x_j   (g = dout).
void rmsnorm_backward(float* dx, float* dweight, const float* dout, const float* x,
                      const float* weight, const float* rstd, int64_t tokens, int64_t hidden) {
  CF_CHECK_GE(tokens, 0);
  CF_CHECK_GT(hidden, 0);
  for (int64_t t = 0; t < tokens; ++t) {
    const float* xt = x + t * hidden;     // (hidden)
    const float* gt = dout + t * hidden;  // (hidden)
    float* dxt = dx + t * hidden;         // (hidden)
    const float r = rstd[t];
    double dot = 0.0;  // Σ_j g_j·w_j·x_j
    for (int64_t c = 0; c < hidden; ++c) dot += double(gt[c]) * weight[c] * xt[c];
    const float coeff = float(double(r) * r * r * dot / double(hidden));
    for (int64_t c = 0; c < hidden; ++c) {
      dxt[c] += r * weight[c] * gt[c] - coeff * xt[c];
      dweight[c] += gt[c] * xt[c] * r;
    }
  }
}

}  // namespace cf::cpu

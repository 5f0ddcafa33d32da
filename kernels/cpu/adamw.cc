// AdamW step, elementwise. Bias corrections are computed once in double.
// kernels/cuda/adamw.cu mirrors it.
#include "kernels/cpu/adamw.h"

#include <cmath>

#include "core/check.h"

namespace cf::cpu {

void adamw_step(float* params, float* m, float* v, const float* grads, int64_t n,
                const AdamWHyper& hyper, int64_t step) {
  CF_CHECK_GE(n, 0);
  CF_CHECK_GE(step, 1);
  CF_CHECK(hyper.beta1 >= 0.0f && hyper.beta1 < 1.0f) << "beta1 " << hyper.beta1;
  CF_CHECK(hyper.beta2 >= 0.0f && hyper.beta2 < 1.0f) << "beta2 " << hyper.beta2;
  const float bias_correction1 = float(1.0 - std::pow(double(hyper.beta1), double(step)));
  const float bias_correction2 = float(1.0 - std::pow(double(hyper.beta2), double(step)));
  for (int64_t i = 0; i < n; ++i) {
    const float g = grads[i];
    m[i] = hyper.beta1 * m[i] + (1.0f - hyper.beta1) * g;
    v[i] = hyper.beta2 * v[i] + (1.0f - hyper.beta2) * g * g;
    const float m_hat = m[i] / bias_correction1;
    const float v_hat = v[i] / bias_correction2;
    params[i] -=
        hyper.lr * (hyper.weight_decay * params[i] + m_hat / (std::sqrt(v_hat) + hyper.eps));
  }
}

}  // namespace cf::cpu

// AdamW step on the GPU, one thread per parameter; bias corrections computed once on the host
// in double. Mirrors kernels/cpu/adamw.cc.
#include <cmath>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/kernels.h"

namespace cf::cuda {
namespace {

constexpr int kThreads = 256;

__global__ void adamw_kernel(float* params, float* m, float* v, const float* grads, int64_t n,
                             AdamWHyper hyper, float bias_correction1, float bias_correction2) {
  const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (i >= n) return;
  const float g = grads[i];
  const float m_new = hyper.beta1 * m[i] + (1.0f - hyper.beta1) * g;
  const float v_new = hyper.beta2 * v[i] + (1.0f - hyper.beta2) * g * g;
  m[i] = m_new;
  v[i] = v_new;
  const float m_hat = m_new / bias_correction1;
  const float v_hat = v_new / bias_correction2;
  params[i] -= hyper.lr * (hyper.weight_decay * params[i] + m_hat / (sqrtf(v_hat) + hyper.eps));
}

}  // namespace

void adamw_step(float* params, float* m, float* v, const float* grads, int64_t n,
                const AdamWHyper& hyper, int64_t step) {
  CF_CHECK_GE(n, 0);
  CF_CHECK_GE(step, 1);
  CF_CHECK(hyper.beta1 >= 0.0f && hyper.beta1 < 1.0f) << "beta1 " << hyper.beta1;
  CF_CHECK(hyper.beta2 >= 0.0f && hyper.beta2 < 1.0f) << "beta2 " << hyper.beta2;
  if (n == 0) return;
  const float bias_correction1 = float(1.0 - std::pow(double(hyper.beta1), double(step)));
  const float bias_correction2 = float(1.0 - std::pow(double(hyper.beta2), double(step)));
  adamw_kernel<<<blocks_for(n, kThreads), kThreads, 0, current_stream()>>>(
      params, m, v, grads, n, hyper, bias_correction1, bias_correction2);
  CUDA_CHECK_LAUNCH();
}

}  // namespace cf::cuda

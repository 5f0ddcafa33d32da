// AdamW optimizer step (Loshchilov & Hutter 2019, as torch.optim.AdamW), fp32 CPU reference.
// Not gradient clipping nor the learning-rate schedule (the caller passes lr per step).
#pragma once

#include <cstdint>

namespace cf {

struct AdamWHyper {
  float lr = 1e-5f;
  float beta1 = 0.9f;
  float beta2 = 0.95f;
  float eps = 1e-8f;
  float weight_decay = 0.0f;
};

}  // namespace cf

namespace cf::cpu {

// One step t ≥ 1 over n parameters, in place. params, m, v, grads (n); m and v start at 0.
//   p ← p − lr·wd·p  (decoupled decay)
//   m ← β1·m + (1 − β1)·g;  v ← β2·v + (1 − β2)·g²
//   p ← p − lr · (m / (1 − β1^t)) / (sqrt(v / (1 − β2^t)) + eps)
void adamw_step(float* params, float* m, float* v, const float* grads, int64_t n,
                const AdamWHyper& hyper, int64_t step);

}  // namespace cf::cpu

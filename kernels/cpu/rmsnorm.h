// RMSNorm (Zhang & Sennrich 2019, as in Llama/Qwen), forward and backward, fp32 CPU reference.
// Not LayerNorm (no mean subtraction, no bias).
#pragma once

#include <cstdint>

namespace cf::cpu {

// out (tokens, hidden) = x · rstd · weight, rstd (tokens) = 1 / sqrt(mean_c(x²) + eps),
// saved for the backward. x (tokens, hidden), weight (hidden).
void rmsnorm_forward(float* out, float* rstd, const float* x, const float* weight, int64_t tokens,
                     int64_t hidden, float eps);

// dx (tokens, hidden) += ∂L/∂x, dweight (hidden) += Σ_t dout·x·rstd.
// dout, x (tokens, hidden); weight (hidden); rstd (tokens) from the forward.
void rmsnorm_backward(float* dx, float* dweight, const float* dout, const float* x,
                      const float* weight, const float* rstd, int64_t tokens, int64_t hidden);

}  // namespace cf::cpu

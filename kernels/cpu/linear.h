// Linear layer y = x·Wᵀ + b in the PyTorch weight layout, forward and backward, fp32 CPU
// reference over Eigen (the CUDA mirror uses cuBLAS). Not attention's batched products.
#pragma once

#include <cstdint>

namespace cf::cpu {

// y (tokens, out_features) = x (tokens, in_features) · weightᵀ + bias.
// weight (out_features, in_features); bias (out_features) or nullptr.
void linear_forward(float* y, const float* x, const float* weight, const float* bias,
                    int64_t tokens, int64_t in_features, int64_t out_features);

// dx (tokens, in) += dy·W;  dweight (out, in) += dyᵀ·x;  dbias (out) += Σ_t dy.
// Any of dx, dweight, dbias may be nullptr to skip it. dy (tokens, out), x (tokens, in).
void linear_backward(float* dx, float* dweight, float* dbias, const float* dy, const float* x,
                     const float* weight, int64_t tokens, int64_t in_features,
                     int64_t out_features);

}  // namespace cf::cpu

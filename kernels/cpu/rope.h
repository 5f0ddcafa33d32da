// Rotary position embedding (Su et al. 2021) in the rotate-half convention of the Hugging Face
// Llama/Qwen2 implementations, forward and backward, fp32 CPU reference. Not attention itself.
#pragma once

#include <cstdint>

namespace cf::cpu {

// out (tokens, heads, head_dim) = x rotated by the angles of positions[t]: for j < d/2, with
// φ = positions[t] · theta^(-2j/d):
//   out[j]       = x[j]·cos φ − x[j + d/2]·sin φ
//   out[j + d/2] = x[j + d/2]·cos φ + x[j]·sin φ
// positions (tokens) restart at 0 per packed sequence and continue across dependent chunks.
// out may alias x. head_dim must be even.
void rope_forward(float* out, const float* x, const int32_t* positions, int64_t tokens,
                  int64_t heads, int64_t head_dim, double theta);

// dx (tokens, heads, head_dim) += the inverse rotation (by −φ) of dout. Must not alias dout.
void rope_backward(float* dx, const float* dout, const int32_t* positions, int64_t tokens,
                   int64_t heads, int64_t head_dim, double theta);

}  // namespace cf::cpu

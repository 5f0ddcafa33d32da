// SwiGLU activation (Shazeer 2020) of the Llama/Qwen MLP: silu(gate) ∘ up, forward and backward,
// fp32 CPU reference. Not the gate/up/down projections (linear.h).
#pragma once

#include <cstdint>

namespace cf::cpu {

// out (n) = silu(gate) · up, silu(x) = x·σ(x). gate, up (n); n = tokens · ffn_hidden.
void swiglu_forward(float* out, const float* gate, const float* up, int64_t n);

// dgate (n) += dout·up·silu'(gate), dup (n) += dout·silu(gate),
// silu'(x) = σ(x)·(1 + x·(1 − σ(x))).
void swiglu_backward(float* dgate, float* dup, const float* dout, const float* gate,
                     const float* up, int64_t n);

}  // namespace cf::cpu

// Softmax cross-entropy from logits with integer targets, forward and backward, fp32 CPU
// reference. Not the LM head projection (linear.h) nor the sum over tokens (the caller's).
#pragma once

#include <cstdint>

namespace cf::cpu {

// A target of kIgnoreTarget marks a position without loss (prompt tokens, the last token).
inline constexpr int32_t kIgnoreTarget = -1;

// losses (tokens) = loss_scale · (lse_t − logits[t, target_t]), 0 where target_t == -1;
// lse (tokens) = log Σ_v exp(logits[t, v]) is saved for the backward.
// logits (tokens, vocab); targets (tokens) in [0, vocab) or -1.
// loss_scale = 1 / (loss tokens of the whole global batch), so the sum of every chunk's losses
// is the global-batch mean and chunking changes no gradient (DESIGN.md §4.1).
void cross_entropy_forward(float* losses, float* lse, const float* logits, const int32_t* targets,
                           int64_t tokens, int64_t vocab, float loss_scale);

// dlogits (tokens, vocab) = loss_scale · (softmax(logits) − onehot(target)), a zero row where
// target == -1. WRITES (does not accumulate): it starts the backward pass. dlogits may alias
// logits (each element is read before it is written).
void cross_entropy_backward(float* dlogits, const float* logits, const float* lse,
                            const int32_t* targets, int64_t tokens, int64_t vocab,
                            float loss_scale);

}  // namespace cf::cpu

// Token embedding lookup, forward and backward (fp32 CPU reference; kernels/cuda mirrors it).
// Not the LM head (a linear layer, linear.h) and not positional encoding (rope.h).
#pragma once

#include <cstdint>

namespace cf::cpu {

// out (tokens, hidden) = table[ids[t], :]. ids (tokens) in [0, vocab); table (vocab, hidden).
void embedding_forward(float* out, const int32_t* ids, const float* table, int64_t tokens,
                       int64_t vocab, int64_t hidden);

// dtable (vocab, hidden) += dout rows scattered to their token ids (a repeated id sums).
// dout (tokens, hidden).
void embedding_backward(float* dtable, const float* dout, const int32_t* ids, int64_t tokens,
                        int64_t vocab, int64_t hidden);

}  // namespace cf::cpu

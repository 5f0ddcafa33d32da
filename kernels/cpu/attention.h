// Grouped-query causal attention over a segment table — packed standalone chunks and dependent
// chunks with a K/V prefix — forward and backward, fp32 CPU reference (the specification the
// CUDA mirror follows). Not RoPE (rope.h) and not the Q/K/V/O projections (linear.h).
#pragma once

#include <cstdint>

namespace cf {

// One sequence piece of a chunk. Query row i (0 ≤ i < q_len) of the segment is row q_begin + i
// of the query block; it attends keys kv_begin .. kv_begin + (kv_len − q_len) + i inclusive of
// the key/value array (causal, aligned to the bottom-right corner).
//   standalone packed chunk: one segment per sequence, kv_begin = q_begin, kv_len = q_len
//                            (block-diagonal causal mask);
//   dependent chunk j:       keys = the K/V of chunks 1..j−1 of its group followed by its own,
//                            kv_len = prefix + q_len.
struct AttentionSegment {
  int64_t q_begin = 0;
  int64_t q_len = 0;
  int64_t kv_begin = 0;
  int64_t kv_len = 0;
};

// Sizes: q_tokens query rows (tq), kv_tokens key rows (tk), heads query heads (a), kv_heads
// key/value heads (g, a % g == 0; query head h reads kv head h / (a / g), as HF repeat_kv),
// head_dim d. Softmax scale 1/sqrt(d).
struct AttentionShape {
  int64_t q_tokens = 0;
  int64_t kv_tokens = 0;
  int64_t heads = 0;
  int64_t kv_heads = 0;
  int64_t head_dim = 0;
};

// CF_CHECKs the preconditions shared by every backend: positive sizes, a % g == 0, segments in
// query order tiling [0, tq) exactly (so every output row is written once), kv_len ≥ q_len and
// every key range inside [0, tk).
void check_attention_args(const AttentionSegment* segments, int64_t num_segments,
                          const AttentionShape& shape);

}  // namespace cf

namespace cf::cpu {

// out (tq, a·d) = softmax(Q·Kᵀ/√d + mask)·V per head; lse (tq, a) = log Σ_j exp(s_ij), the
// log-sum-exp of each query row and head, saved for the backward.
// q (tq, a·d); k, v (tk, g·d), all row-major with heads side by side in a row.
void attention_forward(float* out, float* lse, const float* q, const float* k, const float* v,
                       const AttentionSegment* segments, int64_t num_segments,
                       const AttentionShape& shape);

// dq (tq, a·d) += ∂L/∂Q; dk, dv (tk, g·d) += ∂L/∂K, ∂L/∂V for every key, prefix included,
// so the backwards of a dependent group sum into one dK/dV buffer (DESIGN.md §4.2).
// dout, out (tq, a·d) and lse (tq, a) from the forward.
void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* q,
                        const float* k, const float* v, const float* out, const float* lse,
                        const AttentionSegment* segments, int64_t num_segments,
                        const AttentionShape& shape);

}  // namespace cf::cpu

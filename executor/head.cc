// Embedding and LM head with the loss, forward and backward (head.h).
#include "executor/head.h"

#include <algorithm>

#include "core/check.h"
#include "kernels/cpu/kernels.h"

namespace cf {

double head_forward(HeadActs* a, const float* final_norm, const float* head,
                    const ChunkInputs& in, const HeadDims& dims, float loss_scale,
                    MemoryCategory cat, bool want_grad, MemoryTracker* tracker) {
  const int64_t t = static_cast<int64_t>(in.ids.size()), h = dims.hidden, vocab = dims.vocab;
  CF_CHECK_EQ(a->x.size(), t * h);
  a->rstd = FloatBuffer(tracker, cat, t);
  a->xn = FloatBuffer(tracker, cat, t * h);
  cpu::rmsnorm_forward(a->xn.data(), a->rstd.data(), a->x.data(), final_norm, t, h, dims.eps);
  // logits (t, V), turned into dlogits in place by the fused loss backward.
  FloatBuffer logits(tracker, cat, t * vocab);
  cpu::linear_forward(logits.data(), a->xn.data(), head, nullptr, t, h, vocab);
  FloatBuffer losses(tracker, MemoryCategory::kTransient, t);
  FloatBuffer lse(tracker, MemoryCategory::kTransient, t);
  cpu::cross_entropy_forward(losses.data(), lse.data(), logits.data(), in.targets.data(), t, vocab,
                             loss_scale);
  double loss = 0;
  for (int64_t i = 0; i < t; ++i) loss += losses[i];
  if (want_grad) {
    cpu::cross_entropy_backward(logits.data(), logits.data(), lse.data(), in.targets.data(), t,
                                vocab, loss_scale);
    a->dlogits = std::move(logits);
  }
  return loss;
}

void head_backward(float* dx, float* dfinal_norm, float* dhead, const HeadActs& a,
                   const float* final_norm, const float* head, const HeadDims& dims,
                   int64_t tokens, MemoryTracker* tracker) {
  const int64_t t = tokens, h = dims.hidden;
  CF_CHECK_EQ(a.dlogits.size(), t * dims.vocab);
  FloatBuffer dxn(tracker, MemoryCategory::kTransient, t * h);  // (t, h)
  cpu::linear_backward(dxn.data(), dhead, nullptr, a.dlogits.data(), a.xn.data(), head, t, h,
                       dims.vocab);
  std::fill(dx, dx + t * h, 0.0f);
  cpu::rmsnorm_backward(dx, dfinal_norm, dxn.data(), a.x.data(), final_norm, a.rstd.data(), t, h);
}

void embed_forward(float* out, const float* embedding, const ChunkInputs& in,
                   const HeadDims& dims) {
  cpu::embedding_forward(out, in.ids.data(), embedding, static_cast<int64_t>(in.ids.size()),
                         dims.vocab, dims.hidden);
}

void embed_backward(float* dembedding, const float* dout, const ChunkInputs& in,
                    const HeadDims& dims) {
  cpu::embedding_backward(dembedding, dout, in.ids.data(), static_cast<int64_t>(in.ids.size()),
                          dims.vocab, dims.hidden);
}

}  // namespace cf

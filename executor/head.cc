// Embedding and LM head with the loss, forward and backward (head.h).
#include "executor/head.h"

#include <utility>
#include <vector>

#include "core/check.h"

namespace cf {

double head_forward(HeadActs* a, const float* final_norm, const float* head, const ChunkInputs& in,
                    const HeadDims& dims, float loss_scale, MemoryCategory cat, bool want_grad,
                    MemoryTracker* tracker, Stream* stream) {
  const int64_t t = static_cast<int64_t>(in.ids.size()), h = dims.hidden, vocab = dims.vocab;
  Stream& s = *stream;
  Allocator* storage = s.allocator();
  CF_CHECK_EQ(a->x.size(), t * h);
  a->rstd = FloatBuffer(storage, tracker, cat, t);
  a->xn = FloatBuffer(storage, tracker, cat, t * h);
  s.rmsnorm_forward(a->xn.data(), a->rstd.data(), a->x.data(), final_norm, t, h, dims.eps);
  // logits (t, V), turned into dlogits in place by the fused loss backward.
  FloatBuffer logits(storage, tracker, cat, t * vocab);
  s.linear_forward(logits.data(), a->xn.data(), head, nullptr, t, h, vocab);
  FloatBuffer losses(storage, tracker, MemoryCategory::kTransient, t);  // (t)
  FloatBuffer lse(storage, tracker, MemoryCategory::kTransient, t);     // (t)
  s.cross_entropy_forward(losses.data(), lse.data(), logits.data(), in.targets.data(), t, vocab,
                          loss_scale);
  std::vector<float> host_losses(static_cast<size_t>(t), 0.0f);  // (t) on the host
  s.copy_to_host(host_losses.data(), losses.data(), t);
  double loss = 0;
  for (const float token_loss : host_losses) loss += token_loss;
  if (want_grad) {
    s.cross_entropy_backward(logits.data(), logits.data(), lse.data(), in.targets.data(), t, vocab,
                             loss_scale);
    a->dlogits = std::move(logits);
  }
  return loss;
}

void head_backward(float* dx, float* dfinal_norm, float* dhead, const HeadActs& a,
                   const float* final_norm, const float* head, const HeadDims& dims, int64_t tokens,
                   MemoryTracker* tracker, Stream* stream) {
  const int64_t t = tokens, h = dims.hidden;
  Stream& s = *stream;
  CF_CHECK_EQ(a.dlogits.size(), t * dims.vocab);
  FloatBuffer dxn(s.allocator(), tracker, MemoryCategory::kTransient, t * h);  // (t, h)
  s.linear_backward(dxn.data(), dhead, nullptr, a.dlogits.data(), a.xn.data(), head, t, h,
                    dims.vocab);
  s.fill(dx, 0.0f, t * h);
  s.rmsnorm_backward(dx, dfinal_norm, dxn.data(), a.x.data(), final_norm, a.rstd.data(), t, h);
}

void embed_forward(float* out, const float* embedding, const ChunkInputs& in, const HeadDims& dims,
                   Stream* stream) {
  stream->embedding_forward(out, in.ids.data(), embedding, static_cast<int64_t>(in.ids.size()),
                            dims.vocab, dims.hidden);
}

void embed_backward(float* dembedding, const float* dout, const ChunkInputs& in,
                    const HeadDims& dims, Stream* stream) {
  stream->embedding_backward(dembedding, dout, in.ids.data(), static_cast<int64_t>(in.ids.size()),
                             dims.vocab, dims.hidden);
}

}  // namespace cf

// The ends of the decoder: the token embedding (first stage) and the final RMSNorm, LM head and
// cross-entropy (last stage), forward and backward over a backend stream's kernels (the CPU
// backend's unless given). Not the layers (layer.h). The loss is scaled by 1 / (loss tokens of the
// global batch), so the sum over all chunks and DP ranks is the batch mean and chunking changes no
// gradient (DESIGN.md §4.1).
#pragma once

#include <cstdint>

#include "executor/backend.h"
#include "executor/cpu_backend.h"
#include "executor/memory.h"
#include "executor/tokens.h"

namespace cf {

struct HeadDims {
  int64_t hidden = 0;  // h
  int64_t vocab = 0;   // V
  float eps = 1e-6f;
};

// What the head's backward needs: its input, the normalised input and dlogits, the gradient of
// the loss w.r.t. the logits, computed in the forward (a fused cross-entropy keeps it in place
// of the logits, as Megatron-LM's does). Shapes for t chunk tokens:
struct HeadActs {
  FloatBuffer x;        // (t, h) output of the last layer
  FloatBuffer rstd;     // (t)
  FloatBuffer xn;       // (t, h)
  FloatBuffer dlogits;  // (t, V)
};

// Final norm, logits, loss. Returns Σ of the chunk's scaled token losses (fp64 sum on the
// host, of the per-token losses copied back: the stream's one read of results per chunk; 0 on
// a backend without storage). Buffers other than acts->x are allocated under `category`; with
// `want_grad` false (F*) dlogits is not computed and every buffer can be dropped by the caller.
double head_forward(HeadActs* acts, const float* final_norm, const float* head,
                    const ChunkInputs& inputs, const HeadDims& dims, float loss_scale,
                    MemoryCategory category, bool want_grad, MemoryTracker* tracker,
                    Stream* stream = cpu_stream());

// dx (t, h) = ∂L/∂x (written); dfinal_norm (h) and dhead (V, h) accumulated.
void head_backward(float* dx, float* dfinal_norm, float* dhead, const HeadActs& acts,
                   const float* final_norm, const float* head, const HeadDims& dims, int64_t tokens,
                   MemoryTracker* tracker, Stream* stream = cpu_stream());

// out (t, h) = embedding rows of the chunk's ids; dembedding (V, h) += scatter of dout (t, h).
void embed_forward(float* out, const float* embedding, const ChunkInputs& inputs,
                   const HeadDims& dims, Stream* stream = cpu_stream());
void embed_backward(float* dembedding, const float* dout, const ChunkInputs& inputs,
                    const HeadDims& dims, Stream* stream = cpu_stream());

}  // namespace cf

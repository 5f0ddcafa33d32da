// One Llama/Qwen2 decoder layer over a chunk, forward and backward, written out over the
// kernels of a backend stream (llm.c style: the step reads top to bottom). Pre-norm residual
// blocks:
//   h1  = x  + Wo · attention(rope(Wq·rms(x) + bq), rope(Wk·rms(x) + bk), Wv·rms(x) + bv)
//   out = h1 + Wdown · (silu(Wgate·rms(h1)) ∘ Wup·rms(h1))
// Attention reads a dependent piece's K/V prefix from the state store and sends dK/dV for that
// prefix back into it. With context parallelism a layer runs on one CP rank's rows of the chunk
// (context_parallel.h): K/V are all-gathered over the CP ranks before attention and dK/dV
// reduce-scattered back to their owners after its backward. Not the embedding or the LM head
// (head.h), not the op order (stage.h).
#pragma once

#include <cstdint>

#include "executor/backend.h"
#include "executor/cpu_backend.h"
#include "executor/memory.h"
#include "executor/params.h"
#include "executor/state_store.h"
#include "executor/tokens.h"
#include "executor/transport.h"
#include "models/model.h"

namespace cf {

struct LayerDims {
  int64_t hidden = 0;    // h
  int64_t ffn = 0;       // f
  int64_t heads = 0;     // a
  int64_t kv_heads = 0;  // g
  int64_t head_dim = 0;  // d
  float eps = 1e-6f;
  double rope_theta = 10000.0;
  int64_t q_width() const { return heads * head_dim; }
  int64_t kv_width() const { return kv_heads * head_dim; }
};
LayerDims layer_dims(const ModelConfig& model);

// What a layer's backward needs from its forward. `x` points at the layer input (owned by the
// caller: the stage input, or the previous layer's output kept in x_owned). k and v are empty
// for a dependent piece, whose K/V live in the state store. Shapes for the chunk's t tokens (this
// CP rank's rows of them with context parallelism):
struct LayerActs {
  const float* x = nullptr;   // (t, h)
  FloatBuffer x_owned;        // (t, h) when this struct owns its input
  FloatBuffer rstd1;          // (t)
  FloatBuffer xn1;            // (t, h)   rms(x)·w
  FloatBuffer q;              // (t, a·d) after RoPE
  FloatBuffer k, v;           // (t, g·d) K after RoPE; standalone chunks only
  FloatBuffer attn;           // (t, a·d) attention output, input of Wo
  FloatBuffer lse;            // (t, a)   log-sum-exp of each query row and head
  FloatBuffer h1;             // (t, h)   residual stream after attention
  FloatBuffer rstd2;          // (t)
  FloatBuffer xn2;            // (t, h)
  FloatBuffer gate, up, act;  // (t, f)  act = silu(gate)·up
};

// Where a chunk's attention keys come from and whether the forward stores its K/V.
struct LayerCall {
  const LayerDims* dims = nullptr;
  const ChunkInputs* inputs = nullptr;
  StateStore* store = nullptr;  // dependent pieces only
  int64_t layer = 0;            // global layer index (the store's key)
  MemoryTracker* tracker = nullptr;
  Stream* stream = cpu_stream();      // where the kernels run and the buffers' storage comes from
  Transport* cp_transport = nullptr;  // inputs->cp > 1: the CP group's all-gather, reduce-scatter
};

// out (t, h) = layer(acts->x). Saved tensors are allocated under `category` (activations for
// F and R, transient for F*, which drops them). A dependent piece's K/V go to the store when
// `store_kv` (F, F*); R recomputes them bit for bit and leaves the store as it is.
void layer_forward(float* out, LayerActs* acts, const LayerTensors& w, const LayerCall& call,
                   MemoryCategory category, bool store_kv);

// dx (t, h) = ∂L/∂x (written, not accumulated) from dout (t, h) = ∂L/∂out; parameter
// gradients are accumulated into g. For a dependent piece, adds the dK/dV of its prefix into
// the store and consumes the dK/dV later pieces left for it.
void layer_backward(float* dx, const float* dout, const LayerActs& acts, const LayerTensors& w,
                    const LayerTensors& g, const LayerCall& call);

}  // namespace cf

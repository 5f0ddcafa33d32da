// The fp32 executor's allocations replayed buffer by buffer, in the order its code makes them
// (executor/stage.cc run_step / forward_layers / run_forward / run_backward, layer.cc,
// head.cc, state_store.cc). Every buffer is fp32. Shapes: t chunk tokens, p prefix tokens of a
// dependent piece, h hidden, f ffn, q = a·d, kv = g·d, a heads, V vocab. A change to the
// order or size of the executor's buffers must be mirrored here;
// tests/sim/calibrated_memory_test.cc compares the two exactly.
#include "sim/memory_calibrated.h"

#include <algorithm>

#include "core/check.h"
#include "sim/memory_model.h"

namespace cf {
namespace {

enum Category { kActivations = 0, kStore = 1, kTransient = 2 };

// Live floats by category relative to the op's start, and the highest total reached.
struct Shadow {
  int64_t live[3] = {0, 0, 0};
  int64_t total = 0;
  int64_t peak = 0;
  void alloc(Category c, int64_t floats) {
    if (floats <= 0) return;  // an empty Buffer allocates nothing
    live[c] += floats;
    total += floats;
    peak = std::max(peak, total);
  }
  void free(Category c, int64_t floats) {
    if (floats <= 0) return;
    live[c] -= floats;
    total -= floats;
  }
};

struct Dims {
  int64_t t, p, h, f, q, kv, a, vocab;
  bool dependent;
  // LayerActs of one layer without its input: rstd1, xn1, q, (k, v), attn, lse, h1, rstd2,
  // xn2, gate, up, act.
  int64_t layer_acts() const {
    return t * (2 + 3 * h + 2 * q + a + 3 * f) + (dependent ? 0 : 2 * t * kv);
  }
};

// layer.cc layer_forward: saved tensors under `cat`; a dependent piece's own K/V transient
// (the store keeps them: put when store_kv); the prefix K/V gathered into transient buffers.
void layer_forward(Shadow& s, const Dims& d, Category cat, bool store_kv) {
  s.alloc(cat, d.t);        // rstd1
  s.alloc(cat, d.t * d.h);  // xn1
  s.alloc(cat, d.t * d.q);  // q
  const Category kv_cat = d.dependent ? kTransient : cat;
  s.alloc(kv_cat, d.t * d.kv);  // k
  s.alloc(kv_cat, d.t * d.kv);  // v
  if (d.dependent && store_kv) {
    s.alloc(kStore, d.t * d.kv);  // StateStore::put: k, v
    s.alloc(kStore, d.t * d.kv);
  }
  if (d.p > 0) {
    s.alloc(kTransient, (d.p + d.t) * d.kv);  // gather_keys: k_all, v_all
    s.alloc(kTransient, (d.p + d.t) * d.kv);
  }
  s.alloc(cat, d.t * d.q);  // attn
  s.alloc(cat, d.t * d.a);  // lse
  if (d.p > 0) s.free(kTransient, 2 * (d.p + d.t) * d.kv);
  s.alloc(cat, d.t * d.h);                              // h1
  s.alloc(cat, d.t);                                    // rstd2
  s.alloc(cat, d.t * d.h);                              // xn2
  for (int i = 0; i < 3; ++i) s.alloc(cat, d.t * d.f);  // gate, up, act
  if (d.dependent) s.free(kTransient, 2 * d.t * d.kv);  // own k, v go out of scope
}

// layer.cc layer_backward: every buffer transient except the dK/dV accumulators the group's
// first backward (its highest piece) allocates in the store for the earlier pieces.
void layer_backward(Shadow& s, const Dims& d, bool allocates_prefix_dkv) {
  const int64_t keys = (d.p + d.t) * d.kv;
  s.alloc(kTransient, d.t * d.h);                 // dh1
  s.alloc(kTransient, d.t * d.f);                 // dact
  s.alloc(kTransient, d.t * d.f);                 // dgate
  s.alloc(kTransient, d.t * d.f);                 // dup
  s.free(kTransient, d.t * d.f);                  // dact.reset()
  s.alloc(kTransient, d.t * d.h);                 // dxn2
  s.free(kTransient, d.t * d.h + 2 * d.t * d.f);  // end of the MLP block
  s.alloc(kTransient, d.t * d.q);                 // dattn
  if (d.p > 0) {
    s.alloc(kTransient, keys);  // gather_keys: k_all, v_all
    s.alloc(kTransient, keys);
  }
  s.alloc(kTransient, d.t * d.q);  // dq
  s.alloc(kTransient, keys);       // dk_all
  s.alloc(kTransient, keys);       // dv_all
  if (d.p > 0) s.free(kTransient, 2 * keys);
  s.free(kTransient, d.t * d.q);  // dattn.reset()
  if (allocates_prefix_dkv) {
    s.alloc(kStore, d.p * d.kv);  // accumulate_prefix: dk, dv of pieces 0..index−1
    s.alloc(kStore, d.p * d.kv);
  }
  s.alloc(kTransient, d.t * d.q);                                         // dq_pre
  s.alloc(kTransient, d.t * d.kv);                                        // dk_pre
  s.free(kTransient, d.t * d.q);                                          // dq.reset()
  s.alloc(kTransient, d.t * d.h);                                         // dxn1
  s.free(kTransient, 2 * d.t * d.h + 2 * keys + d.t * d.q + d.t * d.kv);  // locals
}

// stage.cc run_step (the received input) + run_forward + forward_layers, head.cc head_forward.
void forward_op(Shadow& s, const Dims& d, Pass pass, int64_t layers, bool last) {
  if (pass != Pass::kRecompute) s.alloc(kActivations, d.t * d.h);  // stage input
  const bool keep = pass != Pass::kForwardKeepKV;
  const Category cat = keep ? kActivations : kTransient;
  for (int64_t i = 0; i < layers; ++i) {
    const bool out_kept = keep && (i + 1 < layers || last);
    s.alloc(out_kept ? kActivations : kTransient, d.t * d.h);  // out
    layer_forward(s, d, cat, /*store_kv=*/pass != Pass::kRecompute);
    if (!keep) {  // F*: the layer's tensors and its input (the previous out) are dropped
      s.free(kTransient, d.layer_acts() + (i > 0 ? d.t * d.h : 0));
    }
  }
  if (last) {
    s.alloc(cat, d.t);            // rstd
    s.alloc(cat, d.t * d.h);      // xn
    s.alloc(cat, d.t * d.vocab);  // logits (kept as dlogits when keep)
    s.alloc(kTransient, d.t);     // losses
    s.alloc(kTransient, d.t);     // lse
    s.free(kTransient, 2 * d.t);
    if (!keep) s.free(kTransient, d.t * d.vocab + d.t + 2 * d.t * d.h);  // logits, rstd, xn, x
  } else {
    s.free(kTransient, d.t * d.h);  // the output, after it was sent
  }
}

// stage.cc run_backward, head.cc head_backward, state_store.cc release.
void backward_op(Shadow& s, const Dims& d, int64_t layers, bool last, bool first_of_group,
                 bool has_dkv) {
  s.alloc(kTransient, d.t * d.h);  // received dout
  if (last) {
    s.alloc(kTransient, d.t * d.h);  // dxn
    s.free(kTransient, d.t * d.h);
    s.free(kActivations, 2 * d.t * d.h + d.t + d.t * d.vocab);  // x, xn, rstd, dlogits
  }
  for (int64_t i = layers - 1; i >= 0; --i) {
    s.alloc(kTransient, d.t * d.h);  // dx
    layer_backward(s, d, first_of_group && d.p > 0);
    s.free(kActivations, d.layer_acts() + (i > 0 ? d.t * d.h : 0));
    s.free(kTransient, d.t * d.h);  // the previous dout
  }
  s.free(kActivations, d.t * d.h);  // the stage input
  if (d.dependent) {
    s.free(kStore, layers * 2 * d.t * d.kv);               // k, v
    if (has_dkv) s.free(kStore, layers * 2 * d.t * d.kv);  // dk, dv
  }
  s.free(kTransient, d.t * d.h);  // dout
}

}  // namespace

MemoryBreakdown executor_model_states(const ModelConfig& model, int pp, int vpp, int stage) {
  const int64_t params = stage_local_parameters(model, /*tp=*/1, pp, vpp, stage);
  MemoryBreakdown bytes;
  bytes.weights = 4 * params;
  bytes.gradients = 4 * params;
  bytes.optimizer = 8 * params;
  return bytes;
}

ExecutorOpBytes executor_op_bytes(const ModelConfig& model, const Plan& plan, const Op& op,
                                  bool first, bool last) {
  const Chunk& chunk = plan.chunks[static_cast<size_t>(op.chunk)];
  const bool dependent = chunk.kind == ChunkKind::kDependent;
  Dims d{};
  d.t = chunk.tokens;
  d.p = dependent ? chunk.segments.front().offset : 0;
  d.h = model.hidden;
  d.f = model.ffn_hidden;
  d.q = model.heads * model.head_dim;
  d.kv = model.kv_heads * model.head_dim;
  d.a = model.heads;
  d.vocab = model.vocab;
  d.dependent = dependent;
  const int64_t layers = plan.layers_per_model_chunk();
  Shadow s;
  if (op.pass == Pass::kBackward) {
    const bool first_of_group = dependent && chunk.index == chunk.group_size - 1;
    const bool has_dkv = dependent && chunk.index < chunk.group_size - 1;
    backward_op(s, d, layers, last, first_of_group, has_dkv);
  } else {
    forward_op(s, d, op.pass, layers, last);
  }
  (void)first;  // the embedding writes into the stage input: no buffer of its own
  CF_CHECK_EQ(s.live[kTransient], 0) << "transient buffers outlive op " << op.id;
  return ExecutorOpBytes{4 * s.peak, 4 * s.live[kActivations], 4 * s.live[kStore]};
}

}  // namespace cf

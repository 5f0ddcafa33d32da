// A decoder layer's forward and backward over a backend stream's kernels (layer.h). Shapes: t
// rows of the chunk held here (all T chunk tokens when cp = 1), p prefix tokens (dependent
// pieces; 0 otherwise), h hidden, f ffn, a heads, g KV heads, d head_dim, Q = a·d, G = g·d.
#include "executor/layer.h"

#include <optional>
#include <utility>
#include <vector>

#include "core/check.h"
#include "executor/context_parallel.h"

namespace cf {
namespace {

FloatBuffer alloc(const LayerCall& call, MemoryCategory category, int64_t count) {
  return FloatBuffer(call.stream->allocator(), call.tracker, category, count);
}

// The keys and values attention sees, (p + T, G) for a prefix of p tokens and a chunk of T:
// without a prefix or context parallelism, the chunk's own; otherwise, in a transient buffer,
// the rows this rank holds (the store's rows of the earlier pieces, then its own), all-gathered
// over the CP ranks into piece order when cp > 1.
struct Keys {
  FloatBuffer k_all, v_all;
  const float* k = nullptr;
  const float* v = nullptr;
  int64_t tokens = 0;        // p + T
  int64_t local_prefix = 0;  // rows of the prefix this rank holds (p when cp = 1)
};

// The whole token counts of the pieces attention reads: the earlier pieces, then the chunk.
std::vector<int64_t> key_pieces(const LayerCall& call) {
  const ChunkInputs& in = *call.inputs;
  std::vector<int64_t> pieces;
  if (in.prefix_tokens > 0) {
    pieces = call.store->prefix_piece_tokens(in.group, call.layer, in.index);
  }
  pieces.push_back(in.chunk_tokens);
  return pieces;
}

CpGroup cp_group(const LayerCall& call) {
  CF_CHECK(call.cp_transport != nullptr) << "context parallelism without a transport";
  return CpGroup{
      {call.inputs->cp, call.inputs->cp_rank}, call.cp_transport, call.stream, call.tracker};
}

// Whether the piece's group lives in the host pool (its rows come from there); asked once the
// group's piece 0 is stored: in a later piece's forward, in any backward.
bool offloaded(const LayerCall& call) {
  return call.inputs->dependent && call.store->offloaded(call.inputs->group, call.layer);
}

// The rows this rank holds: the piece's own K/V (k_own, v_own) after the store's prefix, or,
// with `fetched` (StateStore::fetch_keys, made earlier so its copies ran beside the work since),
// the fetched rows — the prefix and the `t` rows left for k_own, or the piece's own rows too
// when k_own is null.
Keys gather_keys(const LayerCall& call, const float* k_own, const float* v_own,
                 std::optional<StateStore::Rows> fetched = std::nullopt) {
  const ChunkInputs& in = *call.inputs;
  const int64_t t = in.tokens(), kv = call.dims->kv_width();
  Keys keys;
  keys.tokens = in.prefix_tokens + in.chunk_tokens;
  if (!fetched && in.prefix_tokens == 0 && in.cp == 1) {
    keys.k = k_own;
    keys.v = v_own;
    return keys;
  }
  if (in.prefix_tokens > 0) {
    CF_CHECK_EQ(call.store->prefix_tokens(in.group, call.layer, in.index), in.prefix_tokens);
    keys.local_prefix = call.store->prefix_rows(in.group, call.layer, in.index);
  }
  const int64_t local = keys.local_prefix + t;  // (local, G): this rank's rows
  FloatBuffer k_local, v_local;
  if (fetched) {
    CF_CHECK_EQ(fetched->k.size(), local * kv);
    call.store->ready();
    k_local = std::move(fetched->k);
    v_local = std::move(fetched->v);
  } else {
    k_local = alloc(call, MemoryCategory::kTransient, local * kv);
    v_local = alloc(call, MemoryCategory::kTransient, local * kv);
    if (in.prefix_tokens > 0) {
      call.store->gather_prefix(in.group, call.layer, in.index, k_local.data(), v_local.data());
    }
  }
  if (k_own != nullptr) {
    call.stream->copy(storage_at(k_local.data(), keys.local_prefix * kv), k_own, t * kv);
    call.stream->copy(storage_at(v_local.data(), keys.local_prefix * kv), v_own, t * kv);
  }
  if (in.cp == 1) {
    keys.k_all = std::move(k_local);
    keys.v_all = std::move(v_local);
  } else {
    const std::vector<int64_t> pieces = key_pieces(call);
    keys.k_all = alloc(call, MemoryCategory::kTransient, keys.tokens * kv);
    keys.v_all = alloc(call, MemoryCategory::kTransient, keys.tokens * kv);
    cp_all_gather_rows(keys.k_all.data(), k_local.data(), pieces, kv, cp_group(call));
    cp_all_gather_rows(keys.v_all.data(), v_local.data(), pieces, kv, cp_group(call));
  }
  keys.k = keys.k_all.data();
  keys.v = keys.v_all.data();
  return keys;
}

AttentionShape attention_shape(const LayerDims& dims, int64_t q_tokens, int64_t kv_tokens) {
  return AttentionShape{q_tokens, kv_tokens, dims.heads, dims.kv_heads, dims.head_dim};
}

}  // namespace

LayerDims layer_dims(const ModelConfig& model) {
  LayerDims dims;
  dims.hidden = model.hidden;
  dims.ffn = model.ffn_hidden;
  dims.heads = model.heads;
  dims.kv_heads = model.kv_heads;
  dims.head_dim = model.head_dim;
  dims.eps = static_cast<float>(model.rms_norm_eps);
  dims.rope_theta = model.rope_theta;
  return dims;
}

void layer_forward(float* out, LayerActs* a, const LayerTensors& w, const LayerCall& call,
                   MemoryCategory cat, bool store_kv) {
  const LayerDims& dims = *call.dims;
  const ChunkInputs& in = *call.inputs;
  Stream& s = *call.stream;
  const int64_t t = static_cast<int64_t>(in.ids.size());
  const int64_t h = dims.hidden, f = dims.ffn, q = dims.q_width(), kv = dims.kv_width();
  CF_CHECK(!in.dependent || call.store != nullptr) << "a dependent piece needs the state store";
  CF_CHECK(in.cp > 1 || in.chunk_tokens == t)
      << t << " rows of a " << in.chunk_tokens << "-token chunk without context parallelism";
  // K/V offload: the prefix comes back from the host pool beside the projections below.
  std::optional<StateStore::Rows> prefix;
  if (in.prefix_tokens > 0 && offloaded(call)) {
    prefix = call.store->fetch_keys(in.group, call.layer, in.index, /*own=*/false, t, call.tracker);
  }

  // Attention block.
  a->rstd1 = alloc(call, cat, t);
  a->xn1 = alloc(call, cat, t * h);
  s.rmsnorm_forward(a->xn1.data(), a->rstd1.data(), a->x, w[kAttnNorm], t, h, dims.eps);
  a->q = alloc(call, cat, t * q);
  s.linear_forward(a->q.data(), a->xn1.data(), w[kWq], w[kBq], t, h, q);
  s.rope_forward(a->q.data(), a->q.data(), in.positions.data(), t, dims.heads, dims.head_dim,
                 dims.rope_theta);
  // A dependent piece's own K/V are transient here: the store holds them.
  const MemoryCategory kv_cat = in.dependent ? MemoryCategory::kTransient : cat;
  FloatBuffer k = alloc(call, kv_cat, t * kv), v = alloc(call, kv_cat, t * kv);
  s.linear_forward(k.data(), a->xn1.data(), w[kWk], w[kBk], t, h, kv);
  s.linear_forward(v.data(), a->xn1.data(), w[kWv], w[kBv], t, h, kv);
  s.rope_forward(k.data(), k.data(), in.positions.data(), t, dims.kv_heads, dims.head_dim,
                 dims.rope_theta);
  if (in.dependent && store_kv) {
    call.store->put(in.group, call.layer, in.index, k.data(), v.data(), t, in.chunk_tokens,
                    in.sequence_tokens);
  }
  {
    Keys keys = gather_keys(call, k.data(), v.data(), std::move(prefix));
    a->attn = alloc(call, cat, t * q);
    a->lse = alloc(call, cat, t * dims.heads);
    s.attention_forward(a->attn.data(), a->lse.data(), a->q.data(), keys.k, keys.v,
                        in.segments.data(), static_cast<int64_t>(in.segments.size()),
                        attention_shape(dims, t, keys.tokens));
  }
  if (!in.dependent) {
    a->k = std::move(k);
    a->v = std::move(v);
  }
  a->h1 = alloc(call, cat, t * h);
  s.linear_forward(a->h1.data(), a->attn.data(), w[kWo], nullptr, t, q, h);
  s.residual_add(a->h1.data(), a->x, t * h);

  // MLP block.
  a->rstd2 = alloc(call, cat, t);
  a->xn2 = alloc(call, cat, t * h);
  s.rmsnorm_forward(a->xn2.data(), a->rstd2.data(), a->h1.data(), w[kMlpNorm], t, h, dims.eps);
  a->gate = alloc(call, cat, t * f);
  a->up = alloc(call, cat, t * f);
  a->act = alloc(call, cat, t * f);
  s.linear_forward(a->gate.data(), a->xn2.data(), w[kWGate], nullptr, t, h, f);
  s.linear_forward(a->up.data(), a->xn2.data(), w[kWUp], nullptr, t, h, f);
  s.swiglu_forward(a->act.data(), a->gate.data(), a->up.data(), t * f);
  s.linear_forward(out, a->act.data(), w[kWDown], nullptr, t, f, h);
  s.residual_add(out, a->h1.data(), t * h);
}

void layer_backward(float* dx, const float* dout, const LayerActs& a, const LayerTensors& w,
                    const LayerTensors& g, const LayerCall& call) {
  const LayerDims& dims = *call.dims;
  const ChunkInputs& in = *call.inputs;
  Stream& s = *call.stream;
  const int64_t t = static_cast<int64_t>(in.ids.size());
  const int64_t h = dims.hidden, f = dims.ffn, q = dims.q_width(), kv = dims.kv_width();
  constexpr MemoryCategory kTmp = MemoryCategory::kTransient;
  // K/V offload: the piece's keys and the dK/dV accumulators come back from the host pool
  // beside the MLP block's backward.
  std::optional<StateStore::Rows> stored;
  StateStore::Gradients accumulated;
  if (offloaded(call)) {
    stored = call.store->fetch_keys(in.group, call.layer, in.index, /*own=*/true, 0, call.tracker);
    accumulated = call.store->fetch_gradients(in.group, call.layer, in.index, call.tracker);
  }

  // MLP block: out = h1 + Wdown·act.
  FloatBuffer dh1 = alloc(call, kTmp, t * h);  // (t, h) starts as the residual path's dout
  s.copy(dh1.data(), dout, t * h);
  {
    FloatBuffer dact = alloc(call, kTmp, t * f);
    s.linear_backward(dact.data(), g[kWDown], nullptr, dout, a.act.data(), w[kWDown], t, f, h);
    FloatBuffer dgate = alloc(call, kTmp, t * f), dup = alloc(call, kTmp, t * f);
    s.swiglu_backward(dgate.data(), dup.data(), dact.data(), a.gate.data(), a.up.data(), t * f);
    dact.reset();
    FloatBuffer dxn2 = alloc(call, kTmp, t * h);
    s.linear_backward(dxn2.data(), g[kWGate], nullptr, dgate.data(), a.xn2.data(), w[kWGate], t, h,
                      f);
    s.linear_backward(dxn2.data(), g[kWUp], nullptr, dup.data(), a.xn2.data(), w[kWUp], t, h, f);
    s.rmsnorm_backward(dh1.data(), g[kMlpNorm], dxn2.data(), a.h1.data(), w[kMlpNorm],
                       a.rstd2.data(), t, h);
  }

  // Attention block: h1 = x + Wo·attn.
  FloatBuffer dattn = alloc(call, kTmp, t * q);
  s.linear_backward(dattn.data(), g[kWo], nullptr, dh1.data(), a.attn.data(), w[kWo], t, q, h);
  const float* k_own = a.k.data();
  const float* v_own = a.v.data();
  if (in.dependent) {  // the store's (fetched with the prefix when offloaded)
    k_own = stored ? nullptr : call.store->k(in.group, call.layer, in.index);
    v_own = stored ? nullptr : call.store->v(in.group, call.layer, in.index);
  }
  Keys keys = gather_keys(call, k_own, v_own, std::move(stored));
  const int64_t local_prefix = keys.local_prefix;
  FloatBuffer dq = alloc(call, kTmp, t * q);
  FloatBuffer dk_all = alloc(call, kTmp, keys.tokens * kv);  // (p + T, G)
  FloatBuffer dv_all = alloc(call, kTmp, keys.tokens * kv);
  s.attention_backward(dq.data(), dk_all.data(), dv_all.data(), dattn.data(), a.q.data(), keys.k,
                       keys.v, a.attn.data(), a.lse.data(), in.segments.data(),
                       static_cast<int64_t>(in.segments.size()),
                       attention_shape(dims, t, keys.tokens));
  keys = Keys{};
  dattn.reset();
  if (in.cp > 1) {
    // This rank's queries gave dK/dV for every gathered key: summed over the CP ranks, each
    // keeps the rows it holds, (local_prefix + t, G) — the store's prefix rows, then its own.
    const std::vector<int64_t> pieces = key_pieces(call);
    FloatBuffer dk_local = alloc(call, kTmp, (local_prefix + t) * kv);
    FloatBuffer dv_local = alloc(call, kTmp, (local_prefix + t) * kv);
    cp_reduce_scatter_rows(dk_local.data(), dk_all.data(), pieces, kv, cp_group(call));
    cp_reduce_scatter_rows(dv_local.data(), dv_all.data(), pieces, kv, cp_group(call));
    dk_all = std::move(dk_local);
    dv_all = std::move(dv_local);
  }
  float* dk = storage_at(dk_all.data(), local_prefix * kv);  // (t, G): this piece's own rows
  float* dv = storage_at(dv_all.data(), local_prefix * kv);
  if (in.dependent) {
    // Prefix rows go to the earlier pieces; later pieces' contributions to ours come back.
    call.store->backward_gradients(in.group, call.layer, in.index, dk_all.data(), dv_all.data(), dk,
                                   dv, &accumulated);
  }
  FloatBuffer dq_pre = alloc(call, kTmp, t * q), dk_pre = alloc(call, kTmp, t * kv);
  s.rope_backward(dq_pre.data(), dq.data(), in.positions.data(), t, dims.heads, dims.head_dim,
                  dims.rope_theta);
  s.rope_backward(dk_pre.data(), dk, in.positions.data(), t, dims.kv_heads, dims.head_dim,
                  dims.rope_theta);
  dq.reset();
  FloatBuffer dxn1 = alloc(call, kTmp, t * h);
  s.linear_backward(dxn1.data(), g[kWq], g[kBq], dq_pre.data(), a.xn1.data(), w[kWq], t, h, q);
  s.linear_backward(dxn1.data(), g[kWk], g[kBk], dk_pre.data(), a.xn1.data(), w[kWk], t, h, kv);
  s.linear_backward(dxn1.data(), g[kWv], g[kBv], dv, a.xn1.data(), w[kWv], t, h, kv);
  s.copy(dx, dh1.data(), t * h);
  s.rmsnorm_backward(dx, g[kAttnNorm], dxn1.data(), a.x, w[kAttnNorm], a.rstd1.data(), t, h);
}

}  // namespace cf

// Memory formulas: Korthikanti et al. 2022 (arXiv:2205.05198, §4 and Table 2) per-layer
// activations adapted to chunk tokens, grouped-query attention, SwiGLU and FlashAttention;
// model states after Megatron-LM's distributed-optimizer table. Sources beside each formula.
#include "sim/memory_model.h"

#include <cmath>

#include "core/check.h"
#include "core/numeric.h"
#include "sim/plan/plan_index.h"

namespace cf {
namespace {}  // namespace

ActivationShape ActivationShape::of(const ModelConfig& model) {
  ActivationShape shape;
  shape.hidden = model.hidden;
  shape.heads = model.heads;
  shape.kv_heads = model.kv_heads;
  shape.head_dim = model.head_dim;
  shape.ffn_hidden = model.ffn_hidden;
  // SwiGLU: gate, up, act(gate)·up — each (tokens, f); GeLU: its input and the second
  // linear's input (Korthikanti et al. 2022 §4.1).
  shape.mlp_saved_tensors = model.gpt() ? 2 : 3;
  shape.dropout = model.dropout > 0;  // Llama / Qwen2 fine-tuning: none; Megatron GPT: 0.1
  shape.flash_attention = model.flash_attention;
  return shape;
}

// Korthikanti et al. 2022 §4.1, one layer, s tokens, b = 1, 2-byte activations:
//   attention 11sh + 5as² = QKV input 2sh + Q,K 4sh + V 2sh + out-proj input 2sh
//                           + dropout mask sh, + softmax 2as² + its mask as² + its output 2as²
//   MLP 19sh = input 2sh + GeLU input 8sh + 2nd linear input 8sh + dropout mask sh
//   two LayerNorm inputs 4sh                              => sh(34 + 5as/h)
// Adapted per token: K and V are g·d_h wide (GQA), the MLP keeps `mlp_saved_tensors`
// (tokens, f) tensors (GeLU: 2 → 16sh for f = 4h; SwiGLU: 3), dropout masks only with
// dropout. With FlashAttention the as² terms vanish and an fp32 log-sum-exp (4 B per head
// per token) is kept instead [derived, docs/COSTS-REFERENCE.md §2.1].
// Table 2: without SP the norm inputs, QKV input, MLP input and dropout masks (10sh) are
// replicated on every TP rank and the rest is /t; with SP everything is /t. Selective
// recompute drops the core-attention terms (as² or LSE); full recompute keeps only the
// layer input, 2sh (/t with SP).
double layer_activation_bytes(const ActivationShape& shape, int64_t tokens, int tp, bool sp,
                              Recompute recompute, bool kv_in_store) {
  CF_CHECK_GT(tp, 0);
  const double s = static_cast<double>(tokens);
  const double h = static_cast<double>(shape.hidden);
  const double sp_div = sp ? tp : 1;
  if (recompute == Recompute::kFull) return 2.0 * s * h / sp_div;

  const double heads_local = static_cast<double>(ceil_div(shape.heads, tp));
  const double kv_heads_local = static_cast<double>(ceil_div(shape.kv_heads, tp));
  const double q_local = heads_local * shape.head_dim;      // a·d_h / t
  const double kv_local = kv_heads_local * shape.head_dim;  // g·d_h / t (≥ d_h)
  const double f_local = static_cast<double>(ceil_div(shape.ffn_hidden, tp));

  // Replicated across TP unless SP: 2 norm inputs (4h), QKV input (2h), MLP input (2h),
  // dropout masks (2 × 1 B × h).
  const double replicated = (4 * h + 2 * h + 2 * h + (shape.dropout ? 2 * h : 0)) / sp_div;
  // Split across TP: Q (2·Q), K and V (4·kv), attention output = out-proj input (2·Q),
  // MLP intermediates (2·f each).
  const double split = 2 * q_local + (kv_in_store ? 0 : 4 * kv_local) + 2 * q_local +
                       2.0 * shape.mlp_saved_tensors * f_local;
  double bytes = s * (replicated + split);
  if (recompute == Recompute::kNone) {
    bytes += shape.flash_attention ? s * 4 * heads_local       // fp32 LSE per head per token
                                   : 5 * heads_local * s * s;  // softmax, mask, dropout out
  }
  return bytes;
}

int64_t stage_local_parameters(const ModelConfig& model, int tp, const LayerSplit& split,
                               int stage) {
  CF_CHECK(split.layers == model.layers && !layer_split_error(split))
      << model.layers << " layers over pp " << split.pp << " × vpp " << split.vpp;
  const int pp = split.pp;
  const int64_t norm_params = 2 * model.norm_params();  // two norms, replicated over TP
  const int64_t layer_local = ceil_div(model.params_per_layer() - norm_params, tp) + norm_params;
  int64_t params = split.stage_layers(stage) * layer_local;
  const int64_t vocab_local = ceil_div(model.vocab * model.hidden, tp);  // vocab-parallel
  // The embedding; GPT's learned positions are replicated over TP (Megatron-LM's
  // LanguageModelEmbedding: a plain nn.Embedding beside the vocab-parallel one).
  if (stage == 0) params += vocab_local + model.position_params();
  if (stage == pp - 1) {
    params += model.final_norm_params();
    // Untied: the LM head. Tied with pp > 1: Megatron-LM keeps a copy of the embedding on
    // the last stage and all-reduces its gradient with stage 0's.
    if (!model.tied_embeddings || pp > 1) params += vocab_local;
  }
  return params;
}

MemoryModel::MemoryModel(const ModelConfig& model, const ParallelConfig& parallel,
                         const TrainingConfig& training)
    : model_(model),
      parallel_(parallel),
      training_(training),
      shape_(ActivationShape::of(model)),
      split_(layer_split(model.layers, parallel)),
      kv_heads_local_(ceil_div(model.kv_heads, parallel.tp)) {
  const std::optional<SplitError> e = layer_split_error(split_, model.name);
  CF_CHECK(!e) << e->key << ": " << e->message;
}

// Megatron-LM docs/user-guide/features/dist_optimizer.md, bf16 params with fp32 grads:
// 18 B per parameter, or 6 + 12/d with the distributed optimizer (2 weights + 4 grads +
// 12 optimizer: fp32 master, Adam m and v, sharded over d DP ranks); the same table's bf16
// gradient rows give 4 + 12/d (grad_accumulation_dtype bf16: Megatron-Core's DDP with
// grad_reduce_in_fp32 off). With context parallelism the gradients are reduced, and the
// optimizer sharded, over dp·cp ranks (Megatron-Core's data-parallel group with CP).
MemoryBreakdown MemoryModel::model_states(int stage) const {
  const int64_t params = stage_local_parameters(model_, parallel_.tp, split_, stage);
  MemoryBreakdown bytes;
  bytes.weights = 2 * params;
  bytes.gradients = (training_.grad_accumulation_dtype == GradDtype::kBf16 ? 2 : 4) * params;
  bytes.optimizer = parallel_.distributed_optimizer
                        ? ceil_div(12 * params, static_cast<int64_t>(parallel_.dp) * parallel_.cp)
                        : 12 * params;
  return bytes;
}

// Embedding side: token ids, 8 B per token (Megatron-LM theoretical_memory_usage.py, 8·s·b).
// Output side: final-norm and LM-head inputs (4·s·h) and the softmax the vocab-parallel
// cross-entropy keeps (4·s·V/t in fp32), after that file's 4·s·b·h·(1 + V/h) term; the fused
// cross-entropy (Megatron-Core fusions/fused_cross_entropy.py) keeps it in the logits' bf16,
// 2·s·V/t.
int64_t MemoryModel::activation_bytes(const StagePlace& place, int64_t chunk_tokens,
                                      bool kv_in_store) const {
  const int tp = parallel_.tp;
  const int64_t tokens = local_tokens(chunk_tokens);
  double bytes =
      static_cast<double>(place.layers()) *
      layer_activation_bytes(shape_, tokens, tp, parallel_.sp, parallel_.recompute, kv_in_store);
  if (place.first) bytes += 8.0 * tokens;
  if (place.last) {
    bytes += 4.0 * tokens * model_.hidden / (parallel_.sp ? tp : 1);
    const double softmax_bytes = training_.cross_entropy == CrossEntropy::kFused ? 2.0 : 4.0;
    bytes += softmax_bytes * tokens * static_cast<double>(ceil_div(model_.vocab, tp));
  }
  return whole_bytes(bytes);
}

// The stage input is the message that arrived across the boundary (plan_index.h).
int64_t MemoryModel::stage_input_bytes(int64_t tokens) const {
  return boundary_bytes(local_tokens(tokens),
                        WireFormat{model_.hidden, 2, parallel_.sp ? parallel_.tp : 1});
}

// K and V per layer: 2 tensors × tokens × (KV heads on this GPU × d_h) × 2 B (bf16).
// With context parallelism each CP rank keeps the K/V of its own tokens (the all-gather and
// ring variants gather or pass them again when a later chunk reads them).
int64_t MemoryModel::kv_bytes(const StagePlace& place, int64_t tokens) const {
  return kv_bytes_of_layers(place.layers(), tokens);
}

int64_t MemoryModel::kv_bytes_of_layers(int64_t layers, int64_t tokens) const {
  return layers * 2 * local_tokens(tokens) * kv_heads_local_ * model_.head_dim * 2;
}

// dK and dV accumulated in fp32 (docs/COSTS-REFERENCE.md §5, [derived]): as kv_bytes at 4 B.
int64_t MemoryModel::dkv_bytes(const StagePlace& place, int64_t tokens) const {
  return 2 * kv_bytes(place, tokens);
}

// [derived] A forward that keeps no activations (F*, or any forward under full recompute)
// still holds one layer's tensors while it runs; a backward holds the gradients of one
// layer's saved tensors (same size as the tensors) and, under full recompute, the layer it
// recomputed. On the last stage the bf16 logits (or their gradient) live during the op.
int64_t MemoryModel::transient_bytes(Pass pass, int64_t chunk_tokens, bool last) const {
  const int64_t tokens = local_tokens(chunk_tokens);
  const double one_layer =
      layer_activation_bytes(shape_, tokens, parallel_.tp, parallel_.sp, Recompute::kNone);
  const bool full = parallel_.recompute == Recompute::kFull;
  double bytes = 0;
  if (pass == Pass::kBackward) {
    bytes = full ? 2 * one_layer : one_layer;
  } else if (pass == Pass::kForwardKeepKV || full) {
    bytes = one_layer;
  }
  if (last) bytes += 2.0 * tokens * static_cast<double>(ceil_div(model_.vocab, parallel_.tp));
  return whole_bytes(bytes);
}

}  // namespace cf

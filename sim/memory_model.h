// The memory formulas (DESIGN.md §4.5): bytes one GPU of a pipeline stage holds — model states,
// activations of a chunk under a recompute policy, the chunk state store (K/V, fp32 dK/dV)
// and op transients. Formulas only; their replay over simulated time is memory_timeline.h.
#pragma once

#include <cstdint>

#include "core/numeric.h"
#include "models/model.h"
#include "sim/plan/job.h"
#include "sim/plan/layer_split.h"
#include "sim/plan/plan.h"
#include "sim/plan/plan_index.h"
#include "traces/kinds.h"

namespace cf {

// The tensors of one transformer layer that decide its activation bytes. Built from a
// ModelConfig (Llama/Qwen: SwiGLU, no dropout, FlashAttention) or by hand for GPT-style
// layers (GeLU MLP, dropout, softmax materialised) as in Korthikanti et al. 2022.
struct ActivationShape {
  int64_t hidden = 0;           // h
  int64_t heads = 0;            // a
  int64_t kv_heads = 0;         // g
  int64_t head_dim = 0;         // d_h
  int64_t ffn_hidden = 0;       // f
  int mlp_saved_tensors = 3;    // (tokens, f) tensors the MLP saves: SwiGLU 3, GeLU 2
  bool dropout = false;         // dropout masks after attention and MLP (1 B per element)
  bool flash_attention = true;  // scores never materialised; fp32 log-sum-exp kept instead

  static ActivationShape of(const ModelConfig& model);
};

// Bytes of activations one layer keeps for backward, for `tokens` tokens on one GPU of a
// TP group of `tp` (sequence parallel or not), under `recompute`. `kv_in_store`: K and V
// are held by the chunk state store instead (dependent chunks), so they are left out here.
// With context parallelism the caller passes the tokens one CP rank holds.
double layer_activation_bytes(const ActivationShape& shape, int64_t tokens, int tp, bool sp,
                              Recompute recompute, bool kv_in_store = false);

// Parameters one GPU of `stage` holds (its TP shard of all its model chunks): the stage's
// layers (split.stage_layers), the embedding on stage 0, the final norm and LM head on stage
// pp-1 (a copy of the embedding there when tied and pp > 1, as Megatron-LM does).
int64_t stage_local_parameters(const ModelConfig& model, int tp, const LayerSplit& split,
                               int stage);

// Megatron-LM's accounting on GPUs: the byte counts of one stage's GPU (memory_source.h turns
// them into what each op allocates).
class MemoryModel {
 public:
  // The stages' layers are parallel's split (layer_split.h), which must be valid for
  // model.layers (CHECKed).
  MemoryModel(const ModelConfig& model, const ParallelConfig& parallel,
              const TrainingConfig& training = {});

  // Per-GPU model states of a stage (weights, gradients, optimizer; the other categories 0):
  // bf16 weights, gradients in training.grad_accumulation_dtype, optimizer states (fp32
  // master weights, Adam m and v), sharded over DP × CP with the distributed optimizer.
  MemoryBreakdown model_states(int stage) const;
  // Activations of one chunk's pass over the model chunk at `place` (its layers), plus the
  // token ids on the first virtual stage and the logits kept for the loss's backward on the
  // last one. Every `tokens` here is the chunk's: with context parallelism each GPU holds
  // tokens / cp of them (and of its K/V).
  int64_t activation_bytes(const StagePlace& place, int64_t tokens, bool kv_in_store) const;
  // The stage input an F* chunk keeps for its recompute: (tokens, h) bf16, /tp with SP.
  int64_t stage_input_bytes(int64_t tokens) const;
  // K and V (bf16) of `tokens` tokens over the layers of `place`, this GPU's KV heads.
  int64_t kv_bytes(const StagePlace& place, int64_t tokens) const;
  // The same for `layers` layers (the cost of moving them: sim/offload_cost.h).
  int64_t kv_bytes_of_layers(int64_t layers, int64_t tokens) const;
  // Accumulated dK and dV (fp32) of `tokens` tokens over the layers of `place`.
  int64_t dkv_bytes(const StagePlace& place, int64_t tokens) const;
  // Working memory of one op while it runs: gradients of one layer's activations during a
  // backward (plus the recomputed layer under full recompute); logits on the last stage.
  int64_t transient_bytes(Pass pass, int64_t tokens, bool last) const;

  const ModelConfig& model() const { return model_; }
  const ParallelConfig& parallel() const { return parallel_; }

 private:
  int64_t local_tokens(int64_t tokens) const { return ceil_div(tokens, parallel_.cp); }

  ModelConfig model_;
  ParallelConfig parallel_;
  TrainingConfig training_;
  ActivationShape shape_;
  LayerSplit split_;
  int64_t kv_heads_local_;  // ceil(g / tp): KV heads are replicated when tp > g
};

}  // namespace cf

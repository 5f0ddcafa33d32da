// A decoder-only LLM architecture (Llama / Qwen2 family, and GPT as Megatron-LM trains it) and
// the quantities derived from it:
// parameter counts, FLOPs per token and per query-key pair, K/V bytes per token.
// Not the executor's weights (executor/) and not costs in time (sim/cost).
#pragma once

#include <cstdint>
#include <string>

#include "core/status.h"

namespace cf {

struct ModelConfig {
  std::string name;
  std::string architecture;      // "llama" | "qwen2" | "gpt"
  int64_t hidden = 0;            // h
  int64_t ffn_hidden = 0;        // f (SwiGLU intermediate size; GPT: the GeLU MLP's, 4h)
  int64_t layers = 0;            // L
  int64_t heads = 0;             // a (query heads)
  int64_t kv_heads = 0;          // g (key/value heads, grouped-query attention)
  int64_t head_dim = 0;          // d_h
  int64_t vocab = 0;             // V
  bool qkv_bias = false;         // Qwen2 and GPT: true
  bool tied_embeddings = false;  // LM head shares the embedding matrix
  double rope_theta = 10000.0;
  double rms_norm_eps = 1e-6;
  int64_t max_position = 0;  // max_position_embeddings (GPT: rows of the learned positions)
  // How core attention runs: FlashAttention (scores never stored) or the unfused
  // QKᵀ → softmax → dropout → PV path that keeps the scores (Megatron-LM before FlashAttention,
  // as Korthikanti et al. 2022 measured). Model YAML key `attention: flash | unfused`.
  bool flash_attention = true;
  double dropout = 0;  // attention and hidden dropout probability (YAML `dropout`)

  // GPT (Megatron-LM's GPTModel): LayerNorm with bias, GeLU MLP with biases, learned absolute
  // positions, tied embeddings; Llama / Qwen2: RMSNorm, SwiGLU, RoPE.
  bool gpt() const { return architecture == "gpt"; }
  // Weight matrices of h·f in the MLP: SwiGLU gate, up, down (3); GeLU fc1, fc2 (2).
  int64_t mlp_matrices() const { return gpt() ? 2 : 3; }
  // Parameters of one norm: RMSNorm a weight (h); LayerNorm a weight and a bias (2h).
  int64_t norm_params() const { return gpt() ? 2 * hidden : hidden; }

  int64_t q_width() const { return heads * head_dim; }      // Q = a·d_h
  int64_t kv_width() const { return kv_heads * head_dim; }  // g·d_h

  // Parameters of one transformer layer: QKV (+bias), output projection, the MLP, 2 norms
  // (GPT: every linear layer with its bias).
  int64_t params_per_layer() const;
  int64_t embedding_params() const;  // V·h (+ max_position·h of learned positions for GPT)
  int64_t position_params() const { return gpt() ? max_position * hidden : 0; }
  int64_t lm_head_params() const;  // V·h, or 0 when tied
  int64_t final_norm_params() const { return norm_params(); }
  int64_t params_total() const;

  // Forward FLOPs per token of one layer's linear layers (2 FLOPs per multiply-add).
  double linear_flops_per_token_per_layer() const;
  // Forward FLOPs of core attention per unmasked query-key pair in one layer: QKᵀ and PV,
  // 2 matmuls × 2 FLOPs per multiply-add × Q = 4·Q (docs/COSTS-REFERENCE.md §5).
  double attention_flops_per_pair_per_layer() const;
  // Forward FLOPs per token of the LM head (logits).
  double lm_head_flops_per_token() const;
  // K and V of one token across all layers, at `bytes_per_element` (2 for bf16).
  int64_t kv_bytes_per_token(int64_t bytes_per_element) const;
};

// Checks sizes are positive and consistent (heads divisible by kv_heads, ...).
Status validate_model(const ModelConfig& model, const std::string& origin);

// `name_or_path`: a name under models/ (embedded), a model YAML path, or a Hugging Face
// config.json path (LlamaForCausalLM / Qwen2ForCausalLM).
StatusOr<ModelConfig> load_model(const std::string& name_or_path);
StatusOr<ModelConfig> parse_model_yaml(const std::string& text, const std::string& origin);
StatusOr<ModelConfig> import_hf_config(const std::string& json_text, const std::string& origin);

}  // namespace cf

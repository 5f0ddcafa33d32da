// A decoder-only LLM architecture (Llama / Qwen2 family) and the quantities derived from it:
// parameter counts, FLOPs per token and per query-key pair, K/V bytes per token.
// Not the executor's weights (executor/) and not costs in time (sim/cost).
#pragma once

#include <cstdint>
#include <string>

#include "core/status.h"

namespace cf {

struct ModelConfig {
  std::string name;
  std::string architecture;      // "llama" | "qwen2"
  int64_t hidden = 0;            // h
  int64_t ffn_hidden = 0;        // f (SwiGLU intermediate size)
  int64_t layers = 0;            // L
  int64_t heads = 0;             // a (query heads)
  int64_t kv_heads = 0;          // g (key/value heads, grouped-query attention)
  int64_t head_dim = 0;          // d_h
  int64_t vocab = 0;             // V
  bool qkv_bias = false;         // Qwen2: true
  bool tied_embeddings = false;  // LM head shares the embedding matrix
  double rope_theta = 10000.0;
  double rms_norm_eps = 1e-6;
  int64_t max_position = 0;  // max_position_embeddings, informational

  int64_t q_width() const { return heads * head_dim; }      // Q = a·d_h
  int64_t kv_width() const { return kv_heads * head_dim; }  // g·d_h

  // Parameters of one transformer layer: QKV (+bias), output projection, SwiGLU MLP, 2 RMSNorms.
  int64_t params_per_layer() const;
  int64_t embedding_params() const;  // V·h
  int64_t lm_head_params() const;    // V·h, or 0 when tied
  int64_t final_norm_params() const { return hidden; }
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

// Derived quantities of a decoder-only Llama/Qwen2 model (parameters, FLOPs, K/V bytes) and
// the checks every reader applies. Reading YAML and config.json lives in model_yaml.cc and
// hf_import.cc; nothing here knows about files.
#include "models/model.h"

#include <fmt/format.h>

#include <iterator>

#include "core/limits.h"
#include "models/model_checks.h"

namespace cf {

// One layer of the Hugging Face LlamaForCausalLM / Qwen2ForCausalLM modules:
//   q_proj (h → Q), k_proj and v_proj (h → g·d_h each), bias on all three for Qwen2,
//   o_proj (Q → h, no bias), gate_proj and up_proj (h → f), down_proj (f → h),
//   input_layernorm and post_attention_layernorm (RMSNorm weight of h each).
// Matches Megatron's count with SwiGLU and GQA (docs/COSTS-REFERENCE.md §2.2) plus the biases.
// GPT (Megatron-LM's GPTModel, every linear layer with a bias): QKV h·3h + 3h, projection
// h² + h, fc1 h·f + f, fc2 f·h + h, two LayerNorms 4h — 12h² + 13h for f = 4h, Narayanan et
// al. 2021 (arXiv:2104.04473) §5.1's per-layer count.
int64_t ModelConfig::params_per_layer() const {
  const int64_t qkv_out = q_width() + 2 * kv_width();  // Q + 2·g·d_h
  const int64_t qkv_weights = hidden * qkv_out;
  const int64_t qkv_biases = qkv_bias ? qkv_out : 0;
  const int64_t out_proj = q_width() * hidden;               // Q·h
  const int64_t mlp = mlp_matrices() * hidden * ffn_hidden;  // SwiGLU 3 matrices, GeLU 2
  const int64_t norms = 2 * norm_params();
  const int64_t other_biases = gpt() ? hidden + ffn_hidden + hidden : 0;  // proj, fc1, fc2
  return qkv_weights + qkv_biases + out_proj + mlp + norms + other_biases;
}

int64_t ModelConfig::embedding_params() const { return vocab * hidden + position_params(); }

int64_t ModelConfig::lm_head_params() const { return tied_embeddings ? 0 : vocab * hidden; }

// N = L·(per layer) + embedding + LM head (0 when tied) + final RMSNorm. Equals the
// "safetensors total" Hugging Face reports for each shipped checkpoint (tests/models).
int64_t ModelConfig::params_total() const {
  return layers * params_per_layer() + embedding_params() + lm_head_params() + final_norm_params();
}

// 2 FLOPs per multiply-add over the layer's GEMMs, per token (Megatron's counter,
// megatron/training/training.py num_floating_point_operations, forward third of its
// 6·[h·(Q + 2·g·d_h) + Q·h] + 6·h·f·3; docs/COSTS-REFERENCE.md §2.2):
//   QKV h·(Q + 2·g·d_h), output projection Q·h, SwiGLU 3·h·f (GeLU MLP 2·h·f).
// Bias additions, norms and activations are elementwise and not counted (as Megatron).
double ModelConfig::linear_flops_per_token_per_layer() const {
  const double h = static_cast<double>(hidden);
  const double qkv_macs = h * static_cast<double>(q_width() + 2 * kv_width());
  const double out_macs = static_cast<double>(q_width()) * h;
  const double mlp_macs = static_cast<double>(mlp_matrices()) * h * static_cast<double>(ffn_hidden);
  return 2.0 * (qkv_macs + out_macs + mlp_macs);
}

// QKᵀ (d_h MACs per head per pair) and PV (d_h MACs per head per pair) over a heads:
// 2 matmuls × 2 FLOPs/MAC × a·d_h = 4·Q per unmasked (query, key) pair. Over a causal
// sequence of s tokens (s²/2 pairs) this gives Megatron's 6·Q·s² for fwd+bwd ÷ 3 = 2·Q·s²
// forward (docs/COSTS-REFERENCE.md §2.2 and §5).
double ModelConfig::attention_flops_per_pair_per_layer() const {
  return 4.0 * static_cast<double>(q_width());
}

// Logits: one GEMM h → V per token, 2·h·V FLOPs (Megatron's 6·h·V for fwd+bwd ÷ 3).
double ModelConfig::lm_head_flops_per_token() const {
  return 2.0 * static_cast<double>(hidden) * static_cast<double>(vocab);
}

// K and V (g·d_h elements each) in every layer: 2·L·g·d_h elements per token
// (docs/COSTS-REFERENCE.md §5, "memory for chunk-dependent state"). Qwen2.5-7B bf16: 57,344 B.
int64_t ModelConfig::kv_bytes_per_token(int64_t bytes_per_element) const {
  return 2 * layers * kv_width() * bytes_per_element;
}

namespace models_internal {

std::optional<ModelProblem> find_model_problem(const ModelConfig& model) {
  if (model.architecture != kLlama && model.architecture != kQwen2 && model.architecture != kGpt) {
    return ModelProblem{"architecture", fmt::format("must be {}, {} or {}, got \"{}\"", kLlama,
                                                    kQwen2, kGpt, model.architecture)};
  }
  const std::pair<const char*, int64_t> sizes[] = {
      {"hidden", model.hidden}, {"ffn_hidden", model.ffn_hidden}, {"layers", model.layers},
      {"heads", model.heads},   {"kv_heads", model.kv_heads},     {"head_dim", model.head_dim},
      {"vocab", model.vocab}};
  for (const auto& [key, value] : sizes) {
    if (value <= 0) return ModelProblem{key, fmt::format("must be positive, got {}", value)};
  }
  // Bounded before any product of them is formed (core/limits.h): past these, the products
  // below and the simulator's token × channel × layer products could leave int64.
  const std::pair<const char*, int64_t> bounds[] = {
      {"hidden", limits::kMaxHidden},  {"ffn_hidden", limits::kMaxFfnHidden},
      {"layers", limits::kMaxLayers},  {"heads", limits::kMaxHeads},
      {"kv_heads", limits::kMaxHeads}, {"head_dim", limits::kMaxHeadDim},
      {"vocab", limits::kMaxVocab}};
  for (size_t i = 0; i < std::size(bounds); ++i) {
    if (sizes[i].second > bounds[i].second) {
      return ModelProblem{sizes[i].first,
                          fmt::format("must be at most {} ({}), got {}", bounds[i].second,
                                      limits::kMaxModelWhy, sizes[i].second)};
    }
  }
  if (model.heads * model.head_dim > limits::kMaxHidden) {
    return ModelProblem{
        "head_dim", fmt::format("heads × head_dim = {} × {} must be at most {} ({})", model.heads,
                                model.head_dim, limits::kMaxHidden, limits::kMaxModelWhy)};
  }
  if (model.max_position > limits::kMaxTokens) {
    return ModelProblem{"max_position",
                        fmt::format("must be at most {} ({}), got {}", limits::kMaxTokens,
                                    limits::kMaxTokensWhy, model.max_position)};
  }
  // Grouped-query attention: each K/V head serves a/g query heads.
  if (model.heads % model.kv_heads != 0) {
    return ModelProblem{"kv_heads", fmt::format("heads ({}) must be a multiple of kv_heads ({})",
                                                model.heads, model.kv_heads)};
  }
  // RoPE rotates pairs of channels, so a head has an even width (GPT has no RoPE).
  if (!model.gpt() && model.head_dim % 2 != 0) {
    return ModelProblem{"head_dim",
                        fmt::format("must be even for rotary embeddings, got {}", model.head_dim)};
  }
  // Both Hugging Face architectures build Qwen2's q/k/v with bias and Llama's without
  // (Llama's attention_bias would also add an o_proj bias, which this model does not have).
  // GPT has a bias on every linear layer.
  const bool want_bias = model.architecture == kQwen2 || model.gpt();
  if (model.qkv_bias != want_bias) {
    return ModelProblem{"qkv_bias", fmt::format("the {} architecture has qkv_bias: {}",
                                                model.architecture, want_bias)};
  }
  if (model.gpt()) {
    // Learned absolute positions: the table's rows bound the sequence.
    if (model.max_position <= 0) {
      return ModelProblem{"max_position",
                          fmt::format("gpt learns one position embedding per position up to "
                                      "max_position, which must be positive (got {})",
                                      model.max_position)};
    }
  } else if (!(model.rope_theta > 0)) {
    return ModelProblem{"rope_theta", fmt::format("must be positive, got {}", model.rope_theta)};
  }
  if (!model.gpt() && !(model.rms_norm_eps > 0 && model.rms_norm_eps < 1)) {
    return ModelProblem{"rms_norm_eps",
                        fmt::format("must be in (0, 1), got {}", model.rms_norm_eps)};
  }
  if (!(model.dropout >= 0 && model.dropout < 1)) {
    return ModelProblem{"dropout", fmt::format("must be in [0, 1), got {}", model.dropout)};
  }
  if (model.max_position < 0) {
    return ModelProblem{"max_position",
                        fmt::format("must not be negative, got {}", model.max_position)};
  }
  // Every dimension is bounded above, so the count itself stays far inside int64.
  if (model.params_total() > limits::kMaxParameters) {
    return ModelProblem{
        "layers", fmt::format("the model has {} parameters, more than {} ({})",
                              model.params_total(), limits::kMaxParameters, limits::kMaxModelWhy)};
  }
  return std::nullopt;
}

}  // namespace models_internal

Status validate_model(const ModelConfig& model, const std::string& origin) {
  if (auto problem = models_internal::find_model_problem(model)) {
    return Status::InvalidInput(fmt::format("{}: {}: {}", origin, problem->key, problem->message));
  }
  return Status::Ok();
}

}  // namespace cf

// Imports a Hugging Face config.json (LlamaForCausalLM / Qwen2ForCausalLM) into a ModelConfig.
// Only the keys that shape cost are read; features this project does not model (biases on
// o_proj or the MLP, sliding-window attention, activations other than SiLU) are refused.
#include <fmt/format.h>

#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>

#include "core/json_reader.h"
#include "models/model.h"
#include "models/model_checks.h"

namespace cf {
namespace {

using nlohmann::json;

// The config.json key for each ModelConfig field, for messages about cross-key rules.
std::string hf_key(const std::string& yaml_key) {
  static const std::pair<const char*, const char*> kNames[] = {
      {"architecture", "architectures"},
      {"hidden", "hidden_size"},
      {"ffn_hidden", "intermediate_size"},
      {"layers", "num_hidden_layers"},
      {"heads", "num_attention_heads"},
      {"kv_heads", "num_key_value_heads"},
      {"head_dim", "head_dim"},
      {"vocab", "vocab_size"},
      {"qkv_bias", "attention_bias"},
      {"tied_embeddings", "tie_word_embeddings"},
      {"rope_theta", "rope_theta"},
      {"rms_norm_eps", "rms_norm_eps"},
      {"max_position", "max_position_embeddings"}};
  for (const auto& [ours, theirs] : kNames) {
    if (yaml_key == ours) return theirs;
  }
  return yaml_key;
}

// Strict reads of one top-level key of the config object. `present` keys that are JSON
// null count as absent (transformers writes e.g. "head_dim": null).
class ConfigReader {
 public:
  ConfigReader(const json& root, std::string origin) : root_(root), origin_(std::move(origin)) {}

  bool has(const char* key) const { return root_.contains(key) && !root_.at(key).is_null(); }

  Status error(const std::string& key, const std::string& message) const {
    return Status::InvalidInput(fmt::format("{}: {}: {}", origin_, key, message));
  }

  Status get_int(const char* key, int64_t* out) const {
    if (!has(key)) return Status::Ok();
    const json& value = root_.at(key);
    // An unsigned past int64 (e.g. 18446744073709551615) is no integer of ours either.
    if (!value.is_number_integer() ||
        (value.is_number_unsigned() &&
         value.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))) {
      return error(key, fmt::format("expected an integer, got {}", describe_json(value)));
    }
    *out = value.get<int64_t>();
    return Status::Ok();
  }
  Status require_int(const char* key, int64_t* out) const {
    if (!has(key)) return error(key, "required key is missing");
    return get_int(key, out);
  }
  Status get_number(const char* key, double* out) const {
    if (!has(key)) return Status::Ok();
    const json& value = root_.at(key);
    if (!value.is_number())
      return error(key, fmt::format("expected a number, got {}", describe_json(value)));
    *out = value.get<double>();
    return Status::Ok();
  }
  Status get_bool(const char* key, bool* out) const {
    if (!has(key)) return Status::Ok();
    const json& value = root_.at(key);
    if (!value.is_boolean()) {
      return error(key, fmt::format("expected true or false, got {}", describe_json(value)));
    }
    *out = value.get<bool>();
    return Status::Ok();
  }
  Status get_string(const char* key, std::string* out) const {
    if (!has(key)) return Status::Ok();
    const json& value = root_.at(key);
    if (!value.is_string())
      return error(key, fmt::format("expected a string, got {}", describe_json(value)));
    *out = value.get<std::string>();
    return Status::Ok();
  }

 private:
  const json& root_;
  std::string origin_;
};

// "LlamaForCausalLM" → llama, "Qwen2ForCausalLM" → qwen2, from the `architectures` list.
Status read_architecture(const json& root, const ConfigReader& reader, std::string* out) {
  if (!reader.has("architectures")) return reader.error("architectures", "required key is missing");
  const json& list = root.at("architectures");
  if (!list.is_array() || list.empty()) {
    return reader.error("architectures", fmt::format("expected a non-empty list of strings, got {}",
                                                     describe_json(list)));
  }
  for (const json& entry : list) {
    if (!entry.is_string()) {
      return reader.error("architectures",
                          fmt::format("expected strings, got {}", describe_json(entry)));
    }
    const std::string name = entry.get<std::string>();
    if (name == "LlamaForCausalLM") *out = models_internal::kLlama;
    if (name == "Qwen2ForCausalLM") *out = models_internal::kQwen2;
  }
  if (out->empty()) {
    return reader.error("architectures",
                        fmt::format("unsupported architecture {}; supported: LlamaForCausalLM, "
                                    "Qwen2ForCausalLM",
                                    describe_json(list)));
  }
  return Status::Ok();
}

// A display name: `_name_or_path` when the file carries it, else the folder holding
// config.json (a Hugging Face snapshot is a folder named after the model), else the file stem.
std::string model_name(const ConfigReader& reader, const std::string& origin) {
  std::string name;
  if (reader.get_string("_name_or_path", &name).ok() && !name.empty()) return name;
  const std::filesystem::path path(origin);
  if (path.filename() == "config.json" && path.has_parent_path()) {
    const std::string folder = path.parent_path().filename().string();
    if (!folder.empty() && folder != "." && folder != "..") return folder;
  }
  return path.stem().string();
}

// Cost-relevant features outside this project's model (DESIGN.md §4.7): refused, not ignored.
Status refuse_unmodelled(const ConfigReader& reader, const std::string& architecture) {
  std::string activation = "silu";
  CF_RETURN_IF_ERROR(reader.get_string("hidden_act", &activation));
  if (activation != "silu") {
    return reader.error(
        "hidden_act",
        fmt::format("only the SiLU-gated MLP (\"silu\") is modelled, got \"{}\"", activation));
  }
  bool mlp_bias = false;
  CF_RETURN_IF_ERROR(reader.get_bool("mlp_bias", &mlp_bias));
  if (mlp_bias) return reader.error("mlp_bias", "MLP biases are not modelled");
  if (architecture == models_internal::kLlama) {
    bool attention_bias = false;
    CF_RETURN_IF_ERROR(reader.get_bool("attention_bias", &attention_bias));
    if (attention_bias) {
      return reader.error("attention_bias",
                          "Llama attention biases (q, k, v and o_proj) are not modelled");
    }
  }
  bool sliding_window = false;
  CF_RETURN_IF_ERROR(reader.get_bool("use_sliding_window", &sliding_window));
  if (sliding_window) {
    return reader.error("use_sliding_window", "sliding-window attention is not modelled");
  }
  return Status::Ok();
}

}  // namespace

// Defaults for absent keys are those of transformers' LlamaConfig / Qwen2Config constructors:
// num_key_value_heads = num_attention_heads (Llama) or 32 (Qwen2), head_dim = hidden_size /
// num_attention_heads, tie_word_embeddings false, rope_theta 10000, rms_norm_eps 1e-6,
// max_position_embeddings 2048 (Llama) or 32768 (Qwen2). The sizes themselves are required.
StatusOr<ModelConfig> import_hf_config(const std::string& json_text, const std::string& origin) {
  // Depth-checked and without exceptions; a parse error names the line and column.
  CF_ASSIGN_OR_RETURN(const json root, parse_json(json_text, origin));
  if (!root.is_object()) {
    return Status::InvalidInput(fmt::format("{}: expected a JSON object (a config.json), got {}",
                                            origin, describe_json(root)));
  }
  const ConfigReader reader(root, origin);
  ModelConfig model;
  CF_RETURN_IF_ERROR(read_architecture(root, reader, &model.architecture));
  const bool qwen2 = model.architecture == models_internal::kQwen2;
  model.name = model_name(reader, origin);
  CF_RETURN_IF_ERROR(reader.require_int("hidden_size", &model.hidden));
  CF_RETURN_IF_ERROR(reader.require_int("intermediate_size", &model.ffn_hidden));
  CF_RETURN_IF_ERROR(reader.require_int("num_hidden_layers", &model.layers));
  CF_RETURN_IF_ERROR(reader.require_int("num_attention_heads", &model.heads));
  CF_RETURN_IF_ERROR(reader.require_int("vocab_size", &model.vocab));
  if (model.heads <= 0) {
    return reader.error("num_attention_heads",
                        fmt::format("must be positive, got {}", model.heads));
  }
  model.kv_heads = qwen2 ? 32 : model.heads;
  CF_RETURN_IF_ERROR(reader.get_int("num_key_value_heads", &model.kv_heads));
  if (reader.has("head_dim")) {
    CF_RETURN_IF_ERROR(reader.get_int("head_dim", &model.head_dim));
  } else if (model.hidden % model.heads != 0) {
    return reader.error("num_attention_heads",
                        fmt::format("hidden_size ({}) is not a multiple of num_attention_heads "
                                    "({}) and head_dim is not given",
                                    model.hidden, model.heads));
  } else {
    model.head_dim = model.hidden / model.heads;
  }
  model.qkv_bias = qwen2;  // Qwen2Attention: q/k/v_proj with bias=True; Llama: attention_bias
  model.tied_embeddings = false;
  CF_RETURN_IF_ERROR(reader.get_bool("tie_word_embeddings", &model.tied_embeddings));
  model.rope_theta = 10000.0;
  CF_RETURN_IF_ERROR(reader.get_number("rope_theta", &model.rope_theta));
  model.rms_norm_eps = 1e-6;
  CF_RETURN_IF_ERROR(reader.get_number("rms_norm_eps", &model.rms_norm_eps));
  model.max_position = qwen2 ? 32768 : 2048;
  CF_RETURN_IF_ERROR(reader.get_int("max_position_embeddings", &model.max_position));
  CF_RETURN_IF_ERROR(refuse_unmodelled(reader, model.architecture));
  if (auto problem = models_internal::find_model_problem(model)) {
    return reader.error(hf_key(problem->key), problem->message);
  }
  return model;
}

}  // namespace cf

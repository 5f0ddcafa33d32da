// Reading a model: the strict model YAML (models/*.yaml) and the dispatch of load_model
// between an embedded name, a YAML path and a Hugging Face config.json (hf_import.cc).
#include <fmt/format.h>

#include <string_view>

#include "core/resources.h"
#include "core/yaml_reader.h"
#include "models/model.h"
#include "models/model_checks.h"

namespace cf {
namespace {

bool ends_with(std::string_view text, std::string_view suffix) {
  return text.size() >= suffix.size() && text.substr(text.size() - suffix.size()) == suffix;
}

// Reads a size that must be a positive integer, pointing at its line when it is not.
Status read_positive(YamlMap& map, const std::string& key, int64_t* out) {
  CF_RETURN_IF_ERROR(map.require(key, out));
  return map.check_positive(key, static_cast<double>(*out));
}

}  // namespace

// Keys (all sizes are counts, not bytes):
//   name, architecture (llama | qwen2 | gpt), hidden, ffn_hidden, layers, heads, kv_heads,
//   head_dim (optional, default hidden / heads), vocab, qkv_bias, tied_embeddings,
//   rope_theta, rms_norm_eps, max_position, attention (optional: flash | unfused, default
//   flash), dropout (optional, default 0), source (optional), notes (optional).
// A gpt model needs no rope_theta or rms_norm_eps (it has neither) and defaults qkv_bias and
// tied_embeddings to true (Megatron-LM's GPTModel).
StatusOr<ModelConfig> parse_model_yaml(const std::string& text, const std::string& origin) {
  CF_ASSIGN_OR_RETURN(YamlDocument doc, parse_yaml_text(text, origin));
  CF_ASSIGN_OR_RETURN(YamlMap map, YamlMap::open(doc.root, doc.file, ""));
  ModelConfig model;
  CF_RETURN_IF_ERROR(map.require("name", &model.name));
  if (model.name.empty()) return map.error("name", "must not be empty");
  if (!map.has("architecture")) return map.missing("architecture");
  CF_RETURN_IF_ERROR(map.get_choice(
      "architecture", {models_internal::kLlama, models_internal::kQwen2, models_internal::kGpt},
      &model.architecture));
  CF_RETURN_IF_ERROR(read_positive(map, "hidden", &model.hidden));
  CF_RETURN_IF_ERROR(read_positive(map, "ffn_hidden", &model.ffn_hidden));
  CF_RETURN_IF_ERROR(read_positive(map, "layers", &model.layers));
  CF_RETURN_IF_ERROR(read_positive(map, "heads", &model.heads));
  CF_RETURN_IF_ERROR(read_positive(map, "kv_heads", &model.kv_heads));
  CF_RETURN_IF_ERROR(read_positive(map, "vocab", &model.vocab));
  if (map.has("head_dim")) {
    CF_RETURN_IF_ERROR(read_positive(map, "head_dim", &model.head_dim));
  } else {
    // The Hugging Face default: head_dim = hidden_size / num_attention_heads.
    if (model.hidden % model.heads != 0) {
      return map.error("heads", fmt::format("hidden ({}) is not a multiple of heads ({}); "
                                            "give head_dim explicitly",
                                            model.hidden, model.heads));
    }
    model.head_dim = model.hidden / model.heads;
  }
  if (model.gpt()) {
    model.qkv_bias = true;
    model.tied_embeddings = true;
    CF_RETURN_IF_ERROR(map.get("qkv_bias", &model.qkv_bias));
    CF_RETURN_IF_ERROR(map.get("tied_embeddings", &model.tied_embeddings));
    CF_RETURN_IF_ERROR(map.get("rope_theta", &model.rope_theta));
    CF_RETURN_IF_ERROR(map.get("rms_norm_eps", &model.rms_norm_eps));
  } else {
    CF_RETURN_IF_ERROR(map.require("qkv_bias", &model.qkv_bias));
    CF_RETURN_IF_ERROR(map.require("tied_embeddings", &model.tied_embeddings));
    CF_RETURN_IF_ERROR(map.require("rope_theta", &model.rope_theta));
    CF_RETURN_IF_ERROR(map.require("rms_norm_eps", &model.rms_norm_eps));
  }
  CF_RETURN_IF_ERROR(map.require("max_position", &model.max_position));
  std::string attention = "flash";
  CF_RETURN_IF_ERROR(map.get_choice("attention", {"flash", "unfused"}, &attention));
  model.flash_attention = attention == "flash";
  CF_RETURN_IF_ERROR(map.get("dropout", &model.dropout));
  std::string source, notes;  // provenance for readers of the file, not used in computation
  CF_RETURN_IF_ERROR(map.get("source", &source));
  CF_RETURN_IF_ERROR(map.get("notes", &notes));
  CF_RETURN_IF_ERROR(map.finish());
  // The cross-key rules, reported at the line of the key they name.
  if (auto problem = models_internal::find_model_problem(model)) {
    return map.error(problem->key, problem->message);
  }
  return model;
}

StatusOr<ModelConfig> load_model(const std::string& name_or_path) {
  if (ends_with(name_or_path, ".json")) {
    CF_ASSIGN_OR_RETURN(std::string text, read_text_file(name_or_path));
    return import_hf_config(text, name_or_path);
  }
  CF_ASSIGN_OR_RETURN(Resource resource, load_named_resource(name_or_path, "models", "model"));
  return parse_model_yaml(resource.text, resource.origin);
}

}  // namespace cf

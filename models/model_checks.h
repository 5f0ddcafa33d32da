// Internal to models/: the size and consistency rules of a ModelConfig, written once and
// reported by each reader in its own way (YAML with line:column, config.json by key name).
// Not part of the public contract (that is validate_model in model.h).
#pragma once

#include <optional>
#include <string>

#include "models/model.h"

namespace cf::models_internal {

// The first rule a model breaks: the key (as the YAML file spells it) and what is wrong.
struct ModelProblem {
  std::string key;
  std::string message;
};

std::optional<ModelProblem> find_model_problem(const ModelConfig& model);

// The architectures this project models, as model YAMLs name them.
inline constexpr const char* kLlama = "llama";
inline constexpr const char* kQwen2 = "qwen2";
inline constexpr const char* kGpt = "gpt";

}  // namespace cf::models_internal

// Strict YAML reading: see yaml_reader.h.
#include "core/yaml_reader.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <yaml-cpp/depthguard.h>

#include <cmath>

namespace cf {
namespace {

std::string mark_prefix(const std::string& file, const YAML::Mark& mark) {
  if (mark.line < 0) return file;  // nodes made in code carry no mark
  return fmt::format("{}:{}:{}", file, mark.line + 1, mark.column + 1);
}

std::string describe(const YAML::Node& node) {
  if (!node.IsDefined() || node.IsNull()) return "nothing";
  if (node.IsScalar()) return fmt::format("\"{}\"", node.Scalar());
  if (node.IsSequence()) return "a list";
  return "a map";
}

}  // namespace

StatusOr<YamlDocument> parse_yaml_text(const std::string& text, const std::string& file) {
  try {
    return YamlDocument{YAML::Load(text), file};
  } catch (const YAML::DeepRecursion& e) {
    // yaml-cpp's guard against stack overflow; its own message says "bad file".
    return Status::InvalidInput(
        fmt::format("{}: not valid YAML: nested too deeply (yaml-cpp's parser stops at depth {})",
                    mark_prefix(file, e.mark), e.depth()));
  } catch (const YAML::Exception& e) {
    return Status::InvalidInput(
        fmt::format("{}: not valid YAML: {}", mark_prefix(file, e.mark), e.msg));
  }
}

Status yaml_error(const std::string& file, const YAML::Node& node, const std::string& key_path,
                  const std::string& message) {
  YAML::Mark mark = node.IsDefined() ? node.Mark() : YAML::Mark::null_mark();
  if (key_path.empty())
    return Status::InvalidInput(fmt::format("{}: {}", mark_prefix(file, mark), message));
  return Status::InvalidInput(
      fmt::format("{}: {}: {}", mark_prefix(file, mark), key_path, message));
}

StatusOr<YamlMap> YamlMap::open(const YAML::Node& node, const std::string& file,
                                const std::string& path) {
  if (node.IsDefined() && !node.IsNull() && !node.IsMap()) {
    return yaml_error(file, node, path, fmt::format("expected a map, got {}", describe(node)));
  }
  return YamlMap(node, file, path);
}

std::string YamlMap::key_path(const std::string& key) const {
  return path_.empty() ? key : path_ + "." + key;
}

bool YamlMap::has(const std::string& key) const { return node_.IsMap() && node_[key].IsDefined(); }

Status YamlMap::error(const std::string& key, const std::string& message) const {
  YAML::Node value = has(key) ? node_[key] : node_;
  return yaml_error(file_, value, key_path(key), message);
}

Status YamlMap::missing(const std::string& key) const {
  return yaml_error(file_, node_, key_path(key), "required key is missing");
}

template <typename T>
Status YamlMap::get_scalar(const std::string& key, const char* what, T* out) {
  used_.insert(key);
  if (!has(key)) return Status::Ok();
  const YAML::Node value = node_[key];
  if (!value.IsScalar())
    return error(key, fmt::format("expected {}, got {}", what, describe(value)));
  try {
    *out = value.as<T>();
  } catch (const YAML::Exception&) {
    return error(key, fmt::format("expected {}, got {}", what, describe(value)));
  }
  return Status::Ok();
}

Status YamlMap::get(const std::string& key, int64_t* out) {
  double as_double = 0;
  // Accept 1e6-style integers too, but reject fractions.
  if (has(key) && node_[key].IsScalar()) {
    try {
      *out = node_[key].as<int64_t>();
      used_.insert(key);
      return Status::Ok();
    } catch (const YAML::Exception&) {
    }
    CF_RETURN_IF_ERROR(get_scalar(key, "an integer", &as_double));
    if (as_double != std::floor(as_double) || std::abs(as_double) > 9.0e18) {
      return error(key, fmt::format("expected an integer, got {}", describe(node_[key])));
    }
    *out = static_cast<int64_t>(as_double);
    return Status::Ok();
  }
  return get_scalar(key, "an integer", out);
}

Status YamlMap::get(const std::string& key, int* out) {
  int64_t wide = *out;
  CF_RETURN_IF_ERROR(get(key, &wide));
  if (wide < INT32_MIN || wide > INT32_MAX) return error(key, "integer out of range");
  *out = static_cast<int>(wide);
  return Status::Ok();
}

Status YamlMap::get(const std::string& key, double* out) {
  CF_RETURN_IF_ERROR(get_scalar(key, "a number", out));
  if (has(key) && !std::isfinite(*out)) return error(key, "expected a finite number");
  return Status::Ok();
}

Status YamlMap::get(const std::string& key, bool* out) {
  return get_scalar(key, "true or false", out);
}

Status YamlMap::get(const std::string& key, std::string* out) {
  return get_scalar(key, "a string", out);
}

Status YamlMap::get(const std::string& key, std::vector<int64_t>* out) {
  used_.insert(key);
  if (!has(key)) return Status::Ok();
  const YAML::Node value = node_[key];
  if (!value.IsSequence())
    return error(key, fmt::format("expected a list of integers, got {}", describe(value)));
  out->clear();
  for (std::size_t i = 0; i < value.size(); ++i) {
    try {
      out->push_back(value[i].as<int64_t>());
    } catch (const YAML::Exception&) {
      return yaml_error(file_, value[i], fmt::format("{}[{}]", key_path(key), i),
                        fmt::format("expected an integer, got {}", describe(value[i])));
    }
  }
  return Status::Ok();
}

Status YamlMap::get(const std::string& key, std::vector<std::string>* out) {
  used_.insert(key);
  if (!has(key)) return Status::Ok();
  const YAML::Node value = node_[key];
  if (!value.IsSequence())
    return error(key, fmt::format("expected a list of strings, got {}", describe(value)));
  out->clear();
  for (std::size_t i = 0; i < value.size(); ++i) {
    if (!value[i].IsScalar()) {
      return yaml_error(file_, value[i], fmt::format("{}[{}]", key_path(key), i),
                        fmt::format("expected a string, got {}", describe(value[i])));
    }
    out->push_back(value[i].Scalar());
  }
  return Status::Ok();
}

Status YamlMap::check_positive(const std::string& key, double value) {
  if (value <= 0) return error(key, fmt::format("must be positive, got {}", value));
  return Status::Ok();
}

Status YamlMap::check_at_most(const std::string& key, int64_t value, int64_t limit,
                              const std::string& why) {
  if (value > limit) {
    return error(key, fmt::format("must be at most {} ({}), got {}", limit, why, value));
  }
  return Status::Ok();
}

Status YamlMap::check_range(const std::string& key, double value, double lo, double hi) {
  if (!(value >= lo && value <= hi)) {  // NaN fails too
    return error(key, fmt::format("must be between {} and {}, got {}", lo, hi, value));
  }
  return Status::Ok();
}

Status YamlMap::get_choice(const std::string& key, const std::vector<std::string>& choices,
                           std::string* out) {
  CF_RETURN_IF_ERROR(get(key, out));
  for (const auto& choice : choices) {
    if (*out == choice) return Status::Ok();
  }
  return error(key, fmt::format("must be one of {}, got \"{}\"", fmt::join(choices, " | "), *out));
}

StatusOr<YamlMap> YamlMap::child(const std::string& key) {
  used_.insert(key);
  return open(has(key) ? node_[key] : YAML::Node(), file_, key_path(key));
}

YAML::Node YamlMap::raw(const std::string& key) {
  used_.insert(key);
  return has(key) ? node_[key] : YAML::Node();
}

Status YamlMap::finish() const {
  if (!node_.IsMap()) return Status::Ok();
  std::set<std::string> seen;
  for (const auto& entry : node_) {
    const YAML::Node& key_node = entry.first;
    if (!key_node.IsScalar()) {  // `~: 1`, `[a, b]: 1`, `? {a: 1}`: only names are keys here
      const char* what = key_node.IsNull()       ? "a null key (~ or an empty key)"
                         : key_node.IsSequence() ? "a list as a key"
                                                 : "a map as a key";
      return yaml_error(file_, key_node, path_, fmt::format("{}: keys here are plain names", what));
    }
    const std::string key = key_node.Scalar();
    if (!seen.insert(key).second) {
      return yaml_error(file_, key_node, key_path(key),
                        "duplicate key (the first one would be read, this one ignored)");
    }
    if (!used_.count(key)) {
      return yaml_error(file_, key_node, key_path(key), "unknown key");
    }
  }
  return Status::Ok();
}

}  // namespace cf

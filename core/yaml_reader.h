// Strict YAML reading (STYLE.md §14): every key of a map must be known, every value of the
// right type and range; each error names file:line:column and the dotted key path.
// This is the only place that turns yaml-cpp exceptions into Status.
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "core/status.h"

namespace cf {

// A parsed YAML document and the name of the file it came from.
struct YamlDocument {
  YAML::Node root;
  std::string file;  // path or "<embedded:NAME>"
};

StatusOr<YamlDocument> parse_yaml_text(const std::string& text, const std::string& file);

// "file:line:col: key.path: message" for the node (1-based line and column).
Status yaml_error(const std::string& file, const YAML::Node& node, const std::string& key_path,
                  const std::string& message);

// One YAML mapping read strictly. Keys read through get/require/child are marked used;
// finish() reports the first unknown key. A null or missing node reads as an empty map.
class YamlMap {
 public:
  static StatusOr<YamlMap> open(const YAML::Node& node, const std::string& file,
                                const std::string& path);

  bool has(const std::string& key) const;
  // Reads `key` into *out when present; leaves *out (the default) when absent.
  Status get(const std::string& key, int64_t* out);
  Status get(const std::string& key, int* out);
  Status get(const std::string& key, double* out);
  Status get(const std::string& key, bool* out);
  Status get(const std::string& key, std::string* out);
  Status get(const std::string& key, std::vector<int64_t>* out);
  Status get(const std::string& key, std::vector<std::string>* out);
  // As get, but a missing key is an error.
  template <typename T>
  Status require(const std::string& key, T* out) {
    if (!has(key)) return missing(key);
    return get(key, out);
  }
  // Range checks on a value already read (error points at the key's value).
  Status check_positive(const std::string& key, double value);
  Status check_range(const std::string& key, double value, double lo, double hi);
  // value ≤ limit, else "must be at most LIMIT (WHY), got VALUE".
  Status check_at_most(const std::string& key, int64_t value, int64_t limit,
                       const std::string& why);
  // Picks one of `choices`; error lists them.
  Status get_choice(const std::string& key, const std::vector<std::string>& choices,
                    std::string* out);

  StatusOr<YamlMap> child(const std::string& key);
  YAML::Node raw(const std::string& key);  // marks used; caller reads it (e.g. a list of pairs)
  Status finish() const;                   // unknown keys are errors

  Status error(const std::string& key, const std::string& message) const;
  Status missing(const std::string& key) const;
  std::string key_path(const std::string& key) const;
  const std::string& file() const { return file_; }
  const std::string& path() const { return path_; }
  const YAML::Node& node() const { return node_; }

 private:
  YamlMap(YAML::Node node, std::string file, std::string path)
      : node_(std::move(node)), file_(std::move(file)), path_(std::move(path)) {}
  template <typename T>
  Status get_scalar(const std::string& key, const char* what, T* out);

  YAML::Node node_;
  std::string file_;
  std::string path_;
  std::set<std::string> used_;
};

}  // namespace cf

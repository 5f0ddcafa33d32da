// Strict JSON reading (nlohmann): parse without exceptions, then read each object with every
// key accounted for; every error is InvalidInput "ORIGIN: KEY.PATH: message". Every JSON
// input of the project is parsed here: the Chrome-trace reader, the calibration table, a
// Hugging Face config.json, JSONL lengths and token files (one call per line). Not YAML
// (yaml_reader.h); no exceptions are thrown or caught here.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <string_view>

#include "core/status.h"

namespace cf {

// The parsed document, or InvalidInput:
//   "ORIGIN: JSON nested deeper than 64 at byte N" (limits::kMaxJsonDepth levels of arrays
//     and objects; N is 1-based), found by a scan before the parse, so that no deeper
//     document reaches nlohmann's recursive dump, copy or comparison;
//   "ORIGIN: KEY.PATH: number out of range: 1e999" (a number no double holds);
//   "ORIGIN: not valid JSON: <nlohmann's line, column and reason>".
StatusOr<nlohmann::json> parse_json(std::string_view text, const std::string& origin);

// One JSON value at `path` of `origin`, read as an object: each key read through find/get is
// marked used; finish() reports the first key that was not. check_object() (or child())
// says whether the value is an object at all; the getters on a non-object find no keys.
class JsonReader {
 public:
  JsonReader(const nlohmann::json& object, std::string origin, std::string path)
      : object_(object), origin_(std::move(origin)), path_(std::move(path)) {}

  // InvalidInput "ORIGIN: PATH.KEY: message" (PATH alone for an empty key).
  Status error(const std::string& key, const std::string& message) const;
  Status check_object() const;

  bool has(const std::string& key) const;
  // The value of a required key (marked used).
  StatusOr<const nlohmann::json*> find(const std::string& key);
  // A required key of the given type; ints are range-checked.
  Status get(const std::string& key, int64_t* out);
  Status get(const std::string& key, int* out);
  Status get(const std::string& key, double* out);
  Status get(const std::string& key, bool* out);
  Status get(const std::string& key, std::string* out);
  // A required key holding an object, as a reader at PATH.KEY.
  StatusOr<JsonReader> child(const std::string& key);
  // A required key holding an array.
  StatusOr<const nlohmann::json*> array(const std::string& key);

  Status finish() const;  // unknown keys are errors

  std::string child_path(const std::string& key) const;
  const std::string& origin() const { return origin_; }
  const std::string& path() const { return path_; }

 private:
  const nlohmann::json& object_;
  std::string origin_;
  std::string path_;
  std::set<std::string> used_;
};

// A JSON value for a message: its text, cut to 40 characters.
std::string describe_json(const nlohmann::json& value);

}  // namespace cf

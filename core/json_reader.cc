// The strict JSON reader (json_reader.h). Parsing goes through nlohmann's non-throwing
// entry points: a depth scan first, json::parse with allow_exceptions = false, and on failure
// a second, SAX-only pass whose parse_error callback receives the position and reason.
#include "core/json_reader.h"

#include <fmt/format.h>

#include <limits>
#include <vector>

#include "core/limits.h"

namespace cf {

using nlohmann::json;

namespace {

// The 1-based byte of the first '[' or '{' that opens level limits::kMaxJsonDepth + 1, or 0.
// Brackets inside strings do not count. On the prefix nlohmann accepts, this count is the
// parser's own depth; past it the parser stops with its error, so no document it builds is
// deeper than the bound.
std::size_t first_too_deep(std::string_view text) {
  int depth = 0;
  bool in_string = false;
  bool escaped = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > limits::kMaxJsonDepth) return i + 1;
    } else if (c == ']' || c == '}') {
      --depth;  // below zero only in text the parser refuses at that byte
    }
  }
  return 0;
}

// A SAX handler that accepts every event, keeps the parser's first error message and the key
// path it was reading (for numbers out of range: the one error whose key a reader wants).
struct ErrorOnly final : nlohmann::json_sax<json> {
  struct Level {
    bool array = false;
    std::size_t started = 0;  // an array's elements begun so far
    std::string key;          // an object's latest key
  };
  std::vector<Level> levels;
  std::string message = "unknown parse error";
  bool out_of_range = false;
  std::string token;  // the text of the number out of range

  bool value() {
    if (!levels.empty() && levels.back().array) ++levels.back().started;
    return true;
  }
  bool null() override { return value(); }
  bool boolean(bool) override { return value(); }
  bool number_integer(number_integer_t) override { return value(); }
  bool number_unsigned(number_unsigned_t) override { return value(); }
  bool number_float(number_float_t, const string_t&) override { return value(); }
  bool string(string_t&) override { return value(); }
  bool binary(binary_t&) override { return value(); }
  bool start_object(std::size_t) override {
    value();
    levels.push_back({});
    return true;
  }
  bool key(string_t& key) override {
    levels.back().key = key;
    return true;
  }
  bool end_object() override {
    levels.pop_back();
    return true;
  }
  bool start_array(std::size_t) override {
    value();
    levels.push_back({true, 0, {}});
    return true;
  }
  bool end_array() override {
    levels.pop_back();
    return true;
  }
  bool parse_error(std::size_t, const std::string& last_token, const json::exception& e) override {
    message = e.what();
    out_of_range = e.id == 406;  // nlohmann's "number overflow"
    token = last_token;
    return false;
  }

  // "a.list[2].b": the element being read in the innermost array is the next one begun.
  std::string path() const {
    std::string out;
    for (std::size_t i = 0; i < levels.size(); ++i) {
      if (levels[i].array) {
        const std::size_t index = levels[i].started - (i + 1 < levels.size() ? 1 : 0);
        out += fmt::format("[{}]", index);
      } else if (!levels[i].key.empty()) {
        out += (out.empty() ? "" : ".") + levels[i].key;
      }
    }
    return out;
  }
};

}  // namespace

StatusOr<json> parse_json(std::string_view text, const std::string& origin) {
  if (const std::size_t byte = first_too_deep(text)) {
    return Status::InvalidInput(fmt::format("{}: JSON nested deeper than {} at byte {}", origin,
                                            limits::kMaxJsonDepth, byte));
  }
  json root = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (!root.is_discarded()) return root;
  ErrorOnly errors;
  json::sax_parse(text.begin(), text.end(), &errors);  // false, with the error in `errors`
  if (errors.out_of_range) {
    const std::string path = errors.path();
    return Status::InvalidInput(fmt::format("{}: {}{}number out of range: {}", origin, path,
                                            path.empty() ? "" : ": ", errors.token));
  }
  return Status::InvalidInput(fmt::format("{}: not valid JSON: {}", origin, errors.message));
}

Status JsonReader::error(const std::string& key, const std::string& message) const {
  const std::string where = key.empty() ? path_ : child_path(key);
  if (where.empty()) return Status::InvalidInput(fmt::format("{}: {}", origin_, message));
  return Status::InvalidInput(fmt::format("{}: {}: {}", origin_, where, message));
}

Status JsonReader::check_object() const {
  if (object_.is_object()) return Status::Ok();
  return error("", fmt::format("expected a JSON object, got {}", describe_json(object_)));
}

bool JsonReader::has(const std::string& key) const {
  return object_.is_object() && object_.contains(key);
}

StatusOr<const json*> JsonReader::find(const std::string& key) {
  used_.insert(key);
  if (!has(key)) return error(key, "required key is missing");
  return &*object_.find(key);
}

Status JsonReader::get(const std::string& key, int64_t* out) {
  CF_ASSIGN_OR_RETURN(const json* value, find(key));
  if (!value->is_number_integer() ||
      (value->is_number_unsigned() &&
       value->get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))) {
    return error(key, fmt::format("expected an integer, got {}", describe_json(*value)));
  }
  *out = value->get<int64_t>();
  return Status::Ok();
}

Status JsonReader::get(const std::string& key, int* out) {
  int64_t wide = 0;
  CF_RETURN_IF_ERROR(get(key, &wide));
  if (wide < std::numeric_limits<int>::min() || wide > std::numeric_limits<int>::max()) {
    return error(key, fmt::format("integer out of range: {}", wide));
  }
  *out = static_cast<int>(wide);
  return Status::Ok();
}

Status JsonReader::get(const std::string& key, double* out) {
  CF_ASSIGN_OR_RETURN(const json* value, find(key));
  if (!value->is_number()) {
    return error(key, fmt::format("expected a number, got {}", describe_json(*value)));
  }
  *out = value->get<double>();
  return Status::Ok();
}

Status JsonReader::get(const std::string& key, bool* out) {
  CF_ASSIGN_OR_RETURN(const json* value, find(key));
  if (!value->is_boolean()) {
    return error(key, fmt::format("expected true or false, got {}", describe_json(*value)));
  }
  *out = value->get<bool>();
  return Status::Ok();
}

Status JsonReader::get(const std::string& key, std::string* out) {
  CF_ASSIGN_OR_RETURN(const json* value, find(key));
  if (!value->is_string()) {
    return error(key, fmt::format("expected a string, got {}", describe_json(*value)));
  }
  *out = value->get<std::string>();
  return Status::Ok();
}

StatusOr<JsonReader> JsonReader::child(const std::string& key) {
  CF_ASSIGN_OR_RETURN(const json* value, find(key));
  JsonReader reader(*value, origin_, child_path(key));
  CF_RETURN_IF_ERROR(reader.check_object());
  return reader;
}

StatusOr<const json*> JsonReader::array(const std::string& key) {
  CF_ASSIGN_OR_RETURN(const json* value, find(key));
  if (!value->is_array()) {
    return error(key, fmt::format("expected a JSON array, got {}", describe_json(*value)));
  }
  return value;
}

Status JsonReader::finish() const {
  if (!object_.is_object()) return Status::Ok();
  for (auto it = object_.begin(); it != object_.end(); ++it) {
    if (!used_.count(it.key())) return error(it.key(), "unknown key");
  }
  return Status::Ok();
}

std::string JsonReader::child_path(const std::string& key) const {
  return path_.empty() ? key : path_ + "." + key;
}

std::string describe_json(const json& value) {
  std::string text = value.dump();
  if (text.size() > 40) text = text.substr(0, 37) + "...";
  return text;
}

}  // namespace cf

// The strict JSON reader (json_reader.h). Parsing goes through nlohmann's non-throwing
// entry points: json::parse with allow_exceptions = false, and on failure a second,
// SAX-only pass whose parse_error callback receives the position and reason.
#include "core/json_reader.h"

#include <fmt/format.h>

#include <limits>

namespace cf {

using nlohmann::json;

namespace {

// A SAX handler that accepts every event and keeps the parser's first error message.
struct ErrorOnly final : nlohmann::json_sax<json> {
  std::string message = "unknown parse error";
  bool null() override { return true; }
  bool boolean(bool) override { return true; }
  bool number_integer(number_integer_t) override { return true; }
  bool number_unsigned(number_unsigned_t) override { return true; }
  bool number_float(number_float_t, const string_t&) override { return true; }
  bool string(string_t&) override { return true; }
  bool binary(binary_t&) override { return true; }
  bool start_object(std::size_t) override { return true; }
  bool key(string_t&) override { return true; }
  bool end_object() override { return true; }
  bool start_array(std::size_t) override { return true; }
  bool end_array() override { return true; }
  bool parse_error(std::size_t, const std::string&, const json::exception& e) override {
    message = e.what();
    return false;
  }
};

}  // namespace

StatusOr<json> parse_json(const std::string& text, const std::string& origin) {
  json root = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!root.is_discarded()) return root;
  ErrorOnly errors;
  json::sax_parse(text, &errors);  // false, with the error in `errors`
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

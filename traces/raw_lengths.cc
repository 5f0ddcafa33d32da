// Readers of raw sequence-length lists: text (one length per line), CSV (comma separated, or
// a `length` column under a header) and JSONL (a `length` or `input_ids` field per record).
// The lengths become an empirical distribution. Not the YAML reader (distribution.cc).
// Each length is at most limits::kMaxTokens, and a file holds at most
// limits::kMaxDatasetLengths of them; a refusal names the file, line (and column or key).
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/json_reader.h"
#include "core/limits.h"
#include "traces/distribution.h"

namespace cf {
namespace {

std::string trim(const std::string& text) {
  const std::size_t first = text.find_first_not_of(" \t\r");
  if (first == std::string::npos) return "";
  const std::size_t last = text.find_last_not_of(" \t\r");
  return text.substr(first, last - first + 1);
}

std::string lower(std::string text) {
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

// The empirical distribution of `lengths` (non-empty, all >= 1): CDF at each distinct value.
LengthDistribution from_lengths(std::vector<int64_t> lengths, const std::string& origin) {
  std::sort(lengths.begin(), lengths.end());
  LengthDistribution dist;
  dist.name = origin_stem(origin);
  dist.origin = origin;
  dist.source = "raw lengths read from " + origin;
  dist.samples = static_cast<int64_t>(lengths.size());
  const double count = static_cast<double>(lengths.size());
  for (std::size_t i = 0; i < lengths.size(); ++i) {
    if (i + 1 == lengths.size() || lengths[i + 1] != lengths[i]) {
      dist.cdf.emplace_back(lengths[i], static_cast<double>(i + 1) / count);
    }
  }
  dist.cdf.back().second = 1.0;
  dist.max_length = lengths.back();
  dist.raw_lengths = std::move(lengths);
  return dist;
}

// "WHERE: WHAT must be at most 16777216 (16M tokens, core/limits.h), got VALUE".
Status length_over_bound(const std::string& where, const std::string& what,
                         const std::string& value) {
  return Status::InvalidInput(fmt::format("{}: {} must be at most {} ({}), got {}", where, what,
                                          limits::kMaxTokens, limits::kMaxTokensWhy, value));
}

// Another length for `lengths`, unless the file already holds limits::kMaxDatasetLengths.
Status check_count(const std::vector<int64_t>& lengths, const std::string& origin, int line) {
  if (static_cast<int64_t>(lengths.size()) < limits::kMaxDatasetLengths) return Status::Ok();
  return Status::InvalidInput(fmt::format("{}:{}: more than {} lengths in one file ({})", origin,
                                          line, limits::kMaxDatasetLengths,
                                          limits::kMaxDatasetLengthsWhy));
}

// One CSV/text field as a length in [1, kMaxTokens]; the error names file:line:column.
Status parse_length_field(const std::string& field, const std::string& origin, int line, int column,
                          int64_t* out) {
  const char* begin = field.data();
  const char* end = field.data() + field.size();
  auto [ptr, ec] = std::from_chars(begin, end, *out);
  const std::string where = fmt::format("{}:{}:{}", origin, line, column);
  if (ec == std::errc::result_out_of_range && ptr == end && field[0] != '-') {
    return length_over_bound(where, "a length", field);  // digits past int64
  }
  if (field.empty() || ec != std::errc() || ptr != end) {
    return Status::InvalidInput(
        fmt::format("{}: expected an integer length, got \"{}\"", where, field));
  }
  if (*out < 1) {
    return Status::InvalidInput(
        fmt::format("{}: a length must be at least 1, got {}", where, *out));
  }
  if (*out > limits::kMaxTokens) return length_over_bound(where, "a length", field);
  return Status::Ok();
}

// An integer, in range of int64 or not (99999999999999999999 is a length too large, not a header).
bool is_integer_text(const std::string& field) {
  int64_t value = 0;
  auto [ptr, ec] = std::from_chars(field.data(), field.data() + field.size(), value);
  return !field.empty() && (ec == std::errc() || ec == std::errc::result_out_of_range) &&
         ptr == field.data() + field.size();
}

struct Field {
  std::string text;
  int column = 1;  // 1-based character column of the field's start
};

std::vector<Field> split_fields(const std::string& line) {
  std::vector<Field> fields;
  std::size_t start = 0;
  while (true) {
    const std::size_t comma = line.find(',', start);
    const std::string raw =
        line.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    const std::size_t lead = raw.find_first_not_of(" \t");
    fields.push_back(
        Field{trim(raw), static_cast<int>(start + (lead == std::string::npos ? 0 : lead)) + 1});
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return fields;
}

}  // namespace

StatusOr<LengthDistribution> parse_raw_lengths(const std::string& text, const std::string& origin) {
  std::istringstream in(text);
  std::string line;
  std::vector<int64_t> lengths;
  int line_number = 0;
  int length_column = -1;  // with a header: the index of the `length` column
  std::size_t header_fields = 0;
  bool first_row = true;
  while (std::getline(in, line)) {
    ++line_number;
    const std::string content = trim(line);
    if (content.empty() || content[0] == '#') continue;
    std::vector<Field> fields = split_fields(line);
    if (first_row) {
      first_row = false;
      // A header: some field is not a number. Use its `length` column (or its only column).
      if (std::any_of(fields.begin(), fields.end(),
                      [](const Field& f) { return !is_integer_text(f.text); })) {
        for (std::size_t i = 0; i < fields.size(); ++i) {
          if (lower(fields[i].text) == "length") length_column = static_cast<int>(i);
        }
        if (length_column < 0 && fields.size() == 1 && !fields[0].text.empty() &&
            std::isalpha(static_cast<unsigned char>(fields[0].text[0]))) {
          length_column = 0;
        }
        if (length_column < 0) {
          return Status::InvalidInput(fmt::format(
              "{}:{}: expected lengths, or a CSV header with a `length` column, got \"{}\"", origin,
              line_number, content));
        }
        header_fields = fields.size();
        continue;
      }
    }
    if (length_column >= 0) {
      if (fields.size() != header_fields) {
        return Status::InvalidInput(
            fmt::format("{}:{}: expected {} fields as in the header, got {}", origin, line_number,
                        header_fields, fields.size()));
      }
      fields = {fields[length_column]};
    }
    for (const Field& field : fields) {
      CF_RETURN_IF_ERROR(check_count(lengths, origin, line_number));
      int64_t length = 0;
      CF_RETURN_IF_ERROR(
          parse_length_field(field.text, origin, line_number, field.column, &length));
      lengths.push_back(length);
    }
  }
  if (lengths.empty())
    return Status::InvalidInput(fmt::format("{}: no lengths in the file", origin));
  return from_lengths(std::move(lengths), origin);
}

StatusOr<LengthDistribution> parse_jsonl_lengths(const std::string& text,
                                                 const std::string& origin) {
  std::istringstream in(text);
  std::string line;
  std::vector<int64_t> lengths;
  int line_number = 0;
  while (std::getline(in, line)) {
    ++line_number;
    if (trim(line).empty()) continue;
    const std::string where = fmt::format("{}:{}", origin, line_number);
    CF_ASSIGN_OR_RETURN(const nlohmann::json record, parse_json(line, where));
    if (!record.is_object()) {
      return Status::InvalidInput(fmt::format("{}: expected a JSON object per line", where));
    }
    CF_RETURN_IF_ERROR(check_count(lengths, origin, line_number));
    int64_t length = -1;
    if (auto it = record.find("length"); it != record.end()) {
      const nlohmann::json& value = *it;
      // A number past the bound is named as such, whatever its form (1e12, 2^64).
      if (value.is_number() && value.get<double>() > static_cast<double>(limits::kMaxTokens)) {
        return length_over_bound(where, "length:", value.dump());
      }
      if (!value.is_number_integer() || value.get<int64_t>() < 1) {
        return Status::InvalidInput(fmt::format("{}: length: expected a positive integer, got {}",
                                                where, describe_json(value)));
      }
      length = value.get<int64_t>();
    }
    if (auto it = record.find("input_ids"); it != record.end()) {
      const nlohmann::json& ids = *it;
      if (!ids.is_array() || ids.empty()) {
        return Status::InvalidInput(
            fmt::format("{}: input_ids: expected a non-empty array of token ids", where));
      }
      const int64_t id_count = static_cast<int64_t>(ids.size());
      if (id_count > limits::kMaxTokens) {
        return length_over_bound(where, "input_ids: a sequence", fmt::format("{} ids", id_count));
      }
      if (length >= 0 && length != id_count) {
        return Status::InvalidInput(fmt::format(
            "{}: length: {} disagrees with the {} entries of input_ids", where, length, id_count));
      }
      length = id_count;
    }
    if (length < 0) {
      return Status::InvalidInput(fmt::format(
          "{}: the record has neither a `length` field nor an `input_ids` array", where));
    }
    lengths.push_back(length);
  }
  if (lengths.empty())
    return Status::InvalidInput(fmt::format("{}: no records in the file", origin));
  return from_lengths(std::move(lengths), origin);
}

}  // namespace cf

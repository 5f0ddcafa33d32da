// Length distributions from YAML (cdf: or histogram:), dispatch of load_distribution over
// YAML / raw text / CSV / JSONL, and the mean under the sampler's interpolation.
// Not the raw-list readers (raw_lengths.cc) and not the sampler (length_sampler.cc).
#include "traces/distribution.h"

#include <fmt/format.h>

#include <cmath>
#include <filesystem>

#include "core/limits.h"
#include "core/resources.h"
#include "core/yaml_reader.h"

namespace cf {
namespace {

std::string origin_extension(const std::string& origin) {
  std::string path = origin;
  if (!path.empty() && path.back() == '>') path.pop_back();
  return std::filesystem::path(path).extension().string();
}

// One [a, b] entry of a cdf:/histogram: list, read strictly. `b` must be a finite number.
Status read_pair(const std::string& file, const YAML::Node& entry, const std::string& path,
                 const char* second_name, int64_t* length, double* second) {
  if (!entry.IsSequence() || entry.size() != 2 || !entry[0].IsScalar() || !entry[1].IsScalar()) {
    return yaml_error(file, entry, path, fmt::format("expected a pair [length, {}]", second_name));
  }
  double length_value = 0;
  try {
    length_value = entry[0].as<double>();
    *second = entry[1].as<double>();
  } catch (const YAML::Exception&) {
    return yaml_error(file, entry, path,
                      fmt::format("expected two numbers [length, {}], got [{}, {}]", second_name,
                                  entry[0].Scalar(), entry[1].Scalar()));
  }
  if (length_value != std::floor(length_value) || length_value < 1) {
    return yaml_error(file, entry[0], path,
                      fmt::format("length must be a positive integer, got {}", entry[0].Scalar()));
  }
  if (length_value > static_cast<double>(limits::kMaxTokens)) {
    return yaml_error(file, entry[0], path,
                      fmt::format("length must be at most {} ({}), got {}", limits::kMaxTokens,
                                  limits::kMaxTokensWhy, entry[0].Scalar()));
  }
  if (!std::isfinite(*second)) {
    return yaml_error(file, entry[1], path, fmt::format("{} must be finite", second_name));
  }
  *length = static_cast<int64_t>(length_value);
  return Status::Ok();
}

Status check_list(const std::string& file, const YAML::Node& list, const std::string& key) {
  if (!list.IsSequence()) {
    return yaml_error(file, list, key, "expected a list of [length, value] pairs");
  }
  if (list.size() == 0) return yaml_error(file, list, key, "the list is empty");
  return Status::Ok();
}

// cdf: [[length, fraction <= length], ...]: lengths strictly increasing, fractions in [0, 1],
// non-decreasing, the last exactly 1.
Status read_cdf(const std::string& file, const YAML::Node& list, LengthDistribution* dist) {
  CF_RETURN_IF_ERROR(check_list(file, list, "cdf"));
  for (std::size_t i = 0; i < list.size(); ++i) {
    const std::string path = fmt::format("cdf[{}]", i);
    int64_t length = 0;
    double fraction = 0;
    CF_RETURN_IF_ERROR(read_pair(file, list[i], path, "fraction", &length, &fraction));
    if (fraction < 0 || fraction > 1) {
      return yaml_error(file, list[i][1], path,
                        fmt::format("fraction must be between 0 and 1, got {}", fraction));
    }
    if (!dist->cdf.empty() && length <= dist->cdf.back().first) {
      return yaml_error(file, list[i][0], path,
                        fmt::format("length {} is not greater than the previous length {}", length,
                                    dist->cdf.back().first));
    }
    if (!dist->cdf.empty() && fraction < dist->cdf.back().second) {
      return yaml_error(file, list[i][1], path,
                        fmt::format("the CDF decreases: fraction {} is below the previous {}",
                                    fraction, dist->cdf.back().second));
    }
    dist->cdf.emplace_back(length, fraction);
  }
  if (dist->cdf.back().second != 1.0) {
    return yaml_error(file, list[list.size() - 1], fmt::format("cdf[{}]", list.size() - 1),
                      fmt::format("the last fraction must be 1, got {}", dist->cdf.back().second));
  }
  return Status::Ok();
}

// histogram: [[bin upper length, count], ...]: bin i holds lengths in (upper[i-1], upper[i]]
// (the first bin starts at 1); counts >= 0, not all zero. Converted to the CDF.
Status read_histogram(const std::string& file, const YAML::Node& list, LengthDistribution* dist) {
  CF_RETURN_IF_ERROR(check_list(file, list, "histogram"));
  std::vector<double> cumulative;
  double total = 0;
  for (std::size_t i = 0; i < list.size(); ++i) {
    const std::string path = fmt::format("histogram[{}]", i);
    int64_t upper = 0;
    double count = 0;
    CF_RETURN_IF_ERROR(read_pair(file, list[i], path, "count", &upper, &count));
    if (count < 0) {
      return yaml_error(file, list[i][1], path,
                        fmt::format("count must not be negative, got {}", count));
    }
    if (!dist->cdf.empty() && upper <= dist->cdf.back().first) {
      return yaml_error(file, list[i][0], path,
                        fmt::format("bin upper length {} is not greater than the previous {}",
                                    upper, dist->cdf.back().first));
    }
    total += count;
    cumulative.push_back(total);
    dist->cdf.emplace_back(upper, 0.0);
  }
  if (total <= 0) return yaml_error(file, list, "histogram", "all counts are zero");
  for (std::size_t i = 0; i < cumulative.size(); ++i) {
    dist->cdf[i].second = cumulative[i] / total;
  }
  dist->cdf.back().second = 1.0;  // exactly, whatever the rounding of the division
  return Status::Ok();
}

// E[floor(t)] for t log-uniform on [a, b), integers 1 <= a < b. With
// P(floor t = k) = ln((k+1)/k) / ln(b/a) for k = a..b-1, the sum telescopes:
// sum k ln((k+1)/k) = b ln b - a ln a - ln(b!/a!), and ln(b!/a!) = lgamma(b+1) - lgamma(a+1).
double log_uniform_floor_mean(double a, double b) {
  const double numerator =
      b * std::log(b) - a * std::log(a) - (std::lgamma(b + 1) - std::lgamma(a + 1));
  return numerator / std::log(b / a);
}

}  // namespace

double LengthDistribution::mean_length() const {
  if (!raw_lengths.empty()) {
    double sum = 0;
    for (int64_t length : raw_lengths) sum += static_cast<double>(length);
    return sum / static_cast<double>(raw_lengths.size());
  }
  CF_CHECK(!cdf.empty()) << "mean_length of an empty distribution " << name;
  double mean = 0;
  double previous_fraction = 0;
  int64_t previous_length = 0;  // the first interval starts at length 1
  for (const auto& [length, fraction] : cdf) {
    const double mass = fraction - previous_fraction;
    if (mass > 0) {
      mean += mass * log_uniform_floor_mean(static_cast<double>(previous_length + 1),
                                            static_cast<double>(length + 1));
    }
    previous_fraction = fraction;
    previous_length = length;
  }
  return mean;
}

StatusOr<LengthDistribution> parse_distribution_yaml(const std::string& text,
                                                     const std::string& origin) {
  CF_ASSIGN_OR_RETURN(YamlDocument doc, parse_yaml_text(text, origin));
  if (!doc.root.IsMap()) {
    return yaml_error(origin, doc.root, "", "expected a map with cdf: or histogram:");
  }
  CF_ASSIGN_OR_RETURN(YamlMap map, YamlMap::open(doc.root, origin, ""));
  LengthDistribution dist;
  dist.origin = origin;
  dist.name = origin_stem(origin);
  CF_RETURN_IF_ERROR(map.get("name", &dist.name));
  CF_RETURN_IF_ERROR(map.get("full_name", &dist.full_name));
  CF_RETURN_IF_ERROR(map.get("source", &dist.source));
  CF_RETURN_IF_ERROR(map.get("tokenizer", &dist.tokenizer));
  CF_RETURN_IF_ERROR(map.get("notes", &dist.notes));
  if (map.has("samples") && map.node()["samples"].IsNull()) {
    map.raw("samples");  // "samples: null" = not published
  } else {
    CF_RETURN_IF_ERROR(map.get("samples", &dist.samples));
    if (map.has("samples")) CF_RETURN_IF_ERROR(map.check_range("samples", dist.samples, 1, 9e18));
  }
  if (map.has("cdf") == map.has("histogram")) {
    return map.has("cdf") ? map.error("histogram", "give cdf: or histogram:, not both")
                          : yaml_error(origin, doc.root, "cdf",
                                       "required key is missing (give cdf: or histogram:)");
  }
  if (map.has("cdf")) {
    CF_RETURN_IF_ERROR(read_cdf(origin, map.raw("cdf"), &dist));
  } else {
    CF_RETURN_IF_ERROR(read_histogram(origin, map.raw("histogram"), &dist));
  }
  dist.max_length = dist.cdf.back().first;
  if (map.has("max_length")) {
    CF_RETURN_IF_ERROR(map.get("max_length", &dist.max_length));
    CF_RETURN_IF_ERROR(map.check_at_most("max_length", dist.max_length, limits::kMaxTokens,
                                         limits::kMaxTokensWhy));
    if (dist.max_length < dist.cdf.back().first) {
      return map.error("max_length",
                       fmt::format("must be at least the last length of the distribution ({}), "
                                   "got {}",
                                   dist.cdf.back().first, dist.max_length));
    }
  }
  CF_RETURN_IF_ERROR(map.finish());
  return dist;
}

StatusOr<LengthDistribution> load_distribution(const std::string& name_or_path) {
  // A YAML file is held to the text bound before it is read; lists of raw lengths may be
  // larger (core/limits.h), and a YAML found by sniffing one is held to the text bound after.
  const std::string path_extension = origin_extension(name_or_path);
  const bool yaml_path = path_extension == ".yaml" || path_extension == ".yml";
  CF_ASSIGN_OR_RETURN(
      Resource resource,
      load_named_resource(
          name_or_path, "traces/datasets", "dataset distribution",
          yaml_path ? limits::kMaxTextFileBytes : limits::kMaxDatasetFileBytes,
          yaml_path ? limits::kMaxTextFileBytesWhy : limits::kMaxDatasetFileBytesWhy));
  const std::string extension = origin_extension(resource.origin);
  auto parse_yaml = [&]() -> StatusOr<LengthDistribution> {
    if (static_cast<int64_t>(resource.text.size()) > limits::kMaxTextFileBytes) {
      return Status::InvalidInput(fmt::format(
          "{}: {} bytes of YAML, more than the {} allowed ({})", resource.origin,
          resource.text.size(), limits::kMaxTextFileBytes, limits::kMaxTextFileBytesWhy));
    }
    return parse_distribution_yaml(resource.text, resource.origin);
  };
  if (extension == ".yaml" || extension == ".yml") return parse_yaml();
  if (extension == ".jsonl") return parse_jsonl_lengths(resource.text, resource.origin);
  if (extension == ".txt" || extension == ".csv" || extension == ".lengths") {
    return parse_raw_lengths(resource.text, resource.origin);
  }
  // Unknown extension: a JSON object per line, or else numbers, or else YAML.
  const std::size_t first = resource.text.find_first_not_of(" \t\r\n");
  if (first != std::string::npos && resource.text[first] == '{') {
    return parse_jsonl_lengths(resource.text, resource.origin);
  }
  if (resource.text.find_first_not_of("0123456789, \t\r\n") == std::string::npos) {
    return parse_raw_lengths(resource.text, resource.origin);
  }
  return parse_yaml();
}

std::string origin_stem(const std::string& origin) {
  std::string path = origin;
  if (path.rfind("<embedded:", 0) == 0 && path.back() == '>') {
    path = path.substr(10, path.size() - 11);
  }
  return std::filesystem::path(path).stem().string();
}

}  // namespace cf

// Fuzz target: the dataset readers (traces/distribution.h) — raw lengths (text, CSV), JSONL
// records and CDF / histogram YAML — each given every input. A distribution read is checked
// against its contract (a CDF increasing in both, ending at 1, lengths within
// limits::kMaxTokens) and sampled, as a job's global batches are.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/limits.h"
#include "tests/fuzz/fuzz_support.h"
#include "traces/distribution.h"

namespace {

void check_distribution(const cf::LengthDistribution& dist) {
  CF_CHECK(!dist.cdf.empty());
  int64_t previous_length = 0;
  double previous_fraction = 0;
  for (const auto& [length, fraction] : dist.cdf) {
    CF_CHECK(length > previous_length && length <= cf::limits::kMaxTokens) << length;
    CF_CHECK(fraction >= previous_fraction && fraction <= 1) << fraction;
    previous_length = length;
    previous_fraction = fraction;
  }
  CF_CHECK_EQ(dist.cdf.back().second, 1.0);
  CF_CHECK(dist.max_length >= dist.cdf.back().first && dist.max_length <= cf::limits::kMaxTokens);
  const double mean = dist.mean_length();
  CF_CHECK(std::isfinite(mean) && mean >= 1 && mean <= static_cast<double>(dist.max_length))
      << mean;
  cf::LengthSampler sampler(dist, dist.max_length, /*seed=*/7);
  for (int i = 0; i < 16; ++i) {
    const int64_t length = sampler.draw();
    CF_CHECK(length >= 1 && length <= dist.max_length) << length;
  }
}

template <typename Parse>
void read_with(Parse parse, const std::string& text, const std::string& origin) {
  cf::StatusOr<cf::LengthDistribution> dist = parse(text, origin);
  if (dist.ok()) {
    check_distribution(*dist);
  } else {
    cf::fuzz::expect_refusal(dist.status(), origin);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text = cf::fuzz::as_text(data, size);
  read_with(cf::parse_raw_lengths, text, "fuzz.txt");
  read_with(cf::parse_jsonl_lengths, text, "fuzz.jsonl");
  read_with(cf::parse_distribution_yaml, text, "fuzz.yaml");
  return 0;
}

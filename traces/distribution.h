// Sequence-length distributions of datasets (traces/datasets/*.yaml, or files of raw
// lengths) and the seeded sampler that draws global batches from them.
// Not the chunk plan (sim/plan) and not trace files (traces/trace.h).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/status.h"

namespace cf {

// A length distribution, normalised to one form: CDF points (length, fraction of sequences
// with length <= that) increasing in both, ending at fraction 1. Histograms and raw length
// lists are converted to this form at load. The "<=" convention is the only one: sources that
// publish "< L" are stored as "<= L-1" (traces/datasets/*.yaml say so in their comments).
// The first CDF interval starts at length 1: point (L0, F0) puts mass F0 on lengths 1..L0.
struct LengthDistribution {
  std::string name;
  std::string origin;     // file or "<embedded:...>"
  std::string source;     // provenance as written in the file
  std::string full_name;  // the dataset's own name when `name` is a short file stem; may be empty
  std::string tokenizer;  // as written in the file; may be empty
  std::string notes;      // as written in the file; may be empty
  int64_t samples = 0;    // sequences behind the statistics; 0 when not published
  std::vector<std::pair<int64_t, double>> cdf;
  int64_t max_length = 0;
  // Raw lists keep their values so sampling reproduces them exactly (empirical distribution).
  std::vector<int64_t> raw_lengths;

  double mean_length() const;  // under the sampler's interpolation
};

// `name_or_path`: a name under traces/datasets/ (embedded) or a path to a YAML file (cdf: or
// histogram:), a text/CSV file of lengths (one per line or comma separated), or a JSONL file
// whose records carry `length` or `input_ids`.
StatusOr<LengthDistribution> load_distribution(const std::string& name_or_path);
StatusOr<LengthDistribution> parse_distribution_yaml(const std::string& text,
                                                     const std::string& origin);
StatusOr<LengthDistribution> parse_raw_lengths(const std::string& text, const std::string& origin);
StatusOr<LengthDistribution> parse_jsonl_lengths(const std::string& text,
                                                 const std::string& origin);

// Draws global batches of sequence lengths: inverse-CDF sampling with interpolation between
// CDF points uniform in log(length) (see distribution.cc for why), clamped to
// [1, max_length]. Bit-identical for the same seed on every platform (a splitmix64
// generator and its own uniform, no std::*_distribution, whose output varies by library).
class LengthSampler {
 public:
  LengthSampler(const LengthDistribution& dist, int64_t max_length, uint64_t seed);
  int64_t draw();
  std::vector<int64_t> draw_batch(int64_t count);

 private:
  const LengthDistribution& dist_;
  int64_t max_length_;
  uint64_t state_;  // splitmix64 state
};

// The global batch of step `step` (0-based) for a job's dataset: either explicit lengths, or
// `global_batch` draws from the distribution seeded with (seed, step).
std::vector<int64_t> sample_global_batch(const LengthDistribution& dist, int64_t max_length,
                                         uint64_t seed, int64_t step, int64_t global_batch);

// The stem of a file path or of an embedded origin "<embedded:traces/datasets/NAME.yaml>": the
// name a distribution read from it gets.
std::string origin_stem(const std::string& origin);

}  // namespace cf

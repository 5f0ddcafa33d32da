// The seeded length sampler: inverse-CDF draws with log-uniform interpolation inside each CDF
// interval, or empirical draws from a raw list; bit-identical on every platform.
// Not the readers (distribution.cc, raw_lengths.cc).
#include <algorithm>
#include <cmath>

#include "core/check.h"
#include "traces/distribution.h"
#include "traces/random.h"

namespace cf {

// Why uniform in log(length) inside an interval: the published intervals are long-tailed and
// wide on a linear scale (lmsys-chat-1m's last one runs from 128K to 1.6M tokens). Linear
// interpolation would spread that mass evenly in tokens, putting the typical draw near the
// top (mean 907K, 76% of the interval's draws above 500K), while length histograms of real
// corpora fall off with length within such a range. Log-uniform puts equal mass on each
// doubling (128K-256K as likely as 512K-1M), mean 608K, which follows the decay without
// inventing a shape; in narrow intervals (1K-4K) the two rules barely differ.
//
// Interval i covers the integers lo..hi-1 with lo = L[i-1] + 1 (lo = 1 for the first) and
// hi = L[i] + 1: the draw is floor(t) for t = lo (hi/lo)^v, v uniform in [0, 1), so
// P(length <= L[i]) is exactly F[i] and LengthDistribution::mean_length() has a closed form.
LengthSampler::LengthSampler(const LengthDistribution& dist, int64_t max_length, uint64_t seed)
    : dist_(dist), max_length_(max_length), state_(seed) {
  CF_CHECK_GE(max_length, 1) << "sampler of " << dist.name;
  CF_CHECK(!dist.cdf.empty() || !dist.raw_lengths.empty()) << "empty distribution " << dist.name;
}

int64_t LengthSampler::draw() {
  const double u = rng::uniform_from_bits(rng::splitmix64_next(&state_));  // [0, 1)
  int64_t length = 0;
  if (!dist_.raw_lengths.empty()) {
    // Empirical: index floor(u n), exact for n < 2^53; the min guards the last ulp.
    const auto n = static_cast<int64_t>(dist_.raw_lengths.size());
    const auto index = std::min<int64_t>(n - 1, static_cast<int64_t>(u * static_cast<double>(n)));
    length = dist_.raw_lengths[static_cast<std::size_t>(index)];
  } else {
    // The interval i with F[i-1] <= u < F[i]; exists because the last fraction is 1 > u.
    const auto& cdf = dist_.cdf;
    const auto it =
        std::upper_bound(cdf.begin(), cdf.end(), u,
                         [](double value, const auto& point) { return value < point.second; });
    CF_CHECK(it != cdf.end()) << "CDF of " << dist_.name << " does not end at 1";
    const std::size_t i = static_cast<std::size_t>(it - cdf.begin());
    const double fraction_lo = i == 0 ? 0.0 : cdf[i - 1].second;
    const double fraction_hi = cdf[i].second;
    const int64_t lo = i == 0 ? 1 : cdf[i - 1].first + 1;
    const int64_t hi = cdf[i].first + 1;
    const double v = (u - fraction_lo) / (fraction_hi - fraction_lo);  // [0, 1) up to rounding
    const double lo_d = static_cast<double>(lo);
    const double t = lo_d * rng::det_exp(v * rng::det_log(static_cast<double>(hi) / lo_d));
    length = std::clamp(static_cast<int64_t>(std::floor(t)), lo, hi - 1);
  }
  return std::clamp<int64_t>(length, 1, max_length_);
}

std::vector<int64_t> LengthSampler::draw_batch(int64_t count) {
  CF_CHECK_GE(count, 0);
  std::vector<int64_t> lengths(static_cast<std::size_t>(count));
  for (int64_t& length : lengths) length = draw();
  return lengths;
}

std::vector<int64_t> sample_global_batch(const LengthDistribution& dist, int64_t max_length,
                                         uint64_t seed, int64_t step, int64_t global_batch) {
  CF_CHECK_GE(step, 0);
  // One independent stream per (seed, step): hash the seed, offset by the step, hash again.
  const uint64_t stream = rng::mix64(rng::mix64(seed) + static_cast<uint64_t>(step));
  LengthSampler sampler(dist, max_length, stream);
  return sampler.draw_batch(global_batch);
}

}  // namespace cf

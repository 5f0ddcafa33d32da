// The length sampler: determinism per (seed, step), the published CDF reproduced over 200k
// draws, log-uniform shape inside an interval, clamping, and the platform-independent math.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "traces/distribution.h"
#include "traces/random.h"

namespace cf {
namespace {

constexpr int64_t kDraws = 200000;
const std::vector<uint64_t> kSeeds = {0, 7, 0x5eed5eed5eedULL};

LengthDistribution load(const std::string& name) {
  StatusOr<LengthDistribution> dist = load_distribution(name);
  EXPECT_TRUE(dist.ok()) << dist.status().message();
  return *std::move(dist);
}

LengthDistribution from_yaml(const std::string& text) {
  StatusOr<LengthDistribution> dist = parse_distribution_yaml(text, "t.yaml");
  EXPECT_TRUE(dist.ok()) << dist.status().message();
  return *std::move(dist);
}

double fraction_at_most(const std::vector<int64_t>& draws, int64_t length) {
  const auto count =
      std::count_if(draws.begin(), draws.end(), [length](int64_t x) { return x <= length; });
  return static_cast<double>(count) / static_cast<double>(draws.size());
}

// Five binomial standard deviations: an empirical fraction of n draws with true value p lies
// within this of p except with probability < 6e-7 (normal tail); exact when p is 0 or 1.
double binomial_bound(double p, int64_t n) {
  return 5.0 * std::sqrt(p * (1.0 - p) / static_cast<double>(n)) + 1e-12;
}

TEST(Random, Splitmix64MatchesTheReferenceSequence) {
  // First outputs of Vigna's splitmix64.c from state 0.
  uint64_t state = 0;
  EXPECT_EQ(rng::splitmix64_next(&state), 0xe220a8397b1dcdafULL);
  EXPECT_EQ(rng::splitmix64_next(&state), 0x6e789e6aa1b965f4ULL);
  EXPECT_EQ(rng::splitmix64_next(&state), 0x06c45d188009454fULL);
  EXPECT_EQ(rng::uniform_from_bits(~uint64_t{0}), 1.0 - 0x1.0p-53);
  EXPECT_EQ(rng::uniform_from_bits(0), 0.0);
}

TEST(Random, DeterministicLogAndExpAgreeWithLibm) {
  // The sampler's log/exp use only + - * /; libm is the reference here, to a few ulp.
  uint64_t state = 17;
  double worst_log = 0, worst_exp = 0;
  for (int i = 0; i < 100000; ++i) {
    const double u = rng::uniform_from_bits(rng::splitmix64_next(&state));
    const double x = std::exp(u * 30.0 - 5.0);  // 6.7e-3 .. 2.2e10
    worst_log = std::max(worst_log, std::fabs(rng::det_log(x) - std::log(x)) /
                                        std::max(1.0, std::fabs(std::log(x))));
    const double y = u * 30.0 - 15.0;
    worst_exp = std::max(worst_exp, std::fabs(rng::det_exp(y) - std::exp(y)) / std::exp(y));
  }
  EXPECT_LT(worst_log, 4e-16);
  EXPECT_LT(worst_exp, 8e-16);
  EXPECT_EQ(rng::det_log(1.0), 0.0);
  EXPECT_EQ(rng::det_exp(0.0), 1.0);
}

TEST(Sampler, SameSeedAndStepGiveTheSameBatch) {
  const LengthDistribution dist = load("lmsys-chat-1m");
  for (uint64_t seed : kSeeds) {
    const std::vector<int64_t> a = sample_global_batch(dist, dist.max_length, seed, 3, 257);
    const std::vector<int64_t> b = sample_global_batch(dist, dist.max_length, seed, 3, 257);
    ASSERT_EQ(a.size(), 257u);
    EXPECT_EQ(a, b);
    EXPECT_NE(a, sample_global_batch(dist, dist.max_length, seed, 4, 257));
    EXPECT_NE(a, sample_global_batch(dist, dist.max_length, seed + 1, 3, 257));
    // A longer batch of the same step starts with the shorter one.
    const std::vector<int64_t> longer = sample_global_batch(dist, dist.max_length, seed, 3, 987);
    EXPECT_TRUE(std::equal(a.begin(), a.end(), longer.begin()));
  }
  // (seed, step) pairs do not alias along the diagonal.
  EXPECT_NE(sample_global_batch(dist, dist.max_length, 1, 0, 64),
            sample_global_batch(dist, dist.max_length, 0, 1, 64));
}

TEST(Sampler, GoldenDrawsAreStable) {
  // Regression values: the platform-independent generator must keep producing exactly these.
  const LengthDistribution dist = load("lmsys-chat-1m");
  const std::vector<int64_t> golden = {127, 25, 6306, 2, 61, 404, 56, 3, 832, 401, 5, 46};
  EXPECT_EQ(sample_global_batch(dist, dist.max_length, 7, 0, 12), golden);
}

TEST(Sampler, ReproducesEveryPublishedCdfPoint) {
  for (const std::string name :
       {"bytescale-byted", "chatqa2-long-sft", "llama3-sft-mix", "lmsys-chat-1m", "longbench",
        "wikipedia-cn", "wlbllm-meta-128k-reconstruction"}) {
    const LengthDistribution dist = load(name);
    for (uint64_t seed : kSeeds) {
      SCOPED_TRACE(name + " seed " + std::to_string(seed));
      const std::vector<int64_t> draws =
          sample_global_batch(dist, dist.max_length, seed, 0, kDraws);
      const auto [lo, hi] = std::minmax_element(draws.begin(), draws.end());
      EXPECT_GE(*lo, 1);
      EXPECT_LE(*hi, dist.max_length);
      for (const auto& [length, fraction] : dist.cdf) {
        EXPECT_NEAR(fraction_at_most(draws, length), fraction, binomial_bound(fraction, kDraws))
            << "at length " << length;
      }
    }
  }
}

TEST(Sampler, UniformInLogLengthInsideAnInterval) {
  // One interval 1..1024: P(length <= k) = P(t < k + 1) = ln(k + 1) / ln(1025).
  const LengthDistribution dist = from_yaml("cdf: [[1024, 1.0]]\n");
  const std::vector<int64_t> draws = sample_global_batch(dist, 1024, 81, 0, kDraws);
  for (int64_t k : {1, 7, 31, 100, 255, 777}) {
    const double expected = std::log(k + 1.0) / std::log(1025.0);
    EXPECT_NEAR(fraction_at_most(draws, k), expected, binomial_bound(expected, kDraws)) << k;
  }
  EXPECT_EQ(*std::min_element(draws.begin(), draws.end()), 1);
  EXPECT_EQ(*std::max_element(draws.begin(), draws.end()), 1024);
}

TEST(Sampler, ClampsToASmallerMaxLength) {
  const LengthDistribution dist = load("lmsys-chat-1m");
  for (uint64_t seed : kSeeds) {
    const std::vector<int64_t> full = sample_global_batch(dist, dist.max_length, seed, 2, kDraws);
    const std::vector<int64_t> clamped = sample_global_batch(dist, 4096, seed, 2, kDraws);
    for (std::size_t i = 0; i < full.size(); ++i) {
      ASSERT_EQ(clamped[i], std::min<int64_t>(full[i], 4096)) << "draw " << i;
    }
    // The mass above 4095 (1 - 0.9935) lands on 4096 exactly.
    const double at_cap = 1.0 - fraction_at_most(clamped, 4095);
    EXPECT_NEAR(at_cap, 0.0065, binomial_bound(0.0065, kDraws));
    EXPECT_EQ(*std::max_element(clamped.begin(), clamped.end()), 4096);
  }
  const std::vector<int64_t> ones = sample_global_batch(dist, 1, 7, 0, 99);
  EXPECT_EQ(ones, std::vector<int64_t>(99, 1));
}

TEST(Sampler, RawListsDrawTheirOwnValues) {
  StatusOr<LengthDistribution> dist = parse_raw_lengths("3\n3\n5\n987\n", "r.txt");
  ASSERT_TRUE(dist.ok());
  const std::vector<int64_t> draws = sample_global_batch(*dist, 1000, 17, 0, kDraws);
  std::map<int64_t, int64_t> counts;
  for (int64_t x : draws) ++counts[x];
  ASSERT_EQ(counts.size(), 3u);
  EXPECT_NEAR(counts[3] / double(kDraws), 0.5, binomial_bound(0.5, kDraws));
  EXPECT_NEAR(counts[5] / double(kDraws), 0.25, binomial_bound(0.25, kDraws));
  EXPECT_NEAR(counts[987] / double(kDraws), 0.25, binomial_bound(0.25, kDraws));
  // A max_length below a raw value clamps it.
  const std::vector<int64_t> clamped = sample_global_batch(*dist, 81, 17, 0, 1001);
  EXPECT_EQ(*std::max_element(clamped.begin(), clamped.end()), 81);
}

TEST(Sampler, MeanLengthClosedFormMatchesTheIntegerSum) {
  // Odd intervals, an empty one, and a first point at length 1.
  const LengthDistribution dist =
      from_yaml("cdf: [[1, 0.05], [5, 0.2], [17, 0.2], [81, 0.7], [987, 1.0]]\n");
  double brute = 0;
  double previous_fraction = 0;
  int64_t lo = 1;
  for (const auto& [length, fraction] : dist.cdf) {
    const double hi = static_cast<double>(length + 1);
    for (int64_t k = lo; k <= length; ++k) {
      const double p = std::log((k + 1.0) / k) / std::log(hi / static_cast<double>(lo));
      brute += (fraction - previous_fraction) * p * static_cast<double>(k);
    }
    previous_fraction = fraction;
    lo = length + 1;
  }
  EXPECT_NEAR(dist.mean_length(), brute, 1e-9 * brute);
}

TEST(Sampler, SampleMeanMatchesMeanLength) {
  for (const std::string name :
       {"longbench", "chatqa2-long-sft", "wlbllm-meta-128k-reconstruction"}) {
    SCOPED_TRACE(name);
    const LengthDistribution dist = load(name);
    const std::vector<int64_t> draws = sample_global_batch(dist, dist.max_length, 7, 0, kDraws);
    double sum = 0, sum_sq = 0;
    for (int64_t x : draws) {
      sum += static_cast<double>(x);
      sum_sq += static_cast<double>(x) * static_cast<double>(x);
    }
    const double mean = sum / kDraws;
    const double sd = std::sqrt(sum_sq / kDraws - mean * mean);
    EXPECT_NEAR(mean, dist.mean_length(), 5.0 * sd / std::sqrt(double(kDraws)));
  }
}

}  // namespace
}  // namespace cf

// Platform-independent random numbers for the length sampler: the splitmix64 generator, a
// 53-bit uniform double, and log/exp built only from IEEE-754 + - * / (correctly rounded on
// every platform), so a seed gives bit-identical draws whatever the C library's libm does.
// Not a general math library: accuracy is a few ulp, enough to place a length inside a bucket.
#pragma once

#include <cmath>
#include <cstdint>

namespace cf::rng {

// splitmix64 (Steele, Lea, Flood 2014; reference code by S. Vigna): advances *state by the
// golden-ratio increment and returns the mixed value. Seed 0 gives 0xe220a8397b1dcdaf first.
inline uint64_t splitmix64_next(uint64_t* state) {
  uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// The splitmix64 output for state `x` without keeping the state: a 64-bit hash.
inline uint64_t mix64(uint64_t x) { return splitmix64_next(&x); }

// Uniform in [0, 1) with 53 random bits: the top bits of `bits` times 2^-53 (exact).
inline double uniform_from_bits(uint64_t bits) {
  return static_cast<double>(bits >> 11) * 0x1.0p-53;
}

// ln(2) split so that k * kLn2Hi is exact for |k| < 2^11 (Cody-Waite reduction, as in fdlibm).
inline constexpr double kLn2Hi = 6.93147180369123816490e-01;
inline constexpr double kLn2Lo = 1.90821492927058770002e-10;

// exp(x) for |x| < 700: x = k ln2 + r with |r| <= ln2/2, Taylor series of e^r to r^16/16!
// (remainder < 2e-17 relative), then scaled by 2^k with ldexp (exact).
inline double det_exp(double x) {
  const double k = std::floor(x * 1.44269504088896338700 + 0.5);  // round(x / ln2)
  const double r = (x - k * kLn2Hi) - k * kLn2Lo;
  double sum = 1.0;
  for (int n = 16; n >= 1; --n) sum = 1.0 + sum * r / n;  // Horner on 1 + r/1 (1 + r/2 (...))
  return std::ldexp(sum, static_cast<int>(k));
}

// ln(x) for finite x > 0: x = m 2^e with m in [sqrt(1/2), sqrt(2)), s = (m-1)/(m+1),
// ln m = 2 (s + s^3/3 + s^5/5 + ...) to s^27 (|s| <= 0.172, remainder < 1e-20), plus e ln2.
inline double det_log(double x) {
  int e = 0;
  double m = std::frexp(x, &e);  // exact: x = m 2^e, m in [0.5, 1)
  if (m < 0.70710678118654752440) {
    m *= 2.0;
    e -= 1;
  }
  const double s = (m - 1.0) / (m + 1.0);
  const double s2 = s * s;
  double series = 1.0 / 27.0;
  for (int n = 25; n >= 1; n -= 2) series = 1.0 / n + s2 * series;
  return (e * kLn2Hi + 2.0 * s * series) + e * kLn2Lo;
}

}  // namespace cf::rng

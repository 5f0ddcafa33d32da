// Small integer helpers used across the libraries. Not a math library.
#pragma once

#include <cmath>
#include <cstdint>

namespace cf {

// ⌈a / b⌉ for a ≥ 0 and b > 0, without the overflow of (a + b − 1) / b near INT64_MAX.
constexpr int64_t ceil_div(int64_t a, int64_t b) { return a / b + (a % b != 0 ? 1 : 0); }

// The longest time the simulator represents, 2^62 ns (146 years): every op duration is at
// most this, and the engine refuses a graph whose durations and transfers add up to more, so
// no time it computes (a sum along one path) can leave int64.
inline constexpr int64_t kMaxSimulatedNs = int64_t{1} << 62;

// Nanoseconds rounded to whole ones, saturating at kMaxSimulatedNs (also for +inf and NaN,
// which only absurd inputs produce; the engine then refuses the step). Negative times are 0.
inline int64_t whole_ns(double ns) {
  if (!(ns < static_cast<double>(kMaxSimulatedNs))) return kMaxSimulatedNs;
  return ns > 0 ? std::llround(ns) : 0;
}
inline int64_t seconds_to_ns(double seconds) { return whole_ns(seconds * 1e9); }

// The most bytes the simulator represents at once, 2^62 (4 EiB): a byte count computed in
// double saturates here, and a stage whose allocations could add up to more is refused.
inline constexpr int64_t kMaxSimulatedBytes = int64_t{1} << 62;
inline int64_t whole_bytes(double bytes) {
  if (!(bytes < static_cast<double>(kMaxSimulatedBytes))) return kMaxSimulatedBytes;
  return bytes > 0 ? std::llround(bytes) : 0;
}

// a + b for a, b in [0, kMaxSimulatedNs], saturating at kMaxSimulatedNs.
constexpr int64_t saturating_add_ns(int64_t a, int64_t b) {
  return a > kMaxSimulatedNs - b ? kMaxSimulatedNs : a + b;
}

}  // namespace cf

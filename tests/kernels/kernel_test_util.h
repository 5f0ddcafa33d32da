// Test helpers shared by the kernel tests: the one closeness rule |got − ref| ≤ atol + rtol·|ref|
// with a worst-element report, seeded random inputs, NaN-filled outputs and central-difference
// gradients of double reference functions. Not a reference implementation (reference.h).
#pragma once

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <limits>
#include <random>
#include <span>
#include <string>
#include <vector>

namespace cf::test {

struct Tolerance {
  double atol = 0.0;
  double rtol = 0.0;
};

// Passes when every element satisfies |got − ref| ≤ atol + rtol·|ref| (a NaN never does, so an
// output left NaN-filled fails). On failure names the worst element, its values and the share
// of its allowance it used.
template <typename Got, typename Ref>
::testing::AssertionResult AllClose(std::span<const Got> got, std::span<const Ref> ref,
                                    Tolerance tol) {
  if (got.size() != ref.size()) {
    return ::testing::AssertionFailure() << "sizes differ: " << got.size() << " vs " << ref.size();
  }
  size_t worst = 0, failures = 0;
  double worst_share = -1.0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double g = double(got[i]), r = double(ref[i]);
    const double allowance = tol.atol + tol.rtol * std::fabs(r);
    const double diff = std::fabs(g - r);
    double share = diff == 0.0 ? 0.0 : diff / allowance;  // exact matches pass at tolerance 0
    if (std::isnan(share)) share = std::numeric_limits<double>::infinity();
    if (share > 1.0) ++failures;
    if (share > worst_share) worst_share = share, worst = i;
  }
  const std::string report =
      got.empty() ? std::string("no elements")
                  : fmt::format(
                        "worst element {} of {}: got {:.9g} ref {:.9g} |diff| {:.3g}, "
                        "{:.1f}% of allowance (atol {:g}, rtol {:g})",
                        worst, got.size(), double(got[worst]), double(ref[worst]),
                        std::fabs(double(got[worst]) - double(ref[worst])), 100.0 * worst_share,
                        tol.atol, tol.rtol);
  if (failures > 0) {
    return ::testing::AssertionFailure() << failures << " elements out of tolerance; " << report;
  }
  // CF_CLOSENESS_REPORT=1 prints passing comparisons too: how much headroom each tolerance has.
  if (std::getenv("CF_CLOSENESS_REPORT") != nullptr) std::fprintf(stderr, "  %s\n", report.c_str());
  return ::testing::AssertionSuccess() << report;
}

template <typename Got, typename Ref>
::testing::AssertionResult AllClose(const std::vector<Got>& got, const std::vector<Ref>& ref,
                                    Tolerance tol) {
  return AllClose(std::span<const Got>(got), std::span<const Ref>(ref), tol);
}

// Bitwise equality of float arrays (NaN-filled elements compare unequal).
inline ::testing::AssertionResult BitwiseEqual(const std::vector<float>& got,
                                               const std::vector<float>& ref) {
  if (got.size() != ref.size()) return ::testing::AssertionFailure() << "sizes differ";
  for (size_t i = 0; i < got.size(); ++i) {
    if (!(got[i] == ref[i])) {
      return ::testing::AssertionFailure()
             << "element " << i << ": " << fmt::format("{:.9g} vs {:.9g}", got[i], ref[i]);
    }
  }
  return ::testing::AssertionSuccess();
}

// True when some element is non-zero and none is NaN: guards against vacuous comparisons.
template <typename T>
::testing::AssertionResult NonZeroAndFinite(const std::vector<T>& values) {
  bool any_nonzero = false;
  for (size_t i = 0; i < values.size(); ++i) {
    if (!std::isfinite(double(values[i]))) {
      return ::testing::AssertionFailure() << "element " << i << " is " << values[i];
    }
    any_nonzero = any_nonzero || values[i] != T(0);
  }
  if (!any_nonzero) return ::testing::AssertionFailure() << "all " << values.size() << " zero";
  return ::testing::AssertionSuccess();
}

inline std::vector<float> RandomNormal(size_t n, uint32_t seed, float stddev = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, stddev);
  std::vector<float> values(n);
  for (float& x : values) x = dist(rng);
  return values;
}

inline std::vector<int32_t> RandomInts(size_t n, int32_t lo, int32_t hi, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int32_t> dist(lo, hi);
  std::vector<int32_t> values(n);
  for (int32_t& x : values) x = dist(rng);
  return values;
}

inline std::vector<float> NaNs(size_t n) {
  return std::vector<float>(n, std::numeric_limits<float>::quiet_NaN());
}

inline std::vector<double> AsDouble(const std::vector<float>& values) {
  return std::vector<double>(values.begin(), values.end());
}

// ∂L/∂x for L(x) = Σ_i weights_i · f(x)_i, by central differences (f(x + h) − f(x − h)) / 2h in
// double. With |f'''| ~ 1 the truncation error is ~h²/6 and the rounding error ~1e-16/h, both
// below 1e-9 at h = 1e-5: negligible against the fp32 tolerances it is compared with.
using DoubleFn = std::function<std::vector<double>(const std::vector<double>&)>;
inline std::vector<double> NumericGradient(const DoubleFn& f, std::vector<double> x,
                                           const std::vector<double>& weights, double h = 1e-5) {
  std::vector<double> grad(x.size());
  auto weighted = [&](const std::vector<double>& y) {
    double sum = 0.0;
    for (size_t i = 0; i < y.size(); ++i) sum += weights[i] * y[i];
    return sum;
  };
  for (size_t i = 0; i < x.size(); ++i) {
    const double x0 = x[i];
    x[i] = x0 + h;
    const double plus = weighted(f(x));
    x[i] = x0 - h;
    const double minus = weighted(f(x));
    x[i] = x0;
    grad[i] = (plus - minus) / (2.0 * h);
  }
  return grad;
}

}  // namespace cf::test

namespace cf::test {

// a + b elementwise (expected gradient buffers = initial contents + the true gradient, since
// every backward but cross-entropy's accumulates).
inline std::vector<double> Plus(const std::vector<float>& a, const std::vector<double>& b) {
  std::vector<double> sum(a.size());
  for (size_t i = 0; i < a.size(); ++i) sum[i] = double(a[i]) + b[i];
  return sum;
}

// Tolerances of the fp32 kernels against the float64 references, for inputs ~N(0, 1). The
// worst shares of the allowance measured on the CPU kernels (CF_CLOSENESS_REPORT=1): 35%
// elementwise (SwiGLU backward), 7% reduction (linear), 2.3% backward (RMSNorm).
// Elementwise ops: a few fp32 roundings (2^-24 ≈ 6e-8 relative each) and libm exp/sin/cos
// (≤ 2 ulp); 1e-6 is ~16 ulp. atol covers results that cancel to ~0.
inline constexpr Tolerance kElementwiseTol{1e-6, 1e-6};
// Reductions over n ≤ ~150 terms of size ≤ ~3: the worst-case fp32 accumulation bound
// γ_n·Σ|terms| (Higham, Accuracy and Stability, §3.1) is n·6e-8·Σ|terms| ≈ 1e-5 at n = 150;
// observed errors are ~√n smaller, so 1e-5 leaves headroom without hiding an indexing bug
// (which errs by O(1)).
inline constexpr Tolerance kReductionTol{1e-5, 1e-5};
// Backwards that chain two reductions (attention: S = QKᵀ then dP = dO·Vᵀ and dQ = dS·K;
// RMSNorm and cross-entropy: a row sum feeding every element): twice the reduction allowance.
inline constexpr Tolerance kBackwardTol{2e-5, 2e-5};

}  // namespace cf::test

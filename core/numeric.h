// Small integer helpers used across the libraries. Not a math library.
#pragma once

#include <cstdint>

namespace cf {

// ⌈a / b⌉ for a ≥ 0 and b > 0, without the overflow of (a + b − 1) / b near INT64_MAX.
constexpr int64_t ceil_div(int64_t a, int64_t b) { return a / b + (a % b != 0 ? 1 : 0); }

}  // namespace cf

#include "core/units.h"

#include <fmt/format.h>

namespace cf {

std::string format_bytes(int64_t bytes) {
  const double value = static_cast<double>(bytes);
  const double magnitude = value < 0 ? -value : value;
  constexpr double kGiB = 1024.0 * 1024 * 1024;
  if (magnitude >= kGiB) return fmt::format("{:.2f} GiB", value / kGiB);
  if (magnitude >= 1024.0 * 1024) return fmt::format("{:.2f} MiB", value / (1024.0 * 1024));
  if (magnitude >= 1024.0) return fmt::format("{:.2f} KiB", value / 1024.0);
  return fmt::format("{} B", bytes);
}

std::string format_rate(double per_s) {
  if (per_s >= 1e6) return fmt::format("{:.2f}M", per_s / 1e6);
  if (per_s >= 1e3) return fmt::format("{:.1f}K", per_s / 1e3);
  return fmt::format("{:.1f}", per_s);
}

}  // namespace cf

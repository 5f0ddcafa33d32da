// Quantities written for people: bytes ("12.34 GiB") and rates ("247.5K"), shared by the tables
// and the HTML reports.
#pragma once

#include <cstdint>
#include <string>

namespace cf {

// "12.34 GiB", "512.00 MiB", "3.00 KiB", "17 B".
std::string format_bytes(int64_t bytes);
// "247.5K" / "1.23M" (per second, the unit left to the caller).
std::string format_rate(double per_s);

}  // namespace cf

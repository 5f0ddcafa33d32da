// The progress line of tune and sweep (progress.h): bar, counts, best so far, times.
#include "tuner/progress.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace cf {
namespace {

constexpr int kBarWidth = 20;

// Characters as a terminal shows them: UTF-8 code points (every byte but continuation bytes).
int display_width(const std::string& text) {
  int width = 0;
  for (unsigned char c : text) width += (c & 0xC0) != 0x80;
  return width;
}

// The first `width` code points of `text`.
std::string first_code_points(const std::string& text, int width) {
  size_t end = 0;
  for (int seen = 0; end < text.size(); ++end) {
    if ((static_cast<unsigned char>(text[end]) & 0xC0) != 0x80 && seen++ == width) break;
  }
  return text.substr(0, end);
}

}  // namespace

std::optional<double> remaining_estimate_s(double elapsed_s, double fraction) {
  if (!(fraction >= 0.01) || !(elapsed_s >= 0)) return std::nullopt;
  if (fraction >= 1) return 0.0;
  return elapsed_s * (1 - fraction) / fraction;
}

std::string format_duration(double seconds) {
  seconds = std::max(0.0, seconds);
  if (seconds < 9.95) return fmt::format("{:.1f} s", seconds);  // not "10.0 s"
  const long long s = std::llround(seconds);
  if (s < 60) return fmt::format("{} s", s);
  if (s < 3600) return fmt::format("{} min {:02} s", s / 60, s % 60);
  return fmt::format("{} h {:02} min", s / 3600, (s % 3600) / 60);
}

std::string progress_line(const SearchProgress& p, int columns) {
  const double share = p.total > 0 ? std::clamp(double(p.done) / p.total, 0.0, 1.0) : 0.0;
  const int filled = static_cast<int>(share * kBarWidth);
  std::string counts = fmt::format(
      " [{}{}] {:>{}}/{} {:>3.0f}%", std::string(filled, '#'), std::string(kBarWidth - filled, '.'),
      p.done, std::to_string(p.total).size(), p.total, std::floor(share * 100));
  counts += "  " + format_duration(p.elapsed_s);
  const std::optional<double> left = remaining_estimate_s(p.elapsed_s, p.fraction);
  counts += left ? ", at most ~" + format_duration(*left) + " left" : ", estimating";
  // What is searched, then the counts and times, then the best so far: cut in that order of
  // need (the best first, then the label) to fit the width.
  std::string what = p.what;
  const int room_for_what = columns - display_width(counts);
  if (display_width(what) > room_for_what) {
    what = room_for_what > 1 ? first_code_points(what, room_for_what - 1) + "…" : "";
  }
  std::string best = p.best.empty() ? "" : "  best " + p.best;
  const int room = columns - display_width(what) - display_width(counts);
  if (display_width(best) > room) best = room > 8 ? first_code_points(best, room - 1) + "…" : "";
  return what + counts + best;
}

}  // namespace cf

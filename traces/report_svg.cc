// The report module's figures: timelines, line charts, heat maps and stacked bars as inline SVG
// (report_html.h). The page shell, formats and tables are report_html.cc.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <set>
#include <tuple>

#include "core/check.h"
#include "traces/report_html.h"

namespace cf::report {
namespace {

struct Tick {
  double value;
  std::string label;
};

// A divisor and name that keep an axis's numbers short, from the largest magnitude on it.
std::pair<double, std::string> axis_scale(Unit unit, double magnitude) {
  switch (unit) {
    case Unit::kTimeNs:
      if (magnitude >= 1e9) return {1e9, " s"};
      if (magnitude >= 1e6) return {1e6, " ms"};
      if (magnitude >= 1e3) return {1e3, " µs"};
      return {1, " ns"};
    case Unit::kBytes:
      if (magnitude >= 0x1p30) return {0x1p30, " GiB"};
      if (magnitude >= 0x1p20) return {0x1p20, " MiB"};
      if (magnitude >= 0x1p10) return {0x1p10, " KiB"};
      return {1, " B"};
    case Unit::kPercent:
      return {0.01, "%"};
    case Unit::kRate:
    case Unit::kNumber:
      if (magnitude >= 1e9) return {1e9, "G"};
      if (magnitude >= 1e6) return {1e6, "M"};
      if (magnitude >= 1e4) return {1e3, "K"};
      return {1, ""};
  }
  return {1, ""};
}

// 1, 2 or 5 × 10^k giving at most `max_ticks` steps over `range`.
double nice_step(double range, int max_ticks) {
  if (!(range > 0)) return 1;
  const double base = std::pow(10.0, std::floor(std::log10(range / max_ticks)));
  for (double f : {1.0, 2.0, 5.0, 10.0}) {
    if (range / (base * f) <= max_ticks) return base * f;
  }
  return base * 10;
}

// Ticks of a linear axis from lo to hi, labelled in one unit.
std::vector<Tick> linear_ticks(Unit unit, double lo, double hi, int max_ticks) {
  const auto [div, name] = axis_scale(unit, std::max(std::fabs(lo), std::fabs(hi)));
  const double step = nice_step((hi - lo) / div, max_ticks);
  std::vector<Tick> ticks;
  for (double k = std::ceil(lo / div / step); k * step <= hi / div * (1 + 1e-12); k += 1) {
    const double scaled = k * step;
    ticks.push_back({scaled * div, scaled == 0 ? "0" : fmt::format("{:.6g}{}", scaled, name)});
  }
  return ticks;
}

// JSON for a <script> element: "</" written "<\/" so no text closes the element.
std::string script_json(const nlohmann::json& value) {
  std::string text = value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    out += text[i];
    if (text[i] == '<' && i + 1 < text.size() && text[i + 1] == '/') out += '\\';
  }
  return out;
}

std::string series_class(size_t i) { return fmt::format("s{}", i % 10); }

// Names with their palette index.
std::string legend_html(const std::vector<std::pair<std::string, size_t>>& names) {
  std::string out = "<div class=\"legend\">";
  for (const auto& [name, colour] : names) {
    out += fmt::format(
        "<svg class=\"key\" width=\"12\" height=\"12\"><rect class=\"{}\" width=\"12\" "
        "height=\"12\"/></svg>{}",
        series_class(colour), escape(name));
  }
  return out + "</div>\n";
}

// Timeline geometry, px.
constexpr double kLabelWidth = 130;
constexpr double kPlotWidth = 1080;
constexpr double kLaneHeight = 22;
constexpr double kAxisHeight = 24;

}  // namespace

std::string timeline_html(const Timeline& t) {
  const int64_t span = std::max<int64_t>(t.span_ns, 1);
  const double plot_height = kLaneHeight * static_cast<double>(t.lanes.size());
  const double scale = kPlotWidth / static_cast<double>(span);
  std::string out = fmt::format(
      "<figure class=\"tl\" id=\"{}\" data-span=\"{}\" data-lanes=\"{}\">\n<figcaption>{}</"
      "figcaption>\n<svg width=\"{:.0f}\" height=\"{:.0f}\" viewBox=\"0 0 {:.0f} {:.0f}\">\n",
      t.id, span, t.lanes.size(), escape(t.caption), kLabelWidth + kPlotWidth + 10,
      plot_height + kAxisHeight, kLabelWidth + kPlotWidth + 10, plot_height + kAxisHeight);
  for (size_t i = 0; i < t.lanes.size(); ++i) {
    const double y = kLaneHeight * static_cast<double>(i);
    out += fmt::format(
        "<text class=\"lane\" x=\"0\" y=\"{:.0f}\">{}</text><line class=\"lane\" x1=\"{:.0f}\" "
        "y1=\"{:.0f}\" x2=\"{:.0f}\" y2=\"{:.0f}\"/>\n",
        y + 12, escape(t.lanes[i]), kLabelWidth, y + kLaneHeight - 1, kLabelWidth + kPlotWidth,
        y + kLaneHeight - 1);
  }
  out += fmt::format(
      "<svg class=\"plot\" x=\"{:.0f}\" y=\"0\" width=\"{:.0f}\" height=\"{:.0f}\" viewBox=\"0 0 "
      "{:.0f} {:.0f}\" preserveAspectRatio=\"none\">\n",
      kLabelWidth, kPlotWidth, plot_height, kPlotWidth, plot_height);
  std::vector<const TimelineBar*> bars;
  bars.reserve(t.bars.size());
  for (const TimelineBar& b : t.bars) {
    CF_CHECK(b.lane >= 0 && static_cast<size_t>(b.lane) < t.lanes.size());
    bars.push_back(&b);
  }
  std::stable_sort(bars.begin(), bars.end(), [](const TimelineBar* a, const TimelineBar* b) {
    return std::tie(a->lane, a->start_ns, a->low, a->end_ns) <
           std::tie(b->lane, b->start_ns, b->low, b->end_ns);
  });
  nlohmann::json tips = nlohmann::json::array();
  int lane = -1;
  for (const TimelineBar* b : bars) {
    if (b->lane != lane) {
      if (lane >= 0) out += "</g>\n";
      lane = b->lane;
      out += fmt::format("<g transform=\"translate(0,{:.0f})\">", kLaneHeight * lane);
    }
    const double x = static_cast<double>(b->start_ns) * scale;
    const double width = std::max(0.5, static_cast<double>(b->end_ns - b->start_ns) * scale);
    out += fmt::format("<rect x=\"{:.2f}\" width=\"{:.2f}\" class=\"{}{}{}\"/>", x, width, b->kind,
                       b->low ? " l" : "", b->critical ? " c" : "");
    tips.push_back(b->tip);
  }
  if (lane >= 0) out += "</g>\n";
  out += "</svg>\n";
  // The time axis (the script redraws it when the plot is zoomed).
  out += fmt::format(
      "<line class=\"axis\" x1=\"{:.0f}\" y1=\"{:.0f}\" x2=\"{:.0f}\" y2=\"{:.0f}\"/>\n<g "
      "class=\"taxis\" transform=\"translate({:.0f},{:.0f})\">",
      kLabelWidth, plot_height, kLabelWidth + kPlotWidth, plot_height, kLabelWidth, plot_height);
  for (const Tick& tick : linear_ticks(Unit::kTimeNs, 0, static_cast<double>(span), 10)) {
    const double x = tick.value * scale;
    out += fmt::format(
        "<line class=\"axis\" x1=\"{:.2f}\" y1=\"0\" x2=\"{:.2f}\" y2=\"4\"/><text class=\"mid\" "
        "x=\"{:.2f}\" y=\"16\">{}</text>",
        x, x, x, tick.label);
  }
  out += "</g>\n</svg>\n";
  return out +
         fmt::format("<script type=\"application/json\" class=\"tips\">{}</script>\n</figure>\n",
                     script_json(tips));
}

std::string timeline_key_html(const std::vector<std::pair<std::string, std::string>>& kinds) {
  std::string out = "<div class=\"legend\">";
  for (const auto& [kind, label] : kinds) {
    out += fmt::format(
        "<svg class=\"key\" width=\"12\" height=\"12\"><rect class=\"{}\" "
        "width=\"12\" height=\"12\"/></svg>{}",
        kind, escape(label));
  }
  return out + "</div>\n";
}

std::string line_chart_html(const LineChart& c) {
  constexpr double kLeft = 76, kRight = 16, kTop = 14, kBottom = 44;
  const double w = c.width - kLeft - kRight, h = c.height - kTop - kBottom;
  double x_lo = INFINITY, x_hi = -INFINITY, y_hi = 0;
  std::set<double> xs;
  for (const Series& s : c.series) {
    for (const auto& [x, y] : s.points) {
      x_lo = std::min(x_lo, x);
      x_hi = std::max(x_hi, x);
      y_hi = std::max(y_hi, y);
      xs.insert(x);
    }
  }
  for (const RefLine& r : c.h_lines) y_hi = std::max(y_hi, r.value);
  if (!(x_lo <= x_hi)) x_lo = x_hi = c.x_log2 ? 1 : 0;
  if (c.x_log2) x_lo = std::max(x_lo, 1e-9);
  if (x_lo == x_hi) {
    x_lo = c.x_log2 ? x_lo / 2 : x_lo - 1;
    x_hi = c.x_log2 ? x_hi * 2 : x_hi + 1;
  }
  if (!(y_hi > 0)) y_hi = 1;
  y_hi *= 1.08;
  auto px = [&](double x) {
    const double f = c.x_log2 ? (std::log2(std::max(x, 1e-9)) - std::log2(x_lo)) /
                                    (std::log2(x_hi) - std::log2(x_lo))
                              : (x - x_lo) / (x_hi - x_lo);
    return kLeft + f * w;
  };
  auto py = [&](double y) { return kTop + h - y / y_hi * h; };
  std::string out = fmt::format(
      "<figure class=\"chart\" id=\"{}\">\n<figcaption>{}</figcaption>\n<svg width=\"{:.0f}\" "
      "height=\"{:.0f}\" viewBox=\"0 0 {:.0f} {:.0f}\">\n",
      c.id, escape(c.caption), c.width, c.height, c.width, c.height);
  for (const Tick& t : linear_ticks(c.y_unit, 0, y_hi, 6)) {
    out += fmt::format(
        "<line class=\"grid\" x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\"/><text "
        "class=\"end\" x=\"{:.1f}\" y=\"{:.1f}\">{}</text>\n",
        kLeft, py(t.value), kLeft + w, py(t.value), kLeft - 4, py(t.value) + 4, t.label);
  }
  std::vector<Tick> x_ticks;
  if (c.x_log2 && xs.size() <= 12) {
    for (double x : xs) x_ticks.push_back({x, format_value(c.x_unit, x)});
  } else if (c.x_log2) {
    for (double x = std::exp2(std::ceil(std::log2(x_lo))); x <= x_hi; x *= 2)
      x_ticks.push_back({x, format_value(c.x_unit, x)});
  } else {
    x_ticks = linear_ticks(c.x_unit, x_lo, x_hi, 8);
  }
  for (const Tick& t : x_ticks) {
    out += fmt::format(
        "<line class=\"axis\" x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\"/><text "
        "class=\"mid\" x=\"{:.1f}\" y=\"{:.1f}\">{}</text>\n",
        px(t.value), kTop + h, px(t.value), kTop + h + 4, px(t.value), kTop + h + 16, t.label);
  }
  out += fmt::format(
      "<line class=\"axis\" x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{2:.1f}\" y2=\"{1:.1f}\"/><line "
      "class=\"axis\" x1=\"{0:.1f}\" y1=\"{3:.1f}\" x2=\"{0:.1f}\" y2=\"{1:.1f}\"/>\n<text "
      "class=\"mid\" x=\"{4:.1f}\" y=\"{5:.1f}\">{6}</text><text class=\"mid\" "
      "transform=\"translate(12,{7:.1f}) rotate(-90)\">{8}</text>\n",
      kLeft, kTop + h, kLeft + w, kTop, kLeft + w / 2, c.height - 6, escape(c.x_title),
      kTop + h / 2, escape(c.y_title));
  for (size_t i = 0; i < c.series.size(); ++i) {
    const Series& s = c.series[i];
    if (s.points.empty()) continue;
    std::string d = fmt::format("M{:.1f} {:.1f}", px(s.points[0].first), py(s.points[0].second));
    for (size_t k = 1; k < s.points.size(); ++k) {
      if (s.steps) {
        d += fmt::format("H{:.1f}V{:.1f}", px(s.points[k].first), py(s.points[k].second));
      } else {
        d += fmt::format("L{:.1f} {:.1f}", px(s.points[k].first), py(s.points[k].second));
      }
    }
    if (s.steps) d += fmt::format("H{:.1f}", kLeft + w);
    const std::string cls = series_class(s.colour >= 0 ? static_cast<size_t>(s.colour) : i);
    out += fmt::format("<path class=\"series {}{}\" data-series=\"{}\" d=\"{}\"/>\n", cls,
                       s.dashed ? " dashed" : "", escape(s.name), d);
    if (s.steps || !s.markers) continue;
    for (size_t k = 0; k < s.points.size(); ++k) {
      const std::string tip =
          k < s.tips.size()
              ? s.tips[k]
              : fmt::format("{}: {}, {}", s.name, format_value(c.x_unit, s.points[k].first),
                            format_value(c.y_unit, s.points[k].second));
      out += fmt::format(
          "<circle class=\"{}\" cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"3.5\" data-tip=\"{}\"/>", cls,
          px(s.points[k].first), py(s.points[k].second), escape(tip));
    }
    out += "\n";
  }
  for (const RefLine& r : c.h_lines) {
    out += fmt::format(
        "<line class=\"ref\" x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\"/><text "
        "class=\"ref end\" x=\"{:.1f}\" y=\"{:.1f}\">{}</text>\n",
        kLeft, py(r.value), kLeft + w, py(r.value), kLeft + w - 2, py(r.value) - 3,
        escape(r.label));
  }
  for (const RefLine& r : c.v_lines) {
    out += fmt::format(
        "<line class=\"ref\" x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\"/><text "
        "class=\"ref\" x=\"{:.1f}\" y=\"{:.1f}\">{}</text>\n",
        px(r.value), kTop, px(r.value), kTop + h, px(r.value) + 3, kTop + 10, escape(r.label));
  }
  out += "</svg>\n";
  std::vector<std::pair<std::string, size_t>> names;
  for (size_t i = 0; i < c.series.size(); ++i) {
    const Series& s = c.series[i];
    names.emplace_back(s.name, s.colour >= 0 ? static_cast<size_t>(s.colour) : i);
  }
  return out + legend_html(names) + "</figure>\n";
}

namespace {

// Green (best) through yellow to red (worst), t in [0, 1].
std::string scale_colour(double t) {
  struct Rgb {
    double r, g, b;
  };
  constexpr Rgb kStops[] = {{26, 152, 80}, {254, 224, 139}, {215, 48, 39}};
  t = std::clamp(t, 0.0, 1.0);
  const int k = t < 0.5 ? 0 : 1;
  const double f = t < 0.5 ? t * 2 : (t - 0.5) * 2;
  const Rgb& a = kStops[k];
  const Rgb& b = kStops[k + 1];
  return fmt::format("#{:02x}{:02x}{:02x}", static_cast<int>(std::lround(a.r + f * (b.r - a.r))),
                     static_cast<int>(std::lround(a.g + f * (b.g - a.g))),
                     static_cast<int>(std::lround(a.b + f * (b.b - a.b))));
}

// The heat scale's span in log ratio: the values' own, at least a factor of kScaleMinRatio, so
// that values a few percent apart are not painted best and worst.
constexpr double kScaleMinRatio = 1.2;
double ratio_span(double lo, double hi) {
  return std::max(lo > 0 ? std::log(hi / lo) : 0.0, std::log(kScaleMinRatio));
}

// Where `value` sits on the scale: 0 at the best value, 1 at the far end.
double scale_position(const HeatMap& m, double lo, double hi, double value) {
  if (!(lo > 0 && value > 0)) return 0;
  const double ratio = m.lower_is_better ? value / lo : hi / value;
  return std::log(ratio) / ratio_span(lo, hi);
}

}  // namespace

std::string heat_map_html(const HeatMap& m) {
  constexpr double kLeft = 86, kTop = 34;
  // Tall or wide maps (K 1..64, a dozen ChunkSizes) in smaller cells.
  const double kCellW = m.cols.size() > 12 ? 62 : 74;
  const double kCellH = m.rows.size() > 16 ? 16 : 24;
  double lo = INFINITY, hi = -INFINITY;
  for (const HeatCell& c : m.cells) {
    if (c.value) {
      lo = std::min(lo, *c.value);
      hi = std::max(hi, *c.value);
    }
  }
  const double width = kLeft + kCellW * static_cast<double>(m.cols.size()) + 4;
  const double height = kTop + kCellH * static_cast<double>(m.rows.size()) + 4;
  std::string out = fmt::format(
      "<figure class=\"heat\" id=\"{}\">\n<figcaption>{}</figcaption>\n<svg width=\"{:.0f}\" "
      "height=\"{:.0f}\" viewBox=\"0 0 {:.0f} {:.0f}\">\n<text x=\"{:.0f}\" y=\"11\">{} →</text>"
      "<text x=\"0\" y=\"{:.0f}\">{} ↓</text>\n",
      m.id, escape(m.caption), width, height, width, height, kLeft, escape(m.col_title), kTop - 6,
      escape(m.row_title));
  for (size_t j = 0; j < m.cols.size(); ++j) {
    out +=
        fmt::format("<text class=\"mid\" x=\"{:.0f}\" y=\"{:.0f}\">{}</text>",
                    kLeft + kCellW * (static_cast<double>(j) + 0.5), kTop - 6, escape(m.cols[j]));
  }
  for (size_t i = 0; i < m.rows.size(); ++i) {
    out += fmt::format("<text x=\"0\" y=\"{:.0f}\">{}</text>",
                       kTop + kCellH * (static_cast<double>(i) + 0.5) + 4, escape(m.rows[i]));
  }
  out += "\n";
  for (const HeatCell& c : m.cells) {
    CF_CHECK(c.row >= 0 && static_cast<size_t>(c.row) < m.rows.size() && c.col >= 0 &&
             static_cast<size_t>(c.col) < m.cols.size());
    const double x = kLeft + kCellW * c.col, y = kTop + kCellH * c.row;
    std::string fill;
    if (c.value) {
      fill = fmt::format(" fill=\"{}\"", scale_colour(scale_position(m, lo, hi, *c.value)));
    }
    out += fmt::format(
        "<rect class=\"cell{}{}\" x=\"{:.0f}\" y=\"{:.0f}\" width=\"{:.0f}\" height=\"{:.0f}\"{} "
        "data-tip=\"{}\"/><text class=\"cell\" x=\"{:.0f}\" y=\"{:.0f}\">{}</text>\n",
        c.mark.empty() ? "" : " ", c.mark, x, y, kCellW, kCellH, fill, escape(c.tip),
        x + kCellW / 2, y + kCellH / 2 + 3.5, escape(c.text));
  }
  out += "</svg>\n";
  if (lo <= hi) {
    out += fmt::format(
        "<div class=\"legend\"><span class=\"key\" style=\"background:{}\"></span>{} (best)<span "
        "class=\"key\" style=\"background:{}\"></span>{}<span class=\"key\" "
        "style=\"background:#ddd\"></span>does not fit<span class=\"key\" "
        "style=\"background:#f4f4f4;border:1px solid #ccc\"></span>proved slower, not "
        "simulated</div>\n",
        scale_colour(0), format_value(m.unit, m.lower_is_better ? lo : hi), scale_colour(1),
        format_value(m.unit, m.lower_is_better ? lo * std::exp(ratio_span(lo, hi))
                                               : hi / std::exp(ratio_span(lo, hi))));
  }
  return out + "</figure>\n";
}

std::string stacked_bars_html(const StackedBars& s) {
  constexpr double kLeft = 76, kTop = 14, kBottom = 30, kBarW = 40, kGap = 22;
  const double width = kLeft + (kBarW + kGap) * static_cast<double>(s.bars.size()) + 120;
  const double h = s.height - kTop - kBottom;
  double y_hi = s.limit ? s.limit->value : 0;
  for (const std::vector<double>& bar : s.values) {
    double sum = 0;
    for (double v : bar) sum += v;
    y_hi = std::max(y_hi, sum);
  }
  if (!(y_hi > 0)) y_hi = 1;
  y_hi *= 1.08;
  auto py = [&](double y) { return kTop + h - y / y_hi * h; };
  std::string out = fmt::format(
      "<figure class=\"bars\" id=\"{}\">\n<figcaption>{}</figcaption>\n<svg width=\"{:.0f}\" "
      "height=\"{:.0f}\" viewBox=\"0 0 {:.0f} {:.0f}\">\n",
      s.id, escape(s.caption), width, s.height, width, s.height);
  for (const Tick& t : linear_ticks(s.unit, 0, y_hi, 5)) {
    out += fmt::format(
        "<line class=\"grid\" x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\"/><text "
        "class=\"end\" x=\"{:.1f}\" y=\"{:.1f}\">{}</text>\n",
        kLeft, py(t.value), width - 110, py(t.value), kLeft - 4, py(t.value) + 4, t.label);
  }
  for (size_t b = 0; b < s.bars.size(); ++b) {
    const double x = kLeft + kGap / 2 + (kBarW + kGap) * static_cast<double>(b);
    double base = 0;
    for (size_t p = 0; p < s.parts.size() && p < s.values[b].size(); ++p) {
      const double v = s.values[b][p];
      if (v <= 0) continue;
      out += fmt::format(
          "<rect class=\"{}\" x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.0f}\" height=\"{:.1f}\" "
          "data-tip=\"{}\"/>",
          series_class(p), x, py(base + v), kBarW, py(base) - py(base + v),
          escape(fmt::format("{} · {}: {}", s.bars[b], s.parts[p], format_value(s.unit, v))));
      base += v;
    }
    out += fmt::format("<text class=\"mid\" x=\"{:.1f}\" y=\"{:.1f}\">{}</text>\n", x + kBarW / 2,
                       kTop + h + 16, escape(s.bars[b]));
  }
  out += fmt::format(
      "<line class=\"axis\" x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\"/>\n", kLeft,
      kTop + h, width - 110, kTop + h);
  if (s.limit) {
    out += fmt::format(
        "<line class=\"ref\" x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\"/><text "
        "class=\"ref\" x=\"{:.1f}\" y=\"{:.1f}\">{}</text>\n",
        kLeft, py(s.limit->value), width - 110, py(s.limit->value), width - 106,
        py(s.limit->value) + 4, escape(s.limit->label));
  }
  std::vector<std::pair<std::string, size_t>> names;
  for (size_t p = 0; p < s.parts.size(); ++p) names.emplace_back(s.parts[p], p);
  return out + "</svg>\n" + legend_html(names) + "</figure>\n";
}

}  // namespace cf::report

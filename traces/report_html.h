// The report module: the self-contained HTML pages of `simulate`, `tune`, `sweep` and `compare`
// are built from these parts — one page shell (inline style and a small script, nothing
// fetched from the network), timelines, line charts, heat maps, stacked bars and tables, all
// inline SVG. Deterministic: the same inputs give the same bytes (no clock, no random ids).
// Readable when printed (the script only adds zoom and hover; the SVG is complete without it).
// Not what any report says: sim/report_html.h, tuner/report_html.h, traces/html_report.h.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace cf::report {

// Escapes & < > " ' for HTML text and attribute values.
std::string escape(const std::string& text);

// A whole page: doctype, the shared style and script, `title` as the document's title, `body`
// (HTML) as its body. The script marks <html data-ready="1"> when it has set every figure up,
// and records an uncaught error in <html data-script-error="...">: a browser test reads both.
// `kind` names the report (data-report on <body>): "simulate", "tune", "sweep", "compare".
std::string page(const std::string& kind, const std::string& title, const std::string& body);

// How axis ticks and values are written.
enum class Unit {
  kNumber,   // 1.5, 12, 3.2K
  kTimeNs,   // ns values written in ns, µs, ms or s (chosen from the axis span)
  kBytes,    // GiB / MiB / KiB
  kRate,     // tokens/s: 12.3K, 1.23M
  kPercent,  // 0..1 values written as percent
};
// One value as the axis of `unit` writes it ("1.25 ms", "61.3 GiB", "37%").
std::string format_value(Unit unit, double value);

// ---- timelines ----------------------------------------------------------------------------

// One bar of a timeline. `kind` is its colour class: F, Fs (F*), R, B, send, recv, coll (a
// TP/CP collective inside an op), dp (DP gradient reduction), opt (optimizer), other.
struct TimelineBar {
  int lane = 0;
  int64_t start_ns = 0;  // from the timeline's origin
  int64_t end_ns = 0;
  std::string kind;
  bool low = false;       // in the lane's lower band (communication) instead of the upper one
  bool critical = false;  // on the critical path: outlined
  std::string tip;        // plain text shown on hover
};

struct Timeline {
  std::string id;  // unique on the page: [a-z0-9-]
  std::string caption;
  std::vector<std::string> lanes;  // one row each, top to bottom
  std::vector<TimelineBar> bars;   // any order: drawn lane by lane, by start
  int64_t span_ns = 1;             // the time axis: 0 .. span_ns
};
// A figure with the lanes' labels, the bars (zoom: wheel over the plot, drag to pan,
// double-click to reset; hover: the bar's tip) and the time axis. Bars narrower than a pixel
// are drawn a pixel wide so short ops stay visible.
std::string timeline_html(const Timeline& timeline);

// The colour key of timeline bar kinds: `kinds` in the order given, each with its label.
std::string timeline_key_html(const std::vector<std::pair<std::string, std::string>>& kinds);

// ---- line charts -------------------------------------------------------------------------

struct Series {
  std::string name;
  std::vector<std::pair<double, double>> points;  // (x, y), x ascending
  bool steps = false;  // a counter: each value holds until the next point (memory over time)
  std::vector<std::string> tips;  // per point (optional): hover text of its marker
  bool markers = true;            // a dot per point (not for steps)
  bool dashed = false;
  int colour = -1;  // palette index (.s0 … .s9); -1: the series' position
};

// A horizontal (value = y) or vertical (value = x) reference line with its label.
struct RefLine {
  double value = 0;
  std::string label;
};

struct LineChart {
  std::string id;
  std::string caption;
  std::string x_title, y_title;
  Unit x_unit = Unit::kNumber, y_unit = Unit::kNumber;
  bool x_log2 = false;  // a log2 x axis (GPU counts, context lengths); ticks at the points' x
  std::vector<Series> series;
  std::vector<RefLine> h_lines;  // y = value, e.g. the device's capacity, a target rate
  std::vector<RefLine> v_lines;  // x = value, e.g. the smallest GPU count meeting a target
  double width = 560, height = 260;
};
std::string line_chart_html(const LineChart& chart);

// ---- heat maps ---------------------------------------------------------------------------

struct HeatCell {
  int row = 0, col = 0;
  std::optional<double> value;  // coloured on the map's scale; empty: no value (see `mark`)
  std::string text;             // written in the cell
  std::string tip;              // hover text
  // "" (a value), "infeasible" (hatched), "pruned" (proved slower, not simulated), "best"
  // (outlined), "same" (folded into another cell's plan).
  std::string mark;
};

struct HeatMap {
  std::string id;
  std::string caption;
  std::string row_title, col_title;
  std::vector<std::string> rows, cols;  // labels, top to bottom / left to right
  std::vector<HeatCell> cells;
  // Cells are coloured by their ratio to the best value: green at the best, red at the worst
  // value or 20% worse than the best, whichever is further (values must be > 0).
  bool lower_is_better = true;
  Unit unit = Unit::kNumber;  // of the values, for the scale's legend
};
std::string heat_map_html(const HeatMap& map);

// ---- stacked bars ------------------------------------------------------------------------

struct StackedBars {
  std::string id;
  std::string caption;
  std::vector<std::string> bars;            // one per bar, left to right
  std::vector<std::string> parts;           // the stack, bottom to top
  std::vector<std::vector<double>> values;  // [bar][part], ≥ 0
  Unit unit = Unit::kNumber;
  std::optional<RefLine> limit;  // a horizontal line, e.g. the device's capacity
  double height = 220;
};
std::string stacked_bars_html(const StackedBars& bars);

// ---- tables ------------------------------------------------------------------------------

// A table with a header row; cells are HTML (escape text first). `id` may be empty. Numbers align
// right; the columns whose letter in `left` is 'l' ("lll" : the first three) align left.
std::string table_html(const std::string& id, const std::vector<std::string>& header,
                       const std::vector<std::vector<std::string>>& rows,
                       const std::string& left = "");

}  // namespace cf::report

// The report module's page shell: style, script, value formats and tables (report_html.h). The
// figures are report_svg.cc.
#include "traces/report_html.h"

#include <fmt/format.h>

#include <cmath>

#include "core/units.h"

namespace cf::report {
namespace {

// The shared style. Colours of the timeline kinds are the compare page's (traces/html_report.cc
// keys them by op label); series and stacks cycle through the .s0 … .s9 palette.
constexpr const char* kStyle = R"(:root { color-scheme: light; }
body { font: 13px/1.4 system-ui, sans-serif; margin: 24px; color: #222; background: #fff; }
h1 { font-size: 20px; } h2 { font-size: 16px; margin-top: 28px; } h3 { font-size: 14px; }
table { border-collapse: collapse; margin: 8px 0 16px; }
th, td { border: 1px solid #ccc; padding: 2px 8px; text-align: right; }
td.l, th.l { text-align: left; }
th { background: #f2f2f2; }
pre { background: #f7f7f7; padding: 8px; border: 1px solid #ddd; overflow-x: auto; }
figure { margin: 8px 0 20px; }
figcaption { font-weight: bold; margin-bottom: 4px; }
svg text { font: 11px system-ui, sans-serif; fill: #333; }
svg text.mid { text-anchor: middle; } svg text.end { text-anchor: end; }
svg line.grid { stroke: #eee; } svg line.axis { stroke: #666; } svg line.lane { stroke: #eee; }
svg line.ref { stroke: #c00; stroke-dasharray: 6 3; } svg text.ref { fill: #c00; }
svg.plot rect { height: 14px; stroke: #fff; stroke-width: 0.3px; vector-effect: non-scaling-stroke; }
svg.plot rect.l { y: 15px; height: 5px; }
svg.plot rect.c { stroke: #000; stroke-width: 0.7px; }
body.cp-only svg.plot rect:not(.c) { opacity: 0.25; }
svg.plot { cursor: grab; }
.F { fill: #4e79a7; } .Fs { fill: #76b7b2; } .R { fill: #f28e2b; } .B { fill: #e15759; }
.send { fill: #9c755f; } .recv { fill: #bab0ac; } .coll { fill: #edc948; } .dp { fill: #b07aa1; }
.opt { fill: #59a14f; } .other { fill: #888; }
.s0 { fill: #4e79a7; stroke: #4e79a7; } .s1 { fill: #f28e2b; stroke: #f28e2b; }
.s2 { fill: #e15759; stroke: #e15759; } .s3 { fill: #76b7b2; stroke: #76b7b2; }
.s4 { fill: #59a14f; stroke: #59a14f; } .s5 { fill: #edc948; stroke: #edc948; }
.s6 { fill: #b07aa1; stroke: #b07aa1; } .s7 { fill: #ff9da7; stroke: #ff9da7; }
.s8 { fill: #9c755f; stroke: #9c755f; } .s9 { fill: #bab0ac; stroke: #bab0ac; }
path.series { fill: none; stroke-width: 1.8px; } path.series.dashed { stroke-dasharray: 5 3; }
.key { display: inline-block; width: 12px; height: 12px; margin: 0 4px 0 12px; vertical-align: -2px; }
.legend span.key:first-child { margin-left: 0; }
rect.cell { stroke: #fff; stroke-width: 1px; }
rect.cell.best { stroke: #000; stroke-width: 2.5px; }
rect.cell.infeasible { fill: #ddd; } rect.cell.pruned { fill: #f4f4f4; }
text.cell { font-size: 10px; text-anchor: middle; }
.controls button { font: inherit; margin-right: 6px; }
.note { color: #555; }
#tip { position: fixed; display: none; pointer-events: none; background: #fffff0;
  border: 1px solid #999; padding: 3px 6px; white-space: pre; font-size: 12px; z-index: 10; }
@media print {
  body { margin: 0; } .controls, #tip { display: none; }
  figure, table { break-inside: avoid; }
}
)";

// Zoom and hover. Everything is drawn without it; it adds: a tooltip for [data-tip] elements and
// for timeline bars (their texts in the figure's <script class="tips">, in bar order), zoom
// (wheel) and pan (drag) of timelines with their time axis redrawn, double-click to reset, the
// critical-path toggle, and the data-ready / data-script-error marks of report_html.h (with
// data-ready-ms: milliseconds from the page's start until the script was done).
constexpr const char* kScript = R"((function () {
  var root = document.documentElement;
  window.addEventListener('error', function (e) { root.setAttribute('data-script-error', String(e.message)); });
  var tip = document.getElementById('tip');
  function show(text, e) {
    tip.textContent = text; tip.style.display = 'block';
    var x = e.clientX + 14, y = e.clientY + 14;
    if (x + tip.offsetWidth > window.innerWidth) x = e.clientX - tip.offsetWidth - 8;
    if (y + tip.offsetHeight > window.innerHeight) y = e.clientY - tip.offsetHeight - 8;
    tip.style.left = x + 'px'; tip.style.top = y + 'px';
  }
  function units(span) {
    if (span >= 1e9) return [1e9, 's']; if (span >= 1e6) return [1e6, 'ms'];
    if (span >= 1e3) return [1e3, '\u00b5s']; return [1, 'ns'];
  }
  function step(span) {
    var s = Math.pow(10, Math.floor(Math.log10(Math.max(span, 1e-9))));
    var f = [1, 2, 5, 10];
    for (var i = 0; i < f.length; i++) if (span / (s * f[i]) <= 10) return s * f[i];
    return s * 10;
  }
  document.querySelectorAll('figure.tl').forEach(function (fig) {
    var plot = fig.querySelector('svg.plot'), axis = fig.querySelector('g.taxis');
    var W = +plot.getAttribute('width'), H = +plot.getAttribute('height');
    var span = +fig.getAttribute('data-span'), x0 = 0, w = W, rects = null, tips = null;
    var NS = 'http://www.w3.org/2000/svg';
    function draw() {
      plot.setAttribute('viewBox', x0 + ' 0 ' + w + ' ' + H);
      while (axis.firstChild) axis.removeChild(axis.firstChild);
      var t0 = span * x0 / W, t1 = span * (x0 + w) / W, u = units(t1 - t0), st = step((t1 - t0) / u[0]) * u[0];
      for (var t = Math.ceil(t0 / st) * st; t <= t1 + 1e-9; t += st) {
        var x = (t - t0) / (t1 - t0) * W;
        var l = document.createElementNS(NS, 'line');
        l.setAttribute('class', 'axis'); l.setAttribute('x1', x); l.setAttribute('x2', x);
        l.setAttribute('y1', 0); l.setAttribute('y2', 4); axis.appendChild(l);
        var tx = document.createElementNS(NS, 'text');
        tx.setAttribute('class', 'mid'); tx.setAttribute('x', x); tx.setAttribute('y', 16);
        tx.textContent = +(t / u[0]).toPrecision(6) + ' ' + u[1]; axis.appendChild(tx);
      }
    }
    plot.addEventListener('wheel', function (e) {
      e.preventDefault();
      var r = plot.getBoundingClientRect(), fx = (e.clientX - r.left) / r.width;
      var nw = Math.min(W, Math.max(W / 5000, w * (e.deltaY > 0 ? 1.25 : 0.8)));
      x0 = Math.min(W - nw, Math.max(0, x0 + fx * (w - nw))); w = nw; draw();
    }, { passive: false });
    var drag = null;
    plot.addEventListener('mousedown', function (e) { drag = [e.clientX, x0]; });
    window.addEventListener('mouseup', function () { drag = null; });
    window.addEventListener('mousemove', function (e) {
      if (!drag) return;
      var r = plot.getBoundingClientRect();
      x0 = Math.min(W - w, Math.max(0, drag[1] - (e.clientX - drag[0]) / r.width * w)); draw();
    });
    plot.addEventListener('dblclick', function () { x0 = 0; w = W; draw(); });
    plot.addEventListener('mousemove', function (e) {
      if (e.target.tagName !== 'rect') return;
      if (!rects) { rects = Array.prototype.slice.call(plot.querySelectorAll('rect'));
                    tips = JSON.parse(fig.querySelector('script.tips').textContent); }
      show(tips[rects.indexOf(e.target)] || '', e);
      e.stopPropagation();
    });
    plot.addEventListener('mouseleave', function () { tip.style.display = 'none'; });
  });
  document.addEventListener('mousemove', function (e) {
    var el = e.target.closest ? e.target.closest('[data-tip]') : null;
    if (el) show(el.getAttribute('data-tip'), e);
    else if (!(e.target.closest && e.target.closest('svg.plot'))) tip.style.display = 'none';
  });
  var cp = document.getElementById('cp-only');
  if (cp) cp.addEventListener('change', function () { document.body.classList.toggle('cp-only', cp.checked); });
  root.setAttribute('data-ready-ms', String(Math.round(performance.now())));
  root.setAttribute('data-ready', '1');
})();
)";

}  // namespace

std::string escape(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string page(const std::string& kind, const std::string& title, const std::string& body) {
  return fmt::format(
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n"
      "<style>\n{}</style>\n</head>\n<body data-report=\"{}\">\n{}<div id=\"tip\"></div>\n"
      "<script>\n{}</script>\n</body>\n</html>\n",
      escape(title), kStyle, escape(kind), body, kScript);
}

std::string format_value(Unit unit, double value) {
  const double magnitude = std::fabs(value);
  switch (unit) {
    case Unit::kTimeNs:
      if (magnitude >= 1e9) return fmt::format("{:.4g} s", value / 1e9);
      if (magnitude >= 1e6) return fmt::format("{:.4g} ms", value / 1e6);
      if (magnitude >= 1e3) return fmt::format("{:.4g} µs", value / 1e3);
      return fmt::format("{:.4g} ns", value);
    case Unit::kBytes:
      return format_bytes(static_cast<int64_t>(std::llround(value)));
    case Unit::kRate:
      return format_rate(value);
    case Unit::kPercent:
      return fmt::format("{:.1f}%", 100 * value);
    case Unit::kNumber:
      break;
  }
  if (magnitude >= 1e9) return fmt::format("{:.3g}G", value / 1e9);
  if (magnitude >= 1e6) return fmt::format("{:.3g}M", value / 1e6);
  if (magnitude >= 1e4) return fmt::format("{:.3g}K", value / 1e3);
  return fmt::format("{:.4g}", value);
}

std::string table_html(const std::string& id, const std::vector<std::string>& header,
                       const std::vector<std::vector<std::string>>& rows, const std::string& left) {
  auto open = [&left](const char* tag, size_t column) {
    return column < left.size() && left[column] == 'l' ? fmt::format("<{} class=\"l\">", tag)
                                                       : fmt::format("<{}>", tag);
  };
  std::string out = id.empty() ? "<table>\n<tr>" : fmt::format("<table id=\"{}\">\n<tr>", id);
  for (size_t i = 0; i < header.size(); ++i) out += open("th", i) + header[i] + "</th>";
  out += "</tr>\n";
  for (const std::vector<std::string>& row : rows) {
    out += "<tr>";
    for (size_t i = 0; i < row.size(); ++i) out += open("td", i) + row[i] + "</td>";
    out += "</tr>\n";
  }
  return out + "</table>\n";
}

}  // namespace cf::report

// The tune and sweep reports (report_html.h). Every number comes from the TuneResult or
// SweepResult; nothing here simulates.
#include "tuner/report_html.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <set>

#include "traces/report_html.h"
#include "tuner/report.h"

namespace cf {
namespace {

using report::escape;
using report::Unit;

// The value a heat map colours: the objective's own measure.
double objective_value(Objective objective, const SimMetrics& m) {
  return objective == Objective::kTokensPerS ? m.tokens_per_s : m.step_time_s;
}

std::string value_text(Objective objective, double value) {
  return objective == Objective::kTokensPerS ? format_rate(value) : fmt::format("{:.4g} s", value);
}

std::string metrics_tip(const Candidate& c, const SimMetrics& m) {
  return fmt::format(
      "{}\nstep {:.6g} s · {} tokens/s · MFU {:.1f}%\nbubbles {:.1f}% · recompute "
      "{:.1f}% · peak {}",
      candidate_label(c), m.step_time_s, format_rate(m.tokens_per_s), 100 * m.mfu,
      100 * m.bubble_ratio, 100 * m.recompute_share, format_bytes(worst_stage_peak_bytes(m)));
}

// The candidates of one (layout, packer): a heat map's cells.
struct Family {
  std::string title;
  std::vector<const CandidateOutcome*> outcomes;
  double best = 0;  // best objective score among its feasible candidates
  bool any_feasible = false;
};

// One cell per candidate, and the same value (marked) in the rows of K values folded into it.
report::HeatMap family_map(const TuneResult& r, const Family& f, int index) {
  const Objective objective = r.space.objective;
  const SearchResult& s = r.chunkflow;
  std::set<int64_t> sizes;
  std::set<int> ks;
  for (const CandidateOutcome* o : f.outcomes) {
    sizes.insert(o->candidate.strategy.chunk_size);
    ks.insert(o->candidate.strategy.k);
    for (int k : r.space.ks) {
      if (k > o->candidate.strategy.k && k <= o->candidate.k_covers) ks.insert(k);
    }
  }
  report::HeatMap map;
  map.id = fmt::format("heat-{}", index);
  map.caption = f.title;
  map.row_title = "K";
  map.col_title = "ChunkSize";
  map.unit = objective == Objective::kTokensPerS ? Unit::kRate : Unit::kTimeNs;
  map.lower_is_better = objective != Objective::kTokensPerS;
  std::map<int64_t, int> col;
  std::map<int, int> row;
  for (int64_t size : sizes) {
    col[size] = static_cast<int>(map.cols.size());
    map.cols.push_back(std::to_string(size));
  }
  for (int k : ks) {
    row[k] = static_cast<int>(map.rows.size());
    map.rows.push_back(fmt::format("K {}", k));
  }
  const RankedCandidate* best = r.best();
  for (const CandidateOutcome* o : f.outcomes) {
    const Candidate& c = o->candidate;
    report::HeatCell cell;
    cell.col = col.at(c.strategy.chunk_size);
    switch (o->kind) {
      case CandidateOutcome::Kind::kFeasible: {
        const SimMetrics& m = s.ranked[static_cast<size_t>(o->ranked)].metrics;
        const double v = objective_value(objective, m);
        // The scale is in the unit's base: ns for times.
        cell.value = objective == Objective::kTokensPerS ? v : v * 1e9;
        cell.text = value_text(objective, v);
        cell.tip = fmt::format("#{} of {} simulated\n{}", o->ranked + 1, s.ranked.size(),
                               metrics_tip(c, m));
        if (best != nullptr && best->candidate.index == c.index) cell.mark = "best";
        break;
      }
      case CandidateOutcome::Kind::kPrunedTime: {
        // A floor of 0: proved by a larger K of its family (a smaller K is never faster) or
        // left when the top N was settled, without a number of its own.
        const double floor = objective == Objective::kTokensPerS ? -o->score_floor : o->score_floor;
        cell.mark = "pruned";
        if (o->score_floor == 0) {
          cell.text = "slower";
          cell.tip = fmt::format("{}\nnot simulated: proved outside the top {}", candidate_label(c),
                                 r.space.top);
        } else {
          cell.text = objective == Objective::kTokensPerS ? "< " + format_rate(floor)
                                                          : fmt::format("> {:.3g} s", floor);
          cell.tip =
              fmt::format("{}\nnot simulated: its bound proves it outside the top {} ({} {})",
                          candidate_label(c), r.space.top,
                          objective == Objective::kTokensPerS ? "tokens/s below" : "step time over",
                          value_text(objective, floor));
        }
        break;
      }
      case CandidateOutcome::Kind::kInfeasible:
      case CandidateOutcome::Kind::kPrunedMemory:
        cell.mark = "infeasible";
        cell.text = "✕";
        cell.tip = fmt::format(
            "{}\ndoes not fit{}: {}\n{}", candidate_label(c),
            o->kind == CandidateOutcome::Kind::kPrunedMemory ? " (proved by the memory bound)" : "",
            o->reason, o->detail);
        break;
    }
    cell.row = row.at(c.strategy.k);
    map.cells.push_back(cell);
    // K values folded into this one give the same plan.
    for (int k : r.space.ks) {
      if (k <= c.strategy.k || k > c.k_covers) continue;
      report::HeatCell same = cell;
      same.row = row.at(k);
      if (same.mark.empty() || same.mark == "best") same.mark = "same";
      same.tip = fmt::format(
          "K {} gives the plan of K {} (no dependent group is longer than {} "
          "chunks)\n{}",
          k, c.strategy.k, c.max_group_size, cell.tip);
      map.cells.push_back(same);
    }
  }
  return map;
}

std::vector<Family> families(const TuneResult& r) {
  std::vector<Family> out;
  std::map<std::string, size_t> at;
  const Objective objective = r.space.objective;
  for (const CandidateOutcome& o : r.chunkflow.outcomes) {
    const std::string title = fmt::format("{}, packer {}", describe(o.candidate.layout),
                                          to_string(o.candidate.strategy.packer));
    auto [it, added] = at.try_emplace(title, out.size());
    if (added) out.push_back({title, {}, 0, false});
    Family& f = out[it->second];
    f.outcomes.push_back(&o);
    if (o.kind == CandidateOutcome::Kind::kFeasible) {
      const double score =
          objective_score(objective, r.chunkflow.ranked[static_cast<size_t>(o.ranked)].metrics);
      if (!f.any_feasible || score < f.best) f.best = score;
      f.any_feasible = true;
    }
  }
  // Families with a feasible candidate first, best first; then the rest in canonical order.
  std::stable_sort(out.begin(), out.end(), [](const Family& a, const Family& b) {
    if (a.any_feasible != b.any_feasible) return a.any_feasible;
    return a.any_feasible && a.best < b.best;
  });
  return out;
}

constexpr size_t kMapsShown = 12;  // heat maps drawn; the other families are a table row each

std::string ranked_html(const TuneResult& r) {
  std::vector<std::vector<std::string>> rows;
  const size_t n = std::min(r.chunkflow.ranked.size(), static_cast<size_t>(r.space.top));
  for (size_t i = 0; i < n; ++i) {
    const RankedCandidate& c = r.chunkflow.ranked[i];
    const SimMetrics& m = c.metrics;
    rows.push_back({std::to_string(i + 1), std::to_string(c.candidate.strategy.chunk_size),
                    k_label(c.candidate), to_string(c.candidate.strategy.packer),
                    escape(describe(c.candidate.layout)), fmt::format("{:.6g}", m.step_time_s),
                    format_rate(m.tokens_per_s), fmt::format("{:.1f}%", 100 * m.mfu),
                    fmt::format("{:.1f}%", 100 * m.bubble_ratio),
                    fmt::format("{:.1f}%", 100 * m.recompute_share),
                    format_bytes(worst_stage_peak_bytes(m))});
  }
  return report::table_html("ranked",
                            {"#", "ChunkSize", "K", "packer", "layout", "step (s)", "tokens/s",
                             "MFU", "bubble", "recompute", "peak memory"},
                            rows, "rrrll");
}

std::string counts_html(const SearchResult& s) {
  std::string out = fmt::format(
      "<p>{} candidates: {} simulated, {} proved slower than the top and not simulated, {} "
      "proved out of memory by the bound; {} do not fit{}.</p>\n",
      s.candidates, s.evaluated, s.pruned_time, s.pruned_memory, s.infeasible,
      s.folded > 0
          ? fmt::format(" ({} K values folded into a smaller K with the same plan)", s.folded)
          : "");
  if (!s.infeasible_reasons.empty()) {
    std::vector<std::vector<std::string>> rows;
    for (const auto& [reason, count] : s.infeasible_reasons)
      rows.push_back({std::to_string(count), escape(reason)});
    out += report::table_html("reasons", {"candidates", "why they do not fit"}, rows, "rl");
  }
  return out;
}

}  // namespace

std::string tune_report_html(const TuneResult& r) {
  std::string body = fmt::format("<h1>chunkflow tune: {}</h1>\n", escape(r.job.origin));
  const RankedCandidate* best = r.best();
  if (best != nullptr) {
    body += fmt::format(
        "<p class=\"verdict\" id=\"verdict\">Best: <b>{}</b> — step {:.6g} s, {} tokens/s, MFU "
        "{:.1f}%, peak {} of a {} budget per GPU.</p>\n",
        escape(candidate_label(best->candidate)), best->metrics.step_time_s,
        format_rate(best->metrics.tokens_per_s), 100 * best->metrics.mfu,
        format_bytes(worst_stage_peak_bytes(best->metrics)), format_bytes(r.memory_budget_bytes));
  } else {
    body +=
        fmt::format("<p class=\"verdict\" id=\"verdict\"><b>Nothing fits.</b> Closest: {}</p>\n",
                    escape(r.chunkflow.closest_miss));
  }
  const std::vector<std::string> why = explanation(r);
  if (!why.empty()) {
    body += "<h2>Why the winner wins</h2>\n<ul id=\"why\">\n";
    for (const std::string& line : why) body += "<li>" + escape(line) + "</li>\n";
    body += "</ul>\n";
  }
  body += "<h2>Baseline</h2>\n<p id=\"baseline\">";
  if (!r.baseline_searched) {
    body += "Not searched (--no-baseline).";
  } else if (const RankedCandidate* b = r.best_baseline(); b != nullptr) {
    body += fmt::format(
        "The Megatron-style baseline's best: <b>{}</b> — step {:.6g} s, {} tokens/s, "
        "peak {}{}.",
        escape(candidate_label(b->candidate)), b->metrics.step_time_s,
        format_rate(b->metrics.tokens_per_s), format_bytes(worst_stage_peak_bytes(b->metrics)),
        best != nullptr ? fmt::format("; ChunkFlow's best is {:.3g}× faster",
                                      b->metrics.step_time_s / best->metrics.step_time_s)
                        : "");
  } else {
    body += "No baseline configuration fits: " + escape(r.baseline.closest_miss);
  }
  body += "</p>\n<h2>Top candidates</h2>\n" + ranked_html(r) + counts_html(r.chunkflow);
  const std::vector<Family> all = families(r);
  body += fmt::format(
      "<h2>ChunkSize × K per layout and packer</h2>\n<p class=\"note\">Predicted {} of every "
      "candidate; the best outlined; hover a cell for its numbers or why it was not simulated. "
      "{} of {} layout × packer families drawn, the best first.</p>\n",
      r.space.objective == Objective::kTokensPerS ? "tokens/s" : "step time",
      std::min(all.size(), kMapsShown), all.size());
  std::vector<std::vector<std::string>> rest;
  for (size_t i = 0; i < all.size(); ++i) {
    if (i < kMapsShown) {
      body += report::heat_map_html(family_map(r, all[i], static_cast<int>(i)));
      continue;
    }
    rest.push_back(
        {escape(all[i].title),
         all[i].any_feasible
             ? value_text(r.space.objective,
                          r.space.objective == Objective::kTokensPerS ? -all[i].best : all[i].best)
             : "nothing fits",
         std::to_string(all[i].outcomes.size())});
  }
  if (!rest.empty()) {
    body +=
        "<h3>The other families</h3>\n" +
        report::table_html("other-families", {"layout, packer", "best", "candidates"}, rest, "l");
  }
  body += "<h2>The text report</h2>\n<pre>" + escape(tune_report_text(r)) + "</pre>\n";
  return report::page("tune", "chunkflow tune: " + r.job.origin, body);
}

namespace {

// The axis a sweep varies: GPU count when it takes several values, else the context length.
struct SweepAxis {
  bool gpus = true;
  std::string title;
};

SweepAxis sweep_axis(const SweepResult& r) {
  std::set<int> gpus;
  std::set<int64_t> lengths;
  for (const SweepPoint& p : r.points) {
    gpus.insert(p.gpus);
    lengths.insert(p.max_length);
  }
  if (gpus.size() > 1 || lengths.size() <= 1) return {true, "GPUs"};
  return {false, "context length (tokens)"};
}

// A curve's name: the parts of its points that vary between curves (all of them when none
// does), e.g. "h200-141g" for a sweep over GPU types and counts.
std::string series_name(const SweepResult& r, const SweepPoint& p, bool by_gpus) {
  std::set<std::string> models, datasets, gpus, others;
  for (const SweepPoint& q : r.points) {
    models.insert(q.model);
    datasets.insert(q.dataset);
    gpus.insert(q.gpu);
    others.insert(by_gpus ? std::to_string(q.max_length) : std::to_string(q.gpus));
  }
  const std::string other =
      by_gpus ? fmt::format("{} tokens", p.max_length) : fmt::format("{} GPUs", p.gpus);
  std::vector<std::string> parts;
  if (models.size() > 1) parts.push_back(p.model);
  if (datasets.size() > 1) parts.push_back(p.dataset);
  if (gpus.size() > 1) parts.push_back(p.gpu);
  if (others.size() > 1) parts.push_back(other);
  if (parts.empty()) parts = {p.model, p.dataset, p.gpu, other};
  std::string name;
  for (const std::string& part : parts) name += (name.empty() ? "" : ", ") + part;
  return name;
}

}  // namespace

std::string sweep_report_html(const SweepResult& r) {
  const SweepAxis axis = sweep_axis(r);
  // Series in the points' order (GPU count innermost).
  std::vector<std::string> names;
  std::map<std::string, std::pair<report::Series, report::Series>> curves;  // ChunkFlow, baseline
  std::map<std::string, report::Series> per_gpu;
  for (const SweepPoint& p : r.points) {
    const std::string name = series_name(r, p, axis.gpus);
    if (!curves.count(name)) {
      names.push_back(name);
      curves[name].first.name = name;
      curves[name].second.name = name + " (baseline)";
      per_gpu[name].name = name;
    }
    const double x = axis.gpus ? p.gpus : static_cast<double>(p.max_length);
    if (p.best) {
      const SimMetrics& m = p.best->metrics;
      const std::string tip =
          fmt::format("{}\n{}\n{} tokens/s ({} per GPU), step {:.4g} s", sweep_point_label(p),
                      candidate_label(p.best->candidate), format_rate(m.tokens_per_s),
                      format_rate(m.tokens_per_s / p.gpus), m.step_time_s);
      curves[name].first.points.emplace_back(x, m.tokens_per_s);
      curves[name].first.tips.push_back(tip);
      per_gpu[name].points.emplace_back(x, m.tokens_per_s / p.gpus);
      per_gpu[name].tips.push_back(tip);
    }
    if (p.baseline) {
      curves[name].second.points.emplace_back(x, p.baseline->metrics.tokens_per_s);
      curves[name].second.tips.push_back(fmt::format(
          "{}\n{}\n{} tokens/s", sweep_point_label(p), candidate_label(p.baseline->candidate),
          format_rate(p.baseline->metrics.tokens_per_s)));
    }
  }
  report::LineChart total, each;
  total.id = "tokens";
  total.caption = "Tokens/s of the best configuration at each point (baseline: its best)";
  each.id = "tokens-per-gpu";
  each.caption = "Tokens/s per GPU";
  for (report::LineChart* c : {&total, &each}) {
    c->x_title = axis.title;
    c->y_title = c == &total ? "tokens/s" : "tokens/s per GPU";
    c->x_log2 = true;
    c->y_unit = Unit::kRate;
    c->width = 760;
    c->height = 320;
  }
  for (size_t i = 0; i < names.size(); ++i) {
    auto& [chunkflow, baseline] = curves[names[i]];
    chunkflow.colour = baseline.colour = per_gpu[names[i]].colour = static_cast<int>(i % 10);
    baseline.dashed = true;
    total.series.push_back(chunkflow);
    if (!baseline.points.empty()) total.series.push_back(baseline);
    each.series.push_back(per_gpu[names[i]]);
  }
  if (r.target_tokens_per_s > 0) {
    total.h_lines.push_back(
        {r.target_tokens_per_s,
         fmt::format("target {} tokens/s", format_rate(r.target_tokens_per_s))});
    if (axis.gpus) {
      std::set<int> marked;
      for (const TargetAnswer& a : r.target) {
        if (a.gpus > 0 && marked.insert(a.gpus).second) {
          total.v_lines.push_back({static_cast<double>(a.gpus), fmt::format("{} GPUs", a.gpus)});
        }
      }
    }
  }
  std::string body = fmt::format("<h1>chunkflow sweep: {}</h1>\n<p>{} points, each tuned.</p>\n",
                                 escape(r.origin), r.points.size());
  if (!r.target.empty()) {
    std::vector<std::vector<std::string>> rows;
    for (const TargetAnswer& a : r.target) {
      rows.push_back({escape(a.model), escape(a.dataset), escape(a.gpu),
                      std::to_string(a.max_length),
                      a.gpus > 0 ? fmt::format("<b>{}</b>", a.gpus) : "none swept reaches it",
                      a.gpus > 0 ? format_rate(a.tokens_per_s) : "-"});
    }
    body += fmt::format("<h2>Smallest GPU count reaching {} tokens/s</h2>\n",
                        format_rate(r.target_tokens_per_s)) +
            report::table_html("target", {"model", "dataset", "GPU", "context", "GPUs", "tokens/s"},
                               rows, "lll");
  }
  body += "<h2>Throughput</h2>\n" + report::line_chart_html(total) + report::line_chart_html(each);
  std::vector<std::vector<std::string>> rows;
  for (const SweepPoint& p : r.points) {
    std::vector<std::string> row = {escape(p.model), escape(p.dataset), escape(p.gpu),
                                    std::to_string(p.gpus), std::to_string(p.max_length)};
    if (!p.best) {
      row.push_back(
          escape(p.error.empty() ? "nothing fits: " + p.closest_miss : "not tuned: " + p.error));
      row.insert(row.end(), 5, "");
    } else {
      const SimMetrics& m = p.best->metrics;
      row.push_back(escape(candidate_label(p.best->candidate)));
      row.push_back(fmt::format("{:.4g}", m.step_time_s));
      row.push_back(format_rate(m.tokens_per_s));
      row.push_back(format_rate(m.tokens_per_s / p.gpus));
      row.push_back(p.baseline ? format_rate(p.baseline->metrics.tokens_per_s) : "OOM");
      row.push_back(p.baseline
                        ? fmt::format("{:.2f}×", p.baseline->metrics.step_time_s / m.step_time_s)
                        : "-");
    }
    rows.push_back(std::move(row));
  }
  body += "<h2>Every point</h2>\n" +
          report::table_html("points",
                             {"model", "dataset", "GPU", "GPUs", "context", "best", "step (s)",
                              "tokens/s", "per GPU", "baseline", "speedup"},
                             rows, "llllrl");
  return report::page("sweep", "chunkflow sweep: " + r.origin, body);
}

}  // namespace cf

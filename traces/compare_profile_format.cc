// The text tables and the JSON form of a ProfileCompareReport. Not the comparison
// (compare_profile.cc, compare_profile_ops.cc) nor the HTML page (html_report.cc).
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <nlohmann/json.hpp>

#include "traces/compare_profile.h"

namespace cf {
namespace {

using Json = nlohmann::ordered_json;

Json optional_json(const std::optional<double>& value) {
  return value ? Json(*value) : Json(nullptr);
}

std::optional<double> class_error(const ClassTimes& t, int c) {
  return relative_error(t.predicted_s[c], t.measured_s[c]);
}

Json classes_json(const ClassTimes& t, bool predicted) {
  Json rows = Json::array();
  for (KernelClass kind : kAllKernelClasses) {
    const int c = static_cast<int>(kind);
    rows.push_back({{"class", kernel_class_name(kind)},
                    {"predicted_s", predicted ? Json(t.predicted_s[c]) : Json(nullptr)},
                    {"measured_s", t.measured_s[c]},
                    {"rel_error", predicted ? optional_json(class_error(t, c)) : Json(nullptr)}});
  }
  return rows;
}

Json ops_json(const MarkedOpsComparison& ops) {
  Json ranks = Json::array();
  for (const MarkedRank& r : ops.ranks) {
    ranks.push_back({{"rank", r.rank},
                     {"dp_rank", r.place.dp_rank},
                     {"stage", r.place.stage},
                     {"step", r.step},
                     {"marks", r.marks},
                     {"time_source", r.time_source}});
  }
  Json unknown = Json::object();
  for (const auto& [name, count] : ops.unknown) unknown[name] = count;
  Json out{{"available", ops.available},
           {"reason", ops.available ? Json(nullptr) : Json(ops.reason)},
           {"step", "the last complete ProfilerStep of each rank"},
           {"ranks", ranks},
           {"ranks_not_compared", ops.ranks_not_compared},
           {"unknown_marks", unknown},
           {"not_marked", ops.not_marked}};
  if (ops.report) {
    const Json matched = Json::parse(compare_ops_json(*ops.report));
    for (const auto& [key, value] : matched.items()) out[key] = value;
  }
  return out;
}

std::string layout_text(const ProfileLayout& l) {
  return fmt::format("tp {} ({}) × cp {} ({}) × dp {} ({}) × pp {} ({}) = {} GPU{}", l.tp,
                     l.tp_from, l.cp, l.cp_from, l.dp, l.dp_from, l.pp, l.pp_from, l.world(),
                     l.world() == 1 ? "" : "s");
}

std::string classes_text(const std::string& label, const ClassTimes& t, bool predicted) {
  std::string out;
  for (KernelClass kind : kAllKernelClasses) {
    const int c = static_cast<int>(kind);
    out += fmt::format("{:<14} {:<12} {:>12} {:>12.6f} {:>8}\n", label, kernel_class_name(kind),
                       predicted ? fmt::format("{:.6f}", t.predicted_s[c]) : "-", t.measured_s[c],
                       predicted ? percent_text(class_error(t, c)) : "-");
  }
  return out;
}

std::string ops_text(const MarkedOpsComparison& ops) {
  if (!ops.available) return fmt::format("\nops: not compared: {}\n", ops.reason);
  std::string out = "\nops, from the chunkflow marks of the last complete ProfilerStep of:\n";
  for (const MarkedRank& r : ops.ranks) {
    out += fmt::format("  rank {} (dp {}, stage {}): {}, {} marks, times of {}\n", r.rank,
                       r.place.dp_rank, r.place.stage, r.step, r.marks, r.time_source);
  }
  if (!ops.ranks_not_compared.empty()) {
    out += fmt::format("  ranks {} share a (dp, stage) above: their marks are not compared\n",
                       fmt::join(ops.ranks_not_compared, ", "));
  }
  if (!ops.not_marked.empty()) {
    out += fmt::format("  not marked in any profile, left out of the prediction: {}\n",
                       fmt::join(ops.not_marked, ", "));
  }
  for (const auto& [name, count] : ops.unknown) {
    out += fmt::format("  unknown mark {} ×{}: names no op, not compared\n", name, count);
  }
  return out + compare_ops_text(*ops.report);
}

}  // namespace

std::string profile_compare_json(const ProfileCompareReport& r) {
  Json steps = Json::array();
  for (const ProfileStepTime& s : r.step.steps) {
    steps.push_back({{"name", s.name},
                     {"measured_s", s.measured_s},
                     {"rel_error", optional_json(s.rel_error)}});
  }
  Json ranks = Json::array();
  for (const RankComparison& c : r.ranks) {
    ranks.push_back({{"rank", c.rank},
                     {"path", c.path},
                     {"dp_rank", c.place.dp_rank},
                     {"stage", c.place.stage},
                     {"tp_rank", c.place.tp_rank},
                     {"cp_rank", c.place.cp_rank},
                     {"steps", c.steps},
                     {"busy_source", c.busy_source},
                     {"predicted_busy_s", c.predicted_busy_s},
                     {"measured_busy_s", c.measured_busy_s},
                     {"busy_rel_error", optional_json(c.busy_rel_error)},
                     {"predicted_bubble", c.predicted_bubble},
                     {"measured_bubble", c.measured_bubble},
                     {"bubble_error", c.bubble_error}});
  }
  const ClassComparison& k = r.classes;
  Json class_ranks = Json::array();
  for (const RankClasses& c : k.ranks) {
    class_ranks.push_back({{"rank", c.rank},
                           {"dp_rank", c.place.dp_rank},
                           {"stage", c.place.stage},
                           {"measured_source", c.measured_source},
                           {"classes", classes_json(c.times, k.predicted)}});
  }
  const ProfileLayout& l = r.layout;
  Json out{
      {"measured", "pytorch_profiles"},
      {"step_time_rel_error", optional_json(r.step.rel_error)},
      {"step_time",
       {{"predicted_s", r.step.predicted_s},
        {"measured_s", r.step.measured_s},
        {"predicted_from", r.step.predicted_from},
        {"measured_from", r.step.measured_from},
        {"steps", steps}}},
      {"layout",
       {{"tp", l.tp},
        {"cp", l.cp},
        {"dp", l.dp},
        {"pp", l.pp},
        {"world", l.world()},
        {"from", {{"tp", l.tp_from}, {"cp", l.cp_from}, {"dp", l.dp_from}, {"pp", l.pp_from}}}}},
      {"rank_table", ranks},
      {"class_table",
       {{"predicted_breakdown", k.predicted},
        {"note", k.predicted ? Json(nullptr) : Json(k.predicted_note)},
        {"totals", classes_json(k.totals, k.predicted)},
        {"ranks", class_ranks}}},
      {"ops", ops_json(r.ops)}};
  return out.dump(2, ' ', false, Json::error_handler_t::replace) + "\n";
}

std::string profile_compare_text(const ProfileCompareReport& r) {
  std::string out = fmt::format("layout: {}\n", layout_text(r.layout));
  out += fmt::format(
      "step time: predicted {:.6f} s ({}), measured {:.6f} s ({}{}), error {}\n",
      r.step.predicted_s, r.step.predicted_from, r.step.measured_s, r.step.measured_from,
      r.step.steps.empty() ? ": no ProfilerStep ranges"
                           : fmt::format(": mean of {} step{}, each the slowest rank's",
                                         r.step.steps.size(), r.step.steps.size() == 1 ? "" : "s"),
      percent_text(r.step.rel_error));
  for (const ProfileStepTime& s : r.step.steps) {
    out += fmt::format("  {:<20} {:>12.6f} s  {:>8}\n", s.name, s.measured_s,
                       percent_text(s.rel_error));
  }

  out +=
      "\nper rank (busy per step: GPU busy, or the main CPU thread's ops in a CPU-only "
      "profile; bubble = 1 − busy / step)\n";
  out += fmt::format(
      "{:>4} {:>3} {:>5} {:>3} {:>3} {:>5} {:<5}  {:>12} {:>12} {:>8}  {:>8} "
      "{:>8} {:>8}\n",
      "rank", "dp", "stage", "tp", "cp", "steps", "busy", "busy pred s", "busy meas s", "error",
      "bub pred", "bub meas", "diff");
  for (const RankComparison& c : r.ranks) {
    out += fmt::format(
        "{:>4} {:>3} {:>5} {:>3} {:>3} {:>5} {:<5}  {:>12.6f} {:>12.6f} {:>8}  {:>7.1f}% "
        "{:>7.1f}% {:>+7.1f}pt\n",
        c.rank, c.place.dp_rank, c.place.stage, c.place.tp_rank, c.place.cp_rank, c.steps,
        c.busy_source == "gpu" ? "gpu" : "cpu", c.predicted_busy_s, c.measured_busy_s,
        percent_text(c.busy_rel_error), 100 * c.predicted_bubble, 100 * c.measured_bubble,
        100 * c.bubble_error);
  }

  const ClassComparison& k = r.classes;
  out +=
      "\ntime by class per step (predicted: the cost model's split; measured: device time, "
      "or CPU self time in a CPU-only profile)\n";
  if (!k.predicted) out += k.predicted_note + "\n";
  out += fmt::format("{:<14} {:<12} {:>12} {:>12} {:>8}\n", "ranks", "class", "pred s", "meas s",
                     "error");
  out += classes_text("all", k.totals, k.predicted);
  if (k.ranks.size() > 1) {
    for (const RankClasses& c : k.ranks) {
      out += classes_text(fmt::format("rank {}", c.rank), c.times, k.predicted);
    }
  }
  return out + ops_text(r.ops);
}

}  // namespace cf

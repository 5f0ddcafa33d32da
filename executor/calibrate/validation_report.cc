// The validation matrix's reports (validation.h): the table, the load, step-time, memory and
// ranking lines and the verdict as text, and the same as JSON. Not the measuring.
#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "executor/calibrate/validation.h"

namespace cf {
namespace {

std::string verdict(const ValidationResult& result) {
  return result.targets_met() ? "all targets met" : "TARGET MISSED";
}

std::string row_line(const ValidationRow& r) {
  return fmt::format(
      "{:<37} {:>6} {:>8.4f} {:>8.4f} {:>+6.1f}% {:>5.2f} {:>8.4f} {:>+6.1f}% {:>5.1f}% "
      "{:>+8.1f}% {:>8.3f} {:>+6.3f}% {:>4}\n",
      r.config.name(), r.tokens, r.predicted_s, r.measured_s, 100 * r.step_error, r.load,
      r.at_fit_load_s, 100 * r.at_fit_load_error, 100 * r.runs_spread, 100 * r.trace_step_error,
      r.measured_peak / 1048576.0, 100 * r.memory_error, r.extrapolated_ops);
}

std::string ranking_line(const ValidationResult& result, const RankingCheck& check) {
  const ValidationRow& picked = result.rows[check.picked];
  const ValidationRow& best = result.rows[check.best];
  // One factor for all rows: the order is the raw one.
  return fmt::format(
      "ranking    {}: tune picks {} ({:.4f} s); best measured {} ({:.4f} s); gap {:+.1f}% "
      "(target ≤ {:.0f}%)\n",
      check.dataset, picked.config.name(), picked.measured_s, best.config.name(), best.measured_s,
      100 * check.gap, 100 * kRankingGapTarget);
}

nlohmann::json row_json(const ValidationRow& r) {
  const ValidationConfig& c = r.config;
  nlohmann::json config = {{"dataset", c.dataset},
                           {"strategy", c.baseline ? "baseline" : "chunkflow"},
                           {"pp", c.pp},
                           {"dp", c.dp}};
  if (!c.baseline) {
    config["chunk_size"] = c.chunk_size;
    config["k"] = c.k;
  }
  return {{"configuration", c.name()},
          {"config", config},
          {"tokens", r.tokens},
          {"predicted_s", r.predicted_s},
          {"measured_s", r.measured_s},
          {"step_error", r.step_error},
          {"load", r.load},
          {"at_fit_load_s", r.at_fit_load_s},
          {"at_fit_load_error", r.at_fit_load_error},
          {"runs_spread", r.runs_spread},
          {"step_times_s", r.step_times},
          {"loads", r.loads},
          {"trace_step0_error", r.trace_step_error},
          {"predicted_peak_bytes", r.predicted_peak},
          {"measured_peak_bytes", r.measured_peak},
          {"memory_error", r.memory_error},
          {"extrapolated_ops", r.extrapolated_ops}};
}

}  // namespace

std::string validation_text(const ValidationResult& result) {
  std::string out = fmt::format(
      "{:<37} {:>6} {:>8} {:>8} {:>7} {:>5} {:>8} {:>7} {:>6} {:>9} {:>8} {:>7} {:>4}\n",
      "configuration", "tokens", "pred s", "meas s", "error", "load", "at fit s", "error", "runs ±",
      "step0 err", "peak MiB", "mem err", "extr");
  for (const ValidationRow& r : result.rows) out += row_line(r);
  const ValidationSummary& s = result.summary;
  out += fmt::format(
      "\nload       the runs' probes over calibration's fastest: mean ×{:.2f} (×{:.2f}..×{:.2f}); "
      "the step fit's: ×{:.2f}; measured times ×{:.3f} to the fit's load\n",
      s.matrix_load, s.load_min, s.load_max, s.step_load, s.to_fit_load);
  out += fmt::format(
      "step time  at the fit's load: mean |error| {:.1f}% (target ≤ {:.0f}%), worst {:.1f}% "
      "(target ≤ {:.0f}%)\n"
      "           raw (the machine's load as it was): mean |error| {:.1f}%, worst {:.1f}%\n",
      100 * s.mean_error, 100 * kMeanStepErrorTarget, 100 * s.worst_error,
      100 * kWorstStepErrorTarget, 100 * s.mean_raw_error, 100 * s.worst_raw_error);
  out += fmt::format("memory     worst peak error {:.3f}% (target ≤ {:.0f}%)\n",
                     100 * s.worst_memory_error, 100 * kPeakMemoryErrorTarget);
  for (const RankingCheck& check : result.ranking) out += ranking_line(result, check);
  out += fmt::format("verdict    {}\n", verdict(result));
  return out;
}

std::string validation_json(const ValidationResult& result) {
  nlohmann::json rows = nlohmann::json::array(), ranking = nlohmann::json::array();
  for (const ValidationRow& r : result.rows) rows.push_back(row_json(r));
  for (const RankingCheck& check : result.ranking) {
    ranking.push_back({{"dataset", check.dataset},
                       {"picked", result.rows[check.picked].config.name()},
                       {"picked_s", result.rows[check.picked].measured_s},
                       {"best", result.rows[check.best].config.name()},
                       {"best_s", result.rows[check.best].measured_s},
                       {"gap", check.gap},
                       {"target", kRankingGapTarget},
                       {"met", check.ok}});
  }
  const ValidationSummary& s = result.summary;
  const nlohmann::json out = {{"table", result.table},
                              {"runs", result.runs},
                              {"rows", rows},
                              {"load",
                               {{"matrix_mean", s.matrix_load},
                                {"min", s.load_min},
                                {"max", s.load_max},
                                {"step_fit", s.step_load},
                                {"to_fit_load", s.to_fit_load}}},
                              {"step_time",
                               {{"mean_error", s.mean_error},
                                {"worst_error", s.worst_error},
                                {"mean_raw_error", s.mean_raw_error},
                                {"worst_raw_error", s.worst_raw_error},
                                {"mean_target", kMeanStepErrorTarget},
                                {"worst_target", kWorstStepErrorTarget},
                                {"met", s.time_ok}}},
                              {"memory",
                               {{"worst_error", s.worst_memory_error},
                                {"target", kPeakMemoryErrorTarget},
                                {"met", s.memory_ok}}},
                              {"ranking", ranking},
                              {"targets_met", result.targets_met()},
                              {"verdict", verdict(result)}};
  return out.dump(2) + "\n";
}

}  // namespace cf

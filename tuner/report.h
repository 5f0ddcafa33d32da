// What `chunkflow tune` shows: the ranked table, infeasibility counts, the verdict, why the
// winner beats the runner-up and the Megatron-style baseline, the winner as job YAML, and the
// same as JSON. Formatting only; the search is tuner.h.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/units.h"
#include "tuner/tuner.h"

namespace cf {

// "8192" K label: "4", "5+" when larger K values were folded into it, "any" when no sequence
// is split (K changes nothing).
std::string k_label(const Candidate& candidate);
// "ChunkSize 8192 K 4 balanced, tp4 pp4 dp2 sp selective 1f1b" (baseline: its layout).
std::string candidate_label(const Candidate& candidate);

// Sentences on why `winner` is faster than `other`: the step-time difference split into
// pipeline bubbles, recompute, TP communication, other compute and the DP reduction and
// optimizer tail (per GPU, mean over stages), largest first.
std::string explain_difference(const SimMetrics& winner, const SimMetrics& other);
// The explanation lines: against the runner-up and against the best baseline.
std::vector<std::string> explanation(const TuneResult& result);

// The whole text report (the best job's YAML is not included; see best_job_yaml).
std::string tune_report_text(const TuneResult& result);
nlohmann::json tune_report_json(const TuneResult& result);
nlohmann::json candidate_json(const RankedCandidate& ranked);

// The winner as a job YAML with a comment header giving the prediction.
std::string best_job_yaml(const TuneResult& result);

}  // namespace cf

// The HTML page of a trace comparison: one self-contained file (inline CSS and SVG, no script,
// nothing fetched from the network) with the predicted and measured timelines on one time axis
// and the error tables; or a prediction's against PyTorch profiles. Not the comparisons
// themselves (traces/compare.h, traces/compare_profile.h).
#pragma once

#include <string>

#include "traces/compare.h"
#include "traces/compare_profile.h"
#include "traces/trace.h"

namespace cf {

// `report` must come from compare_traces(predicted, measured). Each timeline starts at its
// trace's first op; one row per (rank, stage), one rect per op coloured by pass (compute) or
// kind (communication, drawn in the lower part of the row), with a hover title. Deterministic:
// the same inputs give byte-identical pages.
std::string compare_report_html(const CompareReport& report, const Trace& predicted,
                                const Trace& measured);

// The page of a prediction against PyTorch profiles: the step, rank and class tables, and,
// where the profiles mark the plan's ops, the timelines and tables above for those ops.
std::string profile_compare_html(const ProfileCompareReport& report);

// Escapes & < > " ' for HTML text and attribute values.
std::string html_escape(const std::string& text);

}  // namespace cf

// The HTML page of a trace comparison: one self-contained file (inline CSS and SVG, no script,
// nothing fetched from the network) with the predicted and measured timelines on one time axis
// and the error tables. Not the comparison itself (traces/compare.h).
#pragma once

#include <string>

#include "traces/compare.h"
#include "traces/trace.h"

namespace cf {

// `report` must come from compare_traces(predicted, measured). Each timeline starts at its
// trace's first op; one row per (rank, stage), one rect per op coloured by pass (compute) or
// kind (communication, drawn in the lower part of the row), with a hover title. Deterministic:
// the same inputs give byte-identical pages.
std::string compare_report_html(const CompareReport& report, const Trace& predicted,
                                const Trace& measured);

// Escapes & < > " ' for HTML text and attribute values.
std::string html_escape(const std::string& text);

}  // namespace cf

// The HTML page of a trace comparison (built with the report module, report_html.h: one
// self-contained file, nothing fetched from the network) with the predicted and measured
// timelines on one time axis and the error tables; or a prediction's against PyTorch profiles.
// And the timeline of a trace, which the simulate report (sim/report_html.h) draws too. Not the
// comparisons themselves (traces/compare.h, traces/compare_profile.h).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "traces/compare.h"
#include "traces/compare_profile.h"
#include "traces/report_html.h"
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

// The timeline bar kind (colour class, report_html.h) of an op: F, Fs (F*), R, B, send, recv,
// dp, opt.
std::string bar_kind(const TraceOp& op);

// The timeline of `trace`: a lane per (dp_rank, stage) of `lanes` (ops elsewhere are left out),
// times from `origin_ns`, the axis 0 .. span_ns. Communication in each lane's lower band, with
// the TP / CP collectives of compute ops that have a class split drawn there from the op's
// start. Ops equal to one of `critical` (same rank, stage, kind, op id and times) are outlined.
report::Timeline trace_timeline(const std::string& id, const std::string& caption,
                                const Trace& trace, const std::vector<std::pair<int, int>>& lanes,
                                int64_t origin_ns, int64_t span_ns,
                                const std::vector<TraceOp>& critical = {});
// The colour key of trace timelines.
std::string trace_timeline_key();

}  // namespace cf

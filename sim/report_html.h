// The HTML report of `chunkflow simulate --html` (docs/REPORTS.md): for each job simulated — the
// job, and the baseline beside it when one is given — the verdict and headline numbers, the
// timeline of every (DP rank, stage) with the critical path outlined, the busy / recompute /
// bubble shares per stage, memory over time per stage against the device's capacity, the
// breakdown at each stage's peak, the metrics table and the resolved job. Built with the report
// module (traces/report_html.h); deterministic.
#pragma once

#include <string>
#include <vector>

#include "sim/plan/job.h"
#include "sim/simulator.h"

namespace cf {

struct SimulatedJob {
  std::string label;  // "ChunkFlow", "baseline", ...: the section's title
  Job job;
  SimResult result;  // with the trace and its memory timeline (SimOptions), critical path
};

// `runs` (one or two, drawn one above the other on the same time axis) must each hold a trace.
std::string simulate_report_html(const std::vector<SimulatedJob>& runs);

}  // namespace cf

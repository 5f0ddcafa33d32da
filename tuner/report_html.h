// The HTML reports of `chunkflow tune --html` and `chunkflow sweep --html` (docs/REPORTS.md),
// built with the report module (traces/report_html.h); deterministic.
//
// Tune: the verdict, the ranked table, why the winner wins, the baseline's best, and per layout
// and packer a ChunkSize × K heat map of the objective (every candidate: simulated, proved
// slower than the top N and not simulated, or out of memory with its reason on hover).
// Sweep: tokens/s and tokens/s per GPU against the varied axis (GPU count, else context
// length), one curve per model / data set / GPU type (and context or GPU count), the baseline's
// dashed beside each; the target line and the smallest GPU count that meets it; every point.
#pragma once

#include <string>

#include "tuner/sweep.h"
#include "tuner/tuner.h"

namespace cf {

std::string tune_report_html(const TuneResult& result);
std::string sweep_report_html(const SweepResult& result);

}  // namespace cf

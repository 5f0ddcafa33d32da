// From measurements to the calibration table: the profiler's series (profiler.h) fitted
// non-decreasing and written as the curves and grids of sim/calibration_table.h, with the
// machine's description and this build's version. Not the measuring (profiler.h), the step
// slowdown (step_fit.h) nor the table's format and interpolation (sim/calibration_table.h).
#pragma once

#include <string>
#include <vector>

#include "executor/calibrate/profiler.h"
#include "sim/calibration_table.h"

namespace cf {

// Costs never decrease with size: the least-squares non-decreasing fit to measured costs
// (pool-adjacent-violators), applied to each curve (ns and cpu_ns) and to the attention grid
// along q and along the prefix before the table is written.
std::vector<double> non_decreasing(const std::vector<double>& values);
void make_non_decreasing(Curve* curve);
void make_non_decreasing(AttentionGrid* grid);

// A series as a curve: wall time at least 1 ns (a delivery faster than the clock can tell
// reads 1 ns), thread-CPU time at least 0, both made non-decreasing.
Curve to_curve(const Series& series);
// One model's attention samples ([q][prefix]) as a grid, made non-decreasing.
AttentionGrid to_grid(const ModelProfile& profile, const std::vector<std::vector<Sample>>& rows);

// Now, as "YYYY-MM-DDTHH:MM:SSZ" (UTC).
std::string utc_date();

// The chunkflow version this library was built as: CMake's PROJECT_VERSION.
const char* chunkflow_version();

// The table of `profile`, measured with `options`, dated now. Its concurrency_slowdown and
// speed_probe.step_load are the step fit's (step_fit.h), left at their defaults here.
CalibrationTable to_table(const MachineProfile& profile, const ProfileOptions& options);

}  // namespace cf

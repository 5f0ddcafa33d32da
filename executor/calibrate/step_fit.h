// The step fit: how much longer a whole executor step takes than the op curves just measured
// predict, for k stage threads (the table's concurrency_slowdown), from fixed jobs run
// round-robin with the speed probe around their steps. Not the op curves (profiler.h,
// profile_table.h) nor how the simulator applies the factor (sim/cost_calibrated.h).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/status.h"
#include "sim/calibration_table.h"
#include "sim/plan/job.h"

namespace cf {

// The step fit's runs per job, round-robin (`chunkflow calibrate`; 1 with --quick).
inline constexpr int kStepRounds = 5;

// The fixed calibration jobs of `model` with pp·dp stage threads, 2 steps each: fifteen
// sequences of max_tokens·{1..15}/16 tokens and one of max_tokens (8.5 × max_tokens in all,
// a step of a few hundred milliseconds on the tiny model), run as the baseline (one
// micro-batch per sequence) and as ChunkFlow (ChunkSize max_tokens/4, K 2: packed chunks and
// a dependent group).
StatusOr<std::vector<Job>> step_jobs(const std::string& model, int64_t max_tokens, int pp, int dp);

struct StepFit {
  std::vector<double> slowdown;  // [k − 1], k = 1 .. max_threads
  double load = 1;               // the mean load of the fit's runs (SpeedProbe::step_load)
};

// The table's concurrency_slowdown[k − 1]: a step of the executor with k stage threads
// (step_jobs with pp k · dp 1 when the layers divide by k, and pp 1 · dp k), measured, over
// what `table`'s op curves predict for the same plans with no slowdown. The runs go
// round-robin over every k and layout, `rounds` times (progress(round) before each round),
// each with the speed probe around its steps (run_with_speed_probe, for the load it reports).
// k's factor is the mean of its runs' measured over predicted step times. It holds what the
// fastest op times cannot: the machine's load as it was while calibrating (whose mean over
// the fit's runs is StepFit::load), stage threads waiting on each other's slowest op, the
// cores running at different speeds, the executor's work between ops.
StatusOr<StepFit> measure_step_slowdown(const CalibrationTable& table, const std::string& model,
                                        int64_t max_tokens, int max_threads, int rounds,
                                        uint64_t seed, const std::function<void(int)>& progress);

}  // namespace cf

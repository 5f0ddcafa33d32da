// Synthetic traces for the comparison tests: a fixed op stream per (rank, stage) whose
// durations a test chooses, laid out back to back so every time is known by hand.
// Not a pipeline schedule (no cross-stage waits): the comparison does not need one.
#pragma once

#include <cstdint>
#include <functional>

#include "traces/trace.h"

namespace cf::test {

struct TraceShape {
  int ranks = 2;
  int stages = 3;
  int chunks = 5;
};

// Planned duration of compute op F c on `stage`: 100·(c+1) + 10·stage ns (B: twice that).
int64_t planned_forward_ns(int chunk, int stage);

// Per (rank, stage), starting at 1000·stage ns: F 0..C-1 back to back, each followed by a
// 50 ns "send" of its chunk overlapping the next op (not on the last stage); then B C-1..0;
// then "dp_reduce" (400 ns) and "optimizer" (300 ns). Compute ops and the optimizer carry
// plan op ids in (rank, stage, position) order; send and dp_reduce carry -1.
// `duration(op, planned_ns)` gives each op's duration (identity: the planned one).
using DurationFn = std::function<int64_t(const TraceOp& op, int64_t planned_ns)>;
Trace synthetic_trace(const TraceShape& shape, const std::string& source,
                      const DurationFn& duration);
Trace synthetic_trace(const TraceShape& shape, const std::string& source);

}  // namespace cf::test

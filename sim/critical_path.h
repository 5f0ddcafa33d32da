// The critical path of a finished engine run: the chain of tasks and transfers that sets when a
// given task ends. Each step of the chain starts the moment the step before it ends, so the
// chain's durations add up to the task's end exactly. Not the simulator's metrics: simulator.cc
// names the steps after the plan's ops and adds the step's tail (DP reduction, optimizer).
#pragma once

#include <cstdint>
#include <vector>

#include "sim/engine.h"

namespace cf {

struct CriticalStep {
  enum class Kind { kTask, kTransfer };
  Kind kind = Kind::kTask;
  int id = 0;  // a task id, or for a transfer the index of its input edge
  int64_t start_ns = 0;
  int64_t end_ns = 0;
};

// The run's dependency graph — each task after its stream predecessor, each transfer after its
// producer and after the transfer before it on its channel (in the order the run sent them),
// each consumer after its transfers (or directly after its producer when the input has no
// channel and no transfer time) — is a DAG whose longest path to a task is that task's
// start in the run (the engine starts everything as early as its dependencies allow; CHECKed).
// Returns the longest path ending with `last_task`, first step first (Boost.Graph's
// dag_shortest_paths on negated durations). `graph` and `result` must be a completed run.
std::vector<CriticalStep> critical_path(const EngineGraph& graph, const EngineResult& result,
                                        int last_task);

}  // namespace cf

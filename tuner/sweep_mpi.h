// `mpirun -np N chunkflow sweep SWEEP.yaml`: the points of a sweep spread over the ranks of
// MPI_COMM_WORLD — G = min(points, N) groups of ranks, point i tuned by group i mod G, whose
// ranks share that point's candidates (tuner.h's TuneOptions::peers) — and gathered on rank 0
// into the result one process gives (sweep.h's run_sweep), so the table, --json and the CSV
// are byte for byte the same for every N: a point's result depends on neither the thread
// count nor the rank (tuner.h). Built only with CHUNKFLOW_MPI (CHUNKFLOW_HAVE_MPI defined);
// the caller initialises MPI (executor/mpi_run.h's MpiSession) and prints on rank 0.
#pragma once

#include <memory>

#include "core/status.h"
#include "tuner/sweep.h"

namespace cf {

struct MpiSweep {
  bool root = false;   // rank 0: `result` holds every point
  int ranks = 1;       // MPI_COMM_WORLD's size
  SweepResult result;  // rank 0 only
};

// Collective over MPI_COMM_WORLD. `on_point(k, count, label)` is called on rank 0 only, before
// each of the `count` points it tunes itself. A failure on any rank fails every rank with the
// same status code; rank 0's message is the failing point's with the lowest index.
StatusOr<MpiSweep> run_sweep_mpi(const SweepSpec& spec, const TuneOptions& options,
                                 const SweepPointCallback& on_point);

// The ranks of MPI_COMM_WORLD as one search's peers (`mpirun -np N chunkflow tune`: every rank
// takes its share of each phase, all end with the same result, search_peers.h).
std::unique_ptr<SearchPeers> world_search_peers();

// Worker threads per rank when the user gives none: this machine's hardware threads shared
// by the ranks of MPI_COMM_WORLD running on it (at least 1). Collective.
int mpi_threads_per_rank();

}  // namespace cf

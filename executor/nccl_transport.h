// The transport of a CUDA run under mpirun, one GPU per rank: NCCL for every message and
// collective, device memory to device memory. Messages between stages go over one NCCL
// communicator per directed link and kind (activations or gradients from stage a to stage b of one
// DP rank and CP rank), each with its own CUDA stream, so a send never waits behind a receive; on
// such a link the plan's messages are received in the order they are sent (tested over the
// executor's schedules: tests/executor/transport_test.cc), and each carries its key, which the
// receiver checks. The gradient sum over the dp·cp ranks of a stage, the tied-embedding pair and
// the CP all-gather and reduce-scatter (padded to the largest part) are NCCL collectives on the
// stage's stream. Every wait polls against the run's deadline (mpi_wait.h) and a failed NCCL call
// prints "rank R: <call>: <NCCL's error> (file:line)" and ends the job. Built with
// CHUNKFLOW_HAVE_CUDA and CHUNKFLOW_MPI. Not the host transport (mpi_transport.h).
#pragma once

#include <mpi.h>

#include <memory>

#include "executor/backend.h"
#include "executor/rank_layout.h"
#include "executor/transport.h"

namespace cf {

// Collective over MPI_COMM_WORLD (every rank creates its communicators in the same order).
// `stream` is the rank's stage stream on the CUDA backend (its device is the rank's).
std::unique_ptr<Transport> make_nccl_transport(const RankLayout& layout, bool tied_embeddings,
                                               Stream* stream, double timeout_s);

}  // namespace cf

// Runs a job with one MPI rank per (DP rank, CP rank, stage) — `mpirun -np dp·cp·pp chunkflow
// run …` — rank = (stage·dp + dp_rank)·cp + cp_rank (rank_layout.h). Every rank runs its stage
// on its CP rank's rows; rank 0 gathers losses, step times, peak memory, the measured trace (CP
// rank 0's ops) and the reference check into the report. Built only with CHUNKFLOW_MPI
// (CHUNKFLOW_HAVE_MPI defined). Not the in-process driver (executor.h).
#pragma once

#include "core/status.h"
#include "executor/executor.h"

namespace cf {

// MPI_Init_thread (funneled) on construction (unless already initialised), MPI_Finalize on
// destruction (if it initialised). One per process. It makes an MPI error on MPI_COMM_WORLD (or
// a communicator made from it) print "rank R: MPI error: …" and end the job, and CHECK failures
// start with "rank R" (mpi_wait.h).
class MpiSession {
 public:
  MpiSession();
  ~MpiSession();
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;
  int rank() const { return rank_; }
  int size() const { return size_; }

 private:
  bool owns_ = false;
  int rank_ = 0;
  int size_ = 1;
};

struct MpiRunResult {
  bool root = false;  // rank 0: `report` is filled
  RunReport report;
};

// Called collectively by every rank of MPI_COMM_WORLD. Bad input — a world size other than
// dp × cp × pp, a token file, a plan, a malformed CHUNKFLOW_FAULT (fault_injection.h) — is found
// by every rank alike and returned on every rank (so every rank exits 2). A failure of one rank
// — an exception, an MPI error, a peer silent for options.mpi_timeout_s — ends the job from
// that rank (abort_mpi_job: "rank R: reason", then MPI_Abort); a rank that dies is mpirun's to
// report.
// `on_step` is called on rank 0 only.
StatusOr<MpiRunResult> run_with_mpi(const Job& job, const ExecutorOptions& options,
                                    const StepCallback& on_step = {});

// True when this process was started by an MPI launcher (Open MPI's or a PMI environment).
bool launched_by_mpirun();

}  // namespace cf

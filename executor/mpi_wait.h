// How the MPI executor fails: as one job, never as a hang. A rank that dies (killed, out of
// memory, crashed) is mpirun's to report: Open MPI 4.1 notices the exit, kills the other ranks
// and exits non-zero about a second later, naming the rank and the signal. What it cannot see is
// a rank that is alive but silent (stuck, or finished early and waiting in MPI_Finalize), so
// every wait of the executor is a nonblocking call completed here with a deadline; and a rank
// that fails on its own (an exception, an MPI error, a wait past its deadline) prints
// "rank R: reason" and calls MPI_Abort, which ends the others. docs/EXECUTOR.md, "Faults".
// Built only with CHUNKFLOW_MPI.
#pragma once

#include <mpi.h>

#include <functional>
#include <string>

namespace cf {

// Prints "rank R: <reason>" on stderr and calls MPI_Abort(MPI_COMM_WORLD, 1): mpirun kills every
// rank and exits non-zero.
[[noreturn]] void abort_mpi_job(const std::string& reason);

// Makes an error of any MPI call on `comm` (and communicators later derived from it) print
// "rank R: MPI error: <MPI's text>" and abort the job, as abort_mpi_job does.
void set_abort_error_handler(MPI_Comm comm);

// Completes `requests` (MPI_Testall, polled: each poll drives MPI's progress and yields the core
// when ranks outnumber cores, as a blocking wait does). If they are not complete after
// `timeout_s` (> 0), aborts the job with "waited N s for <what()>; …". `statuses` may be
// MPI_STATUSES_IGNORE.
void wait_or_abort(int count, MPI_Request* requests, MPI_Status* statuses, double timeout_s,
                   const std::function<std::string()>& what);

// One request.
inline void wait_or_abort(MPI_Request* request, MPI_Status* status, double timeout_s,
                          const std::function<std::string()>& what) {
  wait_or_abort(1, request, status == MPI_STATUS_IGNORE ? MPI_STATUSES_IGNORE : status, timeout_s,
                what);
}

}  // namespace cf

// Ending the MPI job from one rank, and waits with a deadline (mpi_wait.h).
#include "executor/mpi_wait.h"

#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>

namespace cf {
namespace {

int world_rank() {
  int rank = -1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  return rank;
}

// MPI_Comm_errhandler_function: called in place of returning the error code.
void abort_on_mpi_error(MPI_Comm* /*comm*/, int* code, ...) {
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(*code, text, &length);
  abort_mpi_job("MPI error: " + std::string(text, static_cast<size_t>(length)));
}

}  // namespace

void abort_mpi_job(const std::string& reason) {
  std::fprintf(stderr, "rank %d: %s\n", world_rank(), reason.c_str());
  std::fflush(stderr);
  MPI_Abort(MPI_COMM_WORLD, 1);
  std::abort();  // MPI_Abort does not return; this says so to the compiler
}

void set_abort_error_handler(MPI_Comm comm) {
  MPI_Errhandler handler;
  MPI_Comm_create_errhandler(abort_on_mpi_error, &handler);
  MPI_Comm_set_errhandler(comm, handler);
  MPI_Errhandler_free(&handler);  // the communicator keeps its own reference
}

void wait_or_abort(int count, MPI_Request* requests, MPI_Status* statuses, double timeout_s,
                   const std::function<std::string()>& what) {
  if (timeout_s <= 0) {
    MPI_Waitall(count, requests, statuses);
    return;
  }
  using Clock = std::chrono::steady_clock;
  const Clock::time_point deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                                        std::chrono::duration<double>(timeout_s));
  for (;;) {
    int done = 0;
    MPI_Testall(count, requests, &done, statuses);
    if (done) return;
    if (Clock::now() >= deadline) {
      abort_mpi_job(fmt::format(
          "waited {:g} s for {}: the peer is alive but silent (stuck, or past its last message) "
          "or slower than the deadline (chunkflow run --mpi-timeout SECONDS, 0 for none)",
          timeout_s, what()));
    }
  }
}

}  // namespace cf

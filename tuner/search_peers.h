// Processes that share one search (tuner.h's TuneOptions::peers; sweeps under mpirun,
// sweep_mpi.h): each takes every size()-th family for the bounds and every size()-th family
// run of a wave (search.cc), then all exchange what they found, so every process holds the
// same state after each phase and ends with the result one process gives alone. The
// interface knows no transport: sweep_mpi.cc implements it over an MPI communicator.
#pragma once

#include <cstdint>
#include <vector>

namespace cf {

class SearchPeers {
 public:
  virtual ~SearchPeers() = default;
  virtual int rank() const = 0;  // 0 .. size() − 1
  virtual int size() const = 0;
  // Collective: every process calls it at the same point with its own bytes, and gets every
  // process's bytes in rank order.
  virtual std::vector<std::vector<uint8_t>> all_gather(const std::vector<uint8_t>& mine) = 0;
};

}  // namespace cf

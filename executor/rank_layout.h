// Where each (DP rank, CP rank, pipeline stage) of a run sits among its ranks: Megatron-Core's
// order tp-cp-dp-pp with tp = 1, so rank = (stage·dp + dp_rank)·cp + cp_rank — the CP ranks of
// one (DP rank, stage) are neighbours, the pipeline stage varies slowest. The in-process run
// orders its workers and an MPI run its world ranks by it. Not the groups' communicators
// (inproc_transport.h, mpi_transport.h).
#pragma once

#include "core/check.h"

namespace cf {

struct RankLayout {
  int dp = 1;
  int cp = 1;
  int pp = 1;

  int size() const { return dp * cp * pp; }
  int rank(int dp_rank, int cp_rank, int stage) const {
    CF_CHECK(dp_rank >= 0 && dp_rank < dp && cp_rank >= 0 && cp_rank < cp && stage >= 0 &&
             stage < pp)
        << "dp_rank " << dp_rank << " cp_rank " << cp_rank << " stage " << stage;
    return (stage * dp + dp_rank) * cp + cp_rank;
  }
  int cp_rank_of(int rank) const { return rank % cp; }
  int dp_rank_of(int rank) const { return rank / cp % dp; }
  int stage_of(int rank) const { return rank / (cp * dp); }
};

}  // namespace cf

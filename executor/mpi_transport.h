// The MPI transport: one rank per (DP rank, stage), world rank = dp_rank·pp + stage.
// Point-to-point messages are MPI_Isend (a private copy, completed at finish_step) and
// MPI_Recv with a tag naming (chunk, model chunk, direction); the DP gradient sum is an
// MPI_Allreduce over the ranks of one stage; the tied-embedding sum an MPI_Allreduce over
// stages 0 and pp−1 of one DP rank. Built only with CHUNKFLOW_MPI.
#pragma once

#include <mpi.h>

#include <vector>

#include "executor/transport.h"

namespace cf {

class MpiTransport : public Transport {
 public:
  // `world` holds exactly dp × pp ranks (checked by the caller).
  MpiTransport(MPI_Comm world, int dp, int pp, int vpp, bool tied_embeddings);
  ~MpiTransport() override;
  MpiTransport(const MpiTransport&) = delete;
  MpiTransport& operator=(const MpiTransport&) = delete;

  void send(int stage, const MessageKey& key, const float* data, int64_t count) override;
  void recv(int stage, const MessageKey& key, float* data, int64_t count) override;
  void allreduce_dp(float* data, int64_t count) override;
  void allreduce_tied(float* data, int64_t count) override;
  void finish_step() override;

  int dp_rank() const { return dp_rank_; }
  int stage() const { return stage_; }

 private:
  int tag(const MessageKey& key) const;
  int world_rank(int stage) const { return dp_rank_ * pp_ + stage; }

  MPI_Comm world_;
  MPI_Comm dp_comm_ = MPI_COMM_NULL;    // this stage across DP ranks
  MPI_Comm tied_comm_ = MPI_COMM_NULL;  // stages 0 and pp−1 of this DP rank (tied, pp > 1)
  int pp_, vpp_, dp_rank_, stage_;
  int tag_upper_bound_ = 32767;  // the standard's guaranteed minimum of MPI_TAG_UB
  std::vector<std::vector<float>> pending_data_;
  std::vector<MPI_Request> pending_;
};

}  // namespace cf

// The MPI transport: one rank per (DP rank, CP rank, stage), world rank in Megatron-Core's order
// (rank_layout.h: (stage·dp + dp_rank)·cp + cp_rank). Point-to-point messages are MPI_Isend (a
// private copy, completed at finish_step) and MPI_Recv to the same CP rank of the other stage,
// with a tag naming (chunk, model chunk, direction); the gradient sum is an MPI_Allreduce over
// the dp·cp ranks of one stage; the CP collectives are MPI_Allgatherv and MPI_Reduce_scatter
// over the cp ranks of one (DP rank, stage); the tied-embedding sum an MPI_Allreduce over stages
// 0 and pp−1 of one (DP rank, CP rank). Each group is a communicator from MPI_Comm_split.
// Built only with CHUNKFLOW_MPI.
#pragma once

#include <mpi.h>

#include <vector>

#include "executor/rank_layout.h"
#include "executor/transport.h"

namespace cf {

class MpiTransport : public Transport {
 public:
  // `world` holds exactly dp × cp × pp ranks (checked by the caller).
  MpiTransport(MPI_Comm world, int dp, int pp, int vpp, bool tied_embeddings, int cp = 1);
  ~MpiTransport() override;
  MpiTransport(const MpiTransport&) = delete;
  MpiTransport& operator=(const MpiTransport&) = delete;

  void send(int stage, const MessageKey& key, const float* data, int64_t count) override;
  void recv(int stage, const MessageKey& key, float* data, int64_t count) override;
  void allreduce_dp(float* data, int64_t count) override;
  void allreduce_tied(float* data, int64_t count) override;
  void allgather_cp(const float* data, float* out, const std::vector<int64_t>& counts) override;
  void reduce_scatter_cp(const float* data, float* out,
                         const std::vector<int64_t>& counts) override;
  void finish_step() override;

  int dp_rank() const { return dp_rank_; }
  int cp_rank() const { return cp_rank_; }
  int stage() const { return stage_; }

 private:
  int tag(const MessageKey& key) const;
  int world_rank(int stage) const { return layout_.rank(dp_rank_, cp_rank_, stage); }

  MPI_Comm world_;
  MPI_Comm dp_comm_ = MPI_COMM_NULL;    // this stage across its dp·cp ranks
  MPI_Comm cp_comm_ = MPI_COMM_NULL;    // this (DP rank, stage) across its cp ranks
  MPI_Comm tied_comm_ = MPI_COMM_NULL;  // stages 0 and pp−1 of this (DP, CP) rank (tied, pp > 1)
  RankLayout layout_;
  int vpp_, dp_rank_, cp_rank_, stage_;
  int tag_upper_bound_ = 32767;  // the standard's guaranteed minimum of MPI_TAG_UB
  std::vector<std::vector<float>> pending_data_;
  std::vector<MPI_Request> pending_;
};

}  // namespace cf

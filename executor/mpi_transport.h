// The MPI transport: one rank per (DP rank, CP rank, stage), world rank in Megatron-Core's order
// (rank_layout.h: (stage·dp + dp_rank)·cp + cp_rank). Point-to-point messages are MPI_Isend (a
// private copy, completed at finish_step) and MPI_Irecv to the same CP rank of the other stage,
// with a tag naming (chunk, model chunk, direction); the gradient sum is an MPI_Iallreduce over
// the dp·cp ranks of one stage; the CP collectives are MPI_Iallgatherv and MPI_Ireduce_scatter
// over the cp ranks of one (DP rank, stage); the tied-embedding sum an MPI_Iallreduce over stages
// 0 and pp−1 of one (DP rank, CP rank). Each group is a communicator from MPI_Comm_split. Every
// call waits for its request at once, with a deadline: a peer silent for longer ends the job
// (mpi_wait.h). Built only with CHUNKFLOW_MPI.
#pragma once

#include <mpi.h>

#include <string>
#include <vector>

#include "executor/mpi_wait.h"
#include "executor/rank_layout.h"
#include "executor/transport.h"

namespace cf {

class MpiTransport : public Transport {
 public:
  // `world` holds exactly dp × cp × pp ranks (checked by the caller). A wait longer than
  // `timeout_s` (0: none) aborts the job, naming what it waited for.
  MpiTransport(MPI_Comm world, int dp, int pp, int vpp, bool tied_embeddings, int cp = 1,
               double timeout_s = kDefaultPeerTimeoutS);
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
  // Completes `request`, a collective over one of the groups, or ends the job after timeout_s_.
  void wait(MPI_Request* request, const std::string& what) const;

  MPI_Comm world_;
  MPI_Comm dp_comm_ = MPI_COMM_NULL;    // this stage across its dp·cp ranks
  MPI_Comm cp_comm_ = MPI_COMM_NULL;    // this (DP rank, stage) across its cp ranks
  MPI_Comm tied_comm_ = MPI_COMM_NULL;  // stages 0 and pp−1 of this (DP, CP) rank (tied, pp > 1)
  RankLayout layout_;
  int vpp_, dp_rank_, cp_rank_, stage_;
  double timeout_s_;
  int tag_upper_bound_ = 32767;  // the standard's guaranteed minimum of MPI_TAG_UB
  std::vector<std::vector<float>> pending_data_;
  std::vector<MPI_Request> pending_;
};

}  // namespace cf

// The in-process transport: every (DP rank, CP rank, stage) is a thread of one process; messages
// go through one mailbox (copied, so sends never block) and collectives through a rendezvous of
// their group that sums the participants' buffers in participant order (the same bits on every
// participant) or concatenates them. Groups (rank_layout.h's order): per stage, its dp·cp ranks
// (participant dp_rank·cp + cp_rank); per (DP rank, stage), its cp ranks; per (DP rank, CP
// rank), stages 0 and pp−1. Not MPI (mpi_transport.h).
#pragma once

#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <tuple>
#include <vector>

#include "executor/transport.h"

namespace cf {

// The collectives of a fixed set of participants; sums are deterministic: participant order, in
// fp32. Each call blocks until every participant has made the same call.
class Rendezvous {
 public:
  explicit Rendezvous(int participants) : participants_(participants), pointers_(participants) {}
  // Leaves the sum of every participant's `data` (count) in every `data`.
  void allreduce_sum(int participant, float* data, int64_t count);
  // Participant i gives counts[i] floats in `data`; every `out` (Σ counts) gets them all,
  // concatenated in participant order.
  void allgather(int participant, const float* data, float* out,
                 const std::vector<int64_t>& counts);
  // Every participant gives `data` (Σ counts); participant i's `out` (counts[i]) gets the sum of
  // part i (at offset Σ_{j<i} counts[j]) over the participants.
  void reduce_scatter_sum(int participant, const float* data, float* out,
                          const std::vector<int64_t>& counts);

 private:
  void wait_for_phase(std::unique_lock<std::mutex>& lock);
  // Publishes `data`, then returns (unlocked) when every participant's is published.
  void publish(int participant, const float* data);
  // Returns when every participant is done reading the published buffers.
  void release();
  int participants_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<const float*> pointers_;
  int arrived_ = 0;
  int64_t phase_ = 0;
};

// Shared by the threads of one in-process run: dp × cp × pp endpoints.
class InProcessFabric {
 public:
  InProcessFabric(int dp, int pp, int cp = 1);
  int dp() const { return dp_; }
  int pp() const { return pp_; }
  int cp() const { return cp_; }
  // Messages sent and not yet received (0 between steps of a valid plan).
  size_t undelivered();

 private:
  friend class InProcessTransport;
  // dp rank, cp rank, from, to, chunk, model chunk, gradient
  using Slot = std::tuple<int, int, int, int, int, int, bool>;
  int dp_, pp_, cp_;
  std::mutex mutex_;
  std::condition_variable arrived_;
  std::map<Slot, std::vector<float>> mailbox_;
  std::vector<std::unique_ptr<Rendezvous>> dp_groups_;    // per stage, dp·cp participants
  std::vector<std::unique_ptr<Rendezvous>> cp_groups_;    // per stage·dp + dp rank, cp of them
  std::vector<std::unique_ptr<Rendezvous>> tied_groups_;  // per dp rank·cp + cp rank, 2 stages
};

class InProcessTransport : public Transport {
 public:
  InProcessTransport(InProcessFabric* fabric, int dp_rank, int stage, int cp_rank = 0);
  void send(int stage, const MessageKey& key, const float* data, int64_t count) override;
  void recv(int stage, const MessageKey& key, float* data, int64_t count) override;
  void allreduce_dp(float* data, int64_t count) override;
  void allreduce_tied(float* data, int64_t count) override;
  void allgather_cp(const float* data, float* out, const std::vector<int64_t>& counts) override;
  void reduce_scatter_cp(const float* data, float* out,
                         const std::vector<int64_t>& counts) override;
  void finish_step() override {}

 private:
  Rendezvous& cp_group();
  InProcessFabric* fabric_;
  int dp_rank_;
  int stage_;
  int cp_rank_;
};

}  // namespace cf

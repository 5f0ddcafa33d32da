// The in-process transport: every (DP rank, stage) is a thread of one process; messages go
// through one mailbox (copied, so sends never block) and collectives through a rendezvous that
// sums the participants' buffers in rank order (the same bits on every participant).
// Not MPI (mpi_transport.h).
#pragma once

#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <tuple>
#include <vector>

#include "executor/transport.h"

namespace cf {

// A sum over a fixed set of participants, deterministic: participant order, in fp32.
class Rendezvous {
 public:
  explicit Rendezvous(int participants) : participants_(participants), pointers_(participants) {}
  // Blocks until all `participants` have called it, then leaves the sum in every `data`.
  void allreduce_sum(int participant, float* data, int64_t count);

 private:
  void wait_for_phase(std::unique_lock<std::mutex>& lock);
  int participants_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<float*> pointers_;
  int arrived_ = 0;
  int64_t phase_ = 0;
};

// Shared by the threads of one in-process run: dp × pp endpoints.
class InProcessFabric {
 public:
  InProcessFabric(int dp, int pp);
  int dp() const { return dp_; }
  int pp() const { return pp_; }
  // Messages sent and not yet received (0 between steps of a valid plan).
  size_t undelivered();

 private:
  friend class InProcessTransport;
  using Slot = std::tuple<int, int, int, int, int, bool>;  // dp, from, to, chunk, mc, gradient
  int dp_, pp_;
  std::mutex mutex_;
  std::condition_variable arrived_;
  std::map<Slot, std::vector<float>> mailbox_;
  std::vector<std::unique_ptr<Rendezvous>> dp_groups_;    // per stage, dp participants
  std::vector<std::unique_ptr<Rendezvous>> tied_groups_;  // per DP rank, stages 0 and pp−1
};

class InProcessTransport : public Transport {
 public:
  InProcessTransport(InProcessFabric* fabric, int dp_rank, int stage)
      : fabric_(fabric), dp_rank_(dp_rank), stage_(stage) {}
  void send(int stage, const MessageKey& key, const float* data, int64_t count) override;
  void recv(int stage, const MessageKey& key, float* data, int64_t count) override;
  void allreduce_dp(float* data, int64_t count) override;
  void allreduce_tied(float* data, int64_t count) override;
  void finish_step() override {}

 private:
  InProcessFabric* fabric_;
  int dp_rank_;
  int stage_;
};

}  // namespace cf

// The transport of an in-process CUDA run, every stage a thread on one GPU with its own stream:
// messages are device-to-device copies ordered by CUDA events (the sender's stream records one
// after its copy of the message, the receiver's stream waits on it), and the gradient sums
// over the dp·cp ranks of a stage and the tied-embedding pair are summed on the device in
// participant order (the in-process transport's order, so the same fp32 sums), the leader's
// stream adding the others' buffers and the others copying the result, each step of it behind
// an event. The CP all-gather and reduce-scatter go through host staging (staged_transport.h).
// Message copies in flight come from the device pool and, as for every transport, are not
// counted by the stages (memory.h). Built with CHUNKFLOW_HAVE_CUDA. Not the NCCL transport
// (nccl_transport.h), which joins processes.
#pragma once

#include <cuda_runtime.h>

#include <barrier>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <tuple>
#include <vector>

#include "executor/backend.h"
#include "executor/inproc_transport.h"
#include "executor/staged_transport.h"
#include "executor/transport.h"

namespace cf {

// Device sums of a fixed set of participants, each on its own stream of one device.
class DeviceRendezvous {
 public:
  explicit DeviceRendezvous(int participants);
  // Leaves the sum over the participants of their `data` (count), in participant order, in
  // every `data`, in each participant's stream order. Every participant makes the same call.
  void allreduce_sum(int participant, Stream* stream, float* data, int64_t count);

 private:
  struct Entry {
    float* data = nullptr;
    cudaEvent_t ready = nullptr;   // the participant's stream has written `data`
    cudaEvent_t copied = nullptr;  // it has copied the sum (participants > 0)
  };
  int participants_;
  std::barrier<> barrier_;
  std::vector<Entry> entries_;
  cudaEvent_t summed_ = nullptr;  // the leader's stream has the sum in its `data`
};

// Shared by the stage threads of one in-process CUDA run: the mailbox of device messages and
// the device sums of each stage's dp·cp ranks and of each tied pair.
class DeviceFabric {
 public:
  DeviceFabric(int dp, int pp, int cp);
  ~DeviceFabric();
  int dp() const { return dp_; }
  int pp() const { return pp_; }
  int cp() const { return cp_; }
  size_t undelivered();  // messages sent and not yet received

 private:
  friend class CudaInProcessTransport;
  // (dp, cp, from stage, to stage, chunk, model chunk, gradient)
  using Slot = std::tuple<int, int, int, int, int, int, bool>;
  struct Message {
    float* data = nullptr;
    int64_t count = 0;
    cudaEvent_t ready = nullptr;
  };
  int dp_, pp_, cp_;
  std::mutex mutex_;
  std::condition_variable arrived_;
  std::map<Slot, Message> mailbox_;
  std::vector<std::unique_ptr<DeviceRendezvous>> dp_groups_;    // per stage
  std::vector<std::unique_ptr<DeviceRendezvous>> tied_groups_;  // per (DP rank, CP rank)
};

class CudaInProcessTransport final : public Transport {
 public:
  // `host` is the in-process transport of the same (DP rank, stage, CP rank), for the CP
  // collectives; `stream` the stage's stream on the CUDA backend. All outlive this transport.
  CudaInProcessTransport(DeviceFabric* fabric, InProcessTransport* host, Stream* stream,
                         int dp_rank, int stage, int cp_rank);

  void send(int stage, const MessageKey& key, const float* data, int64_t count) override;
  void recv(int stage, const MessageKey& key, float* data, int64_t count) override;
  void allreduce_dp(float* data, int64_t count) override;
  void allreduce_tied(float* data, int64_t count) override;
  void allgather_cp(const float* data, float* out, const std::vector<int64_t>& counts) override {
    staged_.allgather_cp(data, out, counts);
  }
  void reduce_scatter_cp(const float* data, float* out,
                         const std::vector<int64_t>& counts) override {
    staged_.reduce_scatter_cp(data, out, counts);
  }
  void finish_step() override { staged_.finish_step(); }

 private:
  DeviceFabric* fabric_;
  StagedTransport staged_;
  Stream* stream_;
  cudaStream_t native_;
  int dp_rank_, stage_, cp_rank_;
};

}  // namespace cf

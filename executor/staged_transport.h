// A transport for a backend whose storage is device memory, over a transport that reads and
// writes host memory (in-process, MPI): each message and collective goes through host copies
// made on the stage's stream. Correct for every transport and backend, but it pays a device →
// host and a host → device copy per call (PCIe), so the device transports use it only for what
// they do not do on the device: the in-process CP collectives (cuda_transport.h). Not
// thread-safe: one per stage, like the transport it wraps.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "executor/backend.h"
#include "executor/transport.h"

namespace cf {

class StagedTransport final : public Transport {
 public:
  // `host` and `stream` outlive this transport; `cp_rank` is the stage's CP rank (its part of
  // the CP collectives).
  StagedTransport(Transport* host, Stream* stream, int cp_rank)
      : host_(host), stream_(stream), cp_rank_(cp_rank) {}

  void send(int stage, const MessageKey& key, const float* data, int64_t count) override;
  void recv(int stage, const MessageKey& key, float* data, int64_t count) override;
  void allreduce_dp(float* data, int64_t count) override;
  void allreduce_tied(float* data, int64_t count) override;
  void allgather_cp(const float* data, float* out, const std::vector<int64_t>& counts) override;
  void reduce_scatter_cp(const float* data, float* out,
                         const std::vector<int64_t>& counts) override;
  void finish_step() override { host_->finish_step(); }

 private:
  // A host array of at least n floats, reused between calls (the wrapped transports copy what
  // they send, so nothing outlives a call).
  float* scratch(std::vector<float>& v, int64_t n);

  Transport* host_;
  Stream* stream_;
  int cp_rank_;
  std::vector<float> a_, b_;
};

}  // namespace cf

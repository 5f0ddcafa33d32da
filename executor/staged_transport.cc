// Host-staged messages and collectives (staged_transport.h).
#include "executor/staged_transport.h"

#include <numeric>
#include <vector>

#include "core/check.h"

namespace cf {

float* StagedTransport::scratch(std::vector<float>& v, int64_t n) {
  CF_CHECK_GE(n, 0);
  if (static_cast<int64_t>(v.size()) < n) v.resize(static_cast<size_t>(n));
  return v.data();
}

void StagedTransport::send(int stage, const MessageKey& key, const float* data, int64_t count) {
  float* host = scratch(a_, count);
  stream_->copy_to_host(host, data, count);
  host_->send(stage, key, host, count);  // the wrapped transport copies it
}

void StagedTransport::recv(int stage, const MessageKey& key, float* data, int64_t count) {
  float* host = scratch(a_, count);
  host_->recv(stage, key, host, count);
  stream_->copy_from_host(data, host, count);
}

void StagedTransport::allreduce_dp(float* data, int64_t count) {
  float* host = scratch(a_, count);
  stream_->copy_to_host(host, data, count);
  host_->allreduce_dp(host, count);
  stream_->copy_from_host(data, host, count);
}

void StagedTransport::allreduce_tied(float* data, int64_t count) {
  float* host = scratch(a_, count);
  stream_->copy_to_host(host, data, count);
  host_->allreduce_tied(host, count);
  stream_->copy_from_host(data, host, count);
}

void StagedTransport::allgather_cp(const float* data, float* out,
                                   const std::vector<int64_t>& counts) {
  CF_CHECK(cp_rank_ >= 0 && cp_rank_ < static_cast<int>(counts.size()))
      << "CP rank " << cp_rank_ << " of " << counts.size();
  const int64_t mine = counts[static_cast<size_t>(cp_rank_)];
  const int64_t total = std::accumulate(counts.begin(), counts.end(), int64_t{0});
  float* host_in = scratch(a_, mine);
  float* host_out = scratch(b_, total);
  stream_->copy_to_host(host_in, data, mine);
  host_->allgather_cp(host_in, host_out, counts);
  stream_->copy_from_host(out, host_out, total);
}

void StagedTransport::reduce_scatter_cp(const float* data, float* out,
                                        const std::vector<int64_t>& counts) {
  CF_CHECK(cp_rank_ >= 0 && cp_rank_ < static_cast<int>(counts.size()))
      << "CP rank " << cp_rank_ << " of " << counts.size();
  const int64_t mine = counts[static_cast<size_t>(cp_rank_)];
  const int64_t total = std::accumulate(counts.begin(), counts.end(), int64_t{0});
  float* host_in = scratch(a_, total);
  float* host_out = scratch(b_, mine);
  stream_->copy_to_host(host_in, data, total);
  host_->reduce_scatter_cp(host_in, host_out, counts);
  stream_->copy_from_host(out, host_out, mine);
}

}  // namespace cf

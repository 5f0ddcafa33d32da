// In-process transport: mailbox and rendezvous collectives (inproc_transport.h).
#include "executor/inproc_transport.h"

#include <algorithm>

#include "core/check.h"

namespace cf {

void Rendezvous::wait_for_phase(std::unique_lock<std::mutex>& lock) {
  // Everyone arrives (phase advances), then everyone has read (phase advances again).
  const int64_t my_phase = phase_;
  if (++arrived_ == participants_) {
    arrived_ = 0;
    ++phase_;
    cv_.notify_all();
  } else {
    cv_.wait(lock, [&] { return phase_ != my_phase; });
  }
}

void Rendezvous::publish(int participant, const float* data) {
  std::unique_lock<std::mutex> lock(mutex_);
  pointers_[static_cast<size_t>(participant)] = data;
  wait_for_phase(lock);
}

void Rendezvous::release() {
  std::unique_lock<std::mutex> lock(mutex_);
  wait_for_phase(lock);
}

void Rendezvous::allreduce_sum(int participant, float* data, int64_t count) {
  CF_CHECK(participant >= 0 && participant < participants_) << "participant " << participant;
  if (participants_ == 1) return;
  std::vector<float> sum(static_cast<size_t>(count), 0.0f);
  publish(participant, data);  // all pointers published
  for (const float* p : pointers_) {
    for (int64_t i = 0; i < count; ++i) sum[static_cast<size_t>(i)] += p[i];
  }
  release();  // all sums read every buffer: now each may overwrite its own
  std::copy(sum.begin(), sum.end(), data);
  release();  // no one reuses the rendezvous while another still copies
}

void Rendezvous::allgather(int participant, const float* data, float* out,
                           const std::vector<int64_t>& counts) {
  CF_CHECK(participant >= 0 && participant < participants_) << "participant " << participant;
  CF_CHECK_EQ(static_cast<int>(counts.size()), participants_);
  publish(participant, data);
  int64_t offset = 0;
  for (int p = 0; p < participants_; ++p) {
    const int64_t n = counts[static_cast<size_t>(p)];
    std::copy(pointers_[static_cast<size_t>(p)], pointers_[static_cast<size_t>(p)] + n,
              out + offset);
    offset += n;
  }
  release();  // every participant has read every buffer
}

void Rendezvous::reduce_scatter_sum(int participant, const float* data, float* out,
                                    const std::vector<int64_t>& counts) {
  CF_CHECK(participant >= 0 && participant < participants_) << "participant " << participant;
  CF_CHECK_EQ(static_cast<int>(counts.size()), participants_);
  int64_t offset = 0;
  for (int p = 0; p < participant; ++p) offset += counts[static_cast<size_t>(p)];
  const int64_t n = counts[static_cast<size_t>(participant)];
  publish(participant, data);
  for (int64_t i = 0; i < n; ++i) {
    float sum = 0.0f;  // participant order, as allreduce_sum
    for (const float* p : pointers_) sum += p[offset + i];
    out[i] = sum;
  }
  release();  // every participant has read its part of every buffer
}

InProcessFabric::InProcessFabric(int dp, int pp, int cp) : dp_(dp), pp_(pp), cp_(cp) {
  CF_CHECK(dp >= 1 && pp >= 1 && cp >= 1) << "dp " << dp << " pp " << pp << " cp " << cp;
  for (int s = 0; s < pp; ++s) dp_groups_.push_back(std::make_unique<Rendezvous>(dp * cp));
  for (int i = 0; i < pp * dp; ++i) cp_groups_.push_back(std::make_unique<Rendezvous>(cp));
  for (int i = 0; i < dp * cp; ++i) tied_groups_.push_back(std::make_unique<Rendezvous>(2));
}

size_t InProcessFabric::undelivered() {
  std::lock_guard<std::mutex> lock(mutex_);
  return mailbox_.size();
}

InProcessTransport::InProcessTransport(InProcessFabric* fabric, int dp_rank, int stage, int cp_rank)
    : fabric_(fabric), dp_rank_(dp_rank), stage_(stage), cp_rank_(cp_rank) {
  CF_CHECK(dp_rank >= 0 && dp_rank < fabric->dp_ && stage >= 0 && stage < fabric->pp_ &&
           cp_rank >= 0 && cp_rank < fabric->cp_)
      << "dp rank " << dp_rank << " stage " << stage << " cp rank " << cp_rank;
}

void InProcessTransport::send(int stage, const MessageKey& key, const float* data, int64_t count) {
  CF_CHECK(stage >= 0 && stage < fabric_->pp_) << "no stage " << stage;
  std::vector<float> copy(data, data + count);
  {
    std::lock_guard<std::mutex> lock(fabric_->mutex_);
    auto [it, inserted] =
        fabric_->mailbox_.emplace(InProcessFabric::Slot{dp_rank_, cp_rank_, stage_, stage,
                                                        key.chunk, key.model_chunk, key.gradient},
                                  std::move(copy));
    CF_CHECK(inserted) << "message for chunk " << key.chunk << " sent twice";
  }
  fabric_->arrived_.notify_all();
}

void InProcessTransport::recv(int stage, const MessageKey& key, float* data, int64_t count) {
  const InProcessFabric::Slot slot{dp_rank_,  cp_rank_,        stage,       stage_,
                                   key.chunk, key.model_chunk, key.gradient};
  std::unique_lock<std::mutex> lock(fabric_->mutex_);
  fabric_->arrived_.wait(lock, [&] { return fabric_->mailbox_.count(slot) > 0; });
  auto it = fabric_->mailbox_.find(slot);
  CF_CHECK_EQ(static_cast<int64_t>(it->second.size()), count);
  std::copy(it->second.begin(), it->second.end(), data);
  fabric_->mailbox_.erase(it);
}

void InProcessTransport::allreduce_dp(float* data, int64_t count) {
  fabric_->dp_groups_[static_cast<size_t>(stage_)]->allreduce_sum(
      dp_rank_ * fabric_->cp_ + cp_rank_, data, count);
}

void InProcessTransport::allreduce_tied(float* data, int64_t count) {
  CF_CHECK(stage_ == 0 || stage_ == fabric_->pp_ - 1)
      << "stage " << stage_ << " is not in the tied pair";
  CF_CHECK_GT(fabric_->pp_, 1);
  fabric_->tied_groups_[static_cast<size_t>(dp_rank_ * fabric_->cp_ + cp_rank_)]->allreduce_sum(
      stage_ == 0 ? 0 : 1, data, count);
}

Rendezvous& InProcessTransport::cp_group() {
  return *fabric_->cp_groups_[static_cast<size_t>(stage_ * fabric_->dp_ + dp_rank_)];
}

void InProcessTransport::allgather_cp(const float* data, float* out,
                                      const std::vector<int64_t>& counts) {
  cp_group().allgather(cp_rank_, data, out, counts);
}

void InProcessTransport::reduce_scatter_cp(const float* data, float* out,
                                           const std::vector<int64_t>& counts) {
  cp_group().reduce_scatter_sum(cp_rank_, data, out, counts);
}

}  // namespace cf

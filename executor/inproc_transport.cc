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

void Rendezvous::allreduce_sum(int participant, float* data, int64_t count) {
  CF_CHECK(participant >= 0 && participant < participants_) << "participant " << participant;
  if (participants_ == 1) return;
  std::vector<float> sum(static_cast<size_t>(count), 0.0f);
  std::unique_lock<std::mutex> lock(mutex_);
  pointers_[static_cast<size_t>(participant)] = data;
  wait_for_phase(lock);  // all pointers published
  lock.unlock();
  for (const float* p : pointers_) {
    for (int64_t i = 0; i < count; ++i) sum[static_cast<size_t>(i)] += p[i];
  }
  lock.lock();
  wait_for_phase(lock);  // all sums read every buffer: now each may overwrite its own
  lock.unlock();
  std::copy(sum.begin(), sum.end(), data);
  lock.lock();
  wait_for_phase(lock);  // no one reuses the rendezvous while another still copies
}

InProcessFabric::InProcessFabric(int dp, int pp) : dp_(dp), pp_(pp) {
  for (int s = 0; s < pp; ++s) dp_groups_.push_back(std::make_unique<Rendezvous>(dp));
  for (int r = 0; r < dp; ++r) tied_groups_.push_back(std::make_unique<Rendezvous>(2));
}

size_t InProcessFabric::undelivered() {
  std::lock_guard<std::mutex> lock(mutex_);
  return mailbox_.size();
}

void InProcessTransport::send(int stage, const MessageKey& key, const float* data, int64_t count) {
  CF_CHECK(stage >= 0 && stage < fabric_->pp_) << "no stage " << stage;
  std::vector<float> copy(data, data + count);
  {
    std::lock_guard<std::mutex> lock(fabric_->mutex_);
    auto [it, inserted] = fabric_->mailbox_.emplace(
        InProcessFabric::Slot{dp_rank_, stage_, stage, key.chunk, key.model_chunk, key.gradient},
        std::move(copy));
    CF_CHECK(inserted) << "message for chunk " << key.chunk << " sent twice";
  }
  fabric_->arrived_.notify_all();
}

void InProcessTransport::recv(int stage, const MessageKey& key, float* data, int64_t count) {
  const InProcessFabric::Slot slot{dp_rank_,  stage,           stage_,
                                   key.chunk, key.model_chunk, key.gradient};
  std::unique_lock<std::mutex> lock(fabric_->mutex_);
  fabric_->arrived_.wait(lock, [&] { return fabric_->mailbox_.count(slot) > 0; });
  auto it = fabric_->mailbox_.find(slot);
  CF_CHECK_EQ(static_cast<int64_t>(it->second.size()), count);
  std::copy(it->second.begin(), it->second.end(), data);
  fabric_->mailbox_.erase(it);
}

void InProcessTransport::allreduce_dp(float* data, int64_t count) {
  fabric_->dp_groups_[static_cast<size_t>(stage_)]->allreduce_sum(dp_rank_, data, count);
}

void InProcessTransport::allreduce_tied(float* data, int64_t count) {
  CF_CHECK(stage_ == 0 || stage_ == fabric_->pp_ - 1)
      << "stage " << stage_ << " is not in the tied pair";
  CF_CHECK_GT(fabric_->pp_, 1);
  fabric_->tied_groups_[static_cast<size_t>(dp_rank_)]->allreduce_sum(stage_ == 0 ? 0 : 1, data,
                                                                      count);
}

}  // namespace cf

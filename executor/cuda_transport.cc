// Device messages and sums between the stage threads of one in-process CUDA run
// (cuda_transport.h).
#include "executor/cuda_transport.h"

#include <algorithm>

#include "core/check.h"
#include "executor/cuda_backend.h"
#include "kernels/cuda/cuda_check.h"

namespace cf {
namespace {

cudaEvent_t record(cudaStream_t stream) {
  cudaEvent_t event = nullptr;
  CUDA_CHECK(cudaEventCreateWithFlags(&event, cudaEventDisableTiming));
  CUDA_CHECK(cudaEventRecord(event, stream));
  return event;
}

}  // namespace

DeviceRendezvous::DeviceRendezvous(int participants)
    : participants_(participants),
      barrier_(participants),
      entries_(static_cast<size_t>(participants)) {}

// Three barriers: (1) every buffer is published with its event; (2) the leader has enqueued
// the sum and its event; (3) every other participant has enqueued its copy of the sum and that
// copy's event, on which the leader's stream then waits, so no later work of the leader's
// changes its buffer before the copies are made. An event is destroyed only after every stream
// that waits on it has enqueued the wait (CUDA releases it once it has completed).
void DeviceRendezvous::allreduce_sum(int participant, Stream* stream, float* data, int64_t count) {
  const cudaStream_t native = native_cuda_stream(stream);
  CF_CHECK(native != nullptr) << "a device sum needs streams of the CUDA backend";
  CF_CHECK(participant >= 0 && participant < participants_) << "participant " << participant;
  if (participants_ == 1) return;
  Entry& mine = entries_[static_cast<size_t>(participant)];
  mine.data = data;
  mine.ready = record(native);
  barrier_.arrive_and_wait();  // (1)
  if (participant == 0) {
    for (int j = 1; j < participants_; ++j) {
      CUDA_CHECK(cudaStreamWaitEvent(native, entries_[static_cast<size_t>(j)].ready, 0));
      stream->residual_add(data, entries_[static_cast<size_t>(j)].data, count);
    }
    summed_ = record(native);
  }
  barrier_.arrive_and_wait();  // (2)
  if (participant != 0) {
    CUDA_CHECK(cudaStreamWaitEvent(native, summed_, 0));
    stream->copy(data, entries_[0].data, count);
    mine.copied = record(native);
  }
  barrier_.arrive_and_wait();  // (3)
  if (participant == 0) {
    for (int j = 1; j < participants_; ++j) {
      Entry& other = entries_[static_cast<size_t>(j)];
      CUDA_CHECK(cudaStreamWaitEvent(native, other.copied, 0));
      CUDA_CHECK(cudaEventDestroy(other.copied));
      CUDA_CHECK(cudaEventDestroy(other.ready));
    }
    CUDA_CHECK(cudaEventDestroy(mine.ready));
    CUDA_CHECK(cudaEventDestroy(summed_));
  }
  barrier_.arrive_and_wait();  // the entries are free for the next call
}

DeviceFabric::DeviceFabric(int dp, int pp, int cp) : dp_(dp), pp_(pp), cp_(cp) {
  for (int s = 0; s < pp; ++s) dp_groups_.push_back(std::make_unique<DeviceRendezvous>(dp * cp));
  for (int i = 0; i < dp * cp; ++i) tied_groups_.push_back(std::make_unique<DeviceRendezvous>(2));
}

DeviceFabric::~DeviceFabric() {
  for (auto& [slot, message] : mailbox_) {  // a failed run's leftovers
    cudaFree(message.data);
    cudaEventDestroy(message.ready);
  }
}

size_t DeviceFabric::undelivered() {
  std::lock_guard<std::mutex> lock(mutex_);
  return mailbox_.size();
}

CudaInProcessTransport::CudaInProcessTransport(DeviceFabric* fabric, InProcessTransport* host,
                                               Stream* stream, int dp_rank, int stage, int cp_rank)
    : fabric_(fabric),
      staged_(host, stream, cp_rank),
      stream_(stream),
      native_(native_cuda_stream(stream)),
      dp_rank_(dp_rank),
      stage_(stage),
      cp_rank_(cp_rank) {
  CF_CHECK(native_ != nullptr) << "the device transport needs a stream of the CUDA backend";
}

void CudaInProcessTransport::send(int stage, const MessageKey& key, const float* data,
                                  int64_t count) {
  CF_CHECK(stage >= 0 && stage < fabric_->pp_) << "no stage " << stage;
  DeviceFabric::Message message;
  message.count = count;
  CUDA_CHECK(
      cudaMallocAsync(&message.data, size_t(std::max<int64_t>(count, 1)) * sizeof(float), native_));
  stream_->copy(message.data, data, count);  // the caller may free `data` once this returns
  message.ready = record(native_);
  {
    std::lock_guard<std::mutex> lock(fabric_->mutex_);
    const bool inserted = fabric_->mailbox_
                              .emplace(DeviceFabric::Slot{dp_rank_, cp_rank_, stage_, stage,
                                                          key.chunk, key.model_chunk, key.gradient},
                                       message)
                              .second;
    CF_CHECK(inserted) << "message for chunk " << key.chunk << " sent twice";
  }
  fabric_->arrived_.notify_all();
}

void CudaInProcessTransport::recv(int stage, const MessageKey& key, float* data, int64_t count) {
  const DeviceFabric::Slot slot{dp_rank_,  cp_rank_,        stage,       stage_,
                                key.chunk, key.model_chunk, key.gradient};
  DeviceFabric::Message message;
  {
    std::unique_lock<std::mutex> lock(fabric_->mutex_);
    fabric_->arrived_.wait(lock, [&] { return fabric_->mailbox_.count(slot) > 0; });
    auto it = fabric_->mailbox_.find(slot);
    message = it->second;
    fabric_->mailbox_.erase(it);
  }
  CF_CHECK_EQ(message.count, count);
  CUDA_CHECK(cudaStreamWaitEvent(native_, message.ready, 0));
  stream_->copy(data, message.data, count);
  CUDA_CHECK(cudaFreeAsync(message.data, native_));  // after the copy, in this stream's order
  CUDA_CHECK(cudaEventDestroy(message.ready));
}

void CudaInProcessTransport::allreduce_dp(float* data, int64_t count) {
  fabric_->dp_groups_[static_cast<size_t>(stage_)]->allreduce_sum(
      dp_rank_ * fabric_->cp_ + cp_rank_, stream_, data, count);
}

void CudaInProcessTransport::allreduce_tied(float* data, int64_t count) {
  CF_CHECK(stage_ == 0 || stage_ == fabric_->pp_ - 1)
      << "stage " << stage_ << " is not in the tied-embedding pair";
  fabric_->tied_groups_[static_cast<size_t>(dp_rank_ * fabric_->cp_ + cp_rank_)]->allreduce_sum(
      stage_ == 0 ? 0 : 1, stream_, data, count);
}

}  // namespace cf

// The executor's measuring allocator: every executor buffer is a Buffer<T> charged to one
// MemoryTracker (one per pipeline stage) under a category, so live bytes, the stage's peak
// and the breakdown at that peak are measured, not modelled. Not a pool: memory comes from
// operator new, with the C library told to keep what is freed (retain_freed_memory). Not
// counted: Eigen's internal GEMM scratch, the transports' copies of messages in flight, and
// each chunk's host vectors of token ids, targets and positions (12 B/token).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>

#include "core/check.h"
#include "traces/kinds.h"

namespace cf {

// Tells glibc's malloc to keep freed memory for reuse: buffers up to 32 MiB come from the
// heap rather than their own mmap, and the heap is not trimmed back to the system. Without
// it every step re-faults its working set (the stage threads are new each step and their
// buffers were given back), about 40k page faults per two steps of the validation's tiny
// model, a tenth of its step time on a virtual machine. Process-wide; idempotent; the
// executor's entry points and the calibration call it. (What a caching allocator does.)
void retain_freed_memory();

// Live bytes by category on one stage, with the peak of their total (and the breakdown at
// that moment) and the peak of each category on its own. Not thread-safe: one stage's
// buffers are allocated and freed by that stage's thread only.
class MemoryTracker {
 public:
  void allocate(MemoryCategory category, int64_t bytes);
  void release(MemoryCategory category, int64_t bytes);

  int64_t live(MemoryCategory category) const { return live_[category]; }
  int64_t live_total() const { return live_total_; }
  const MemoryBreakdown& live_bytes() const { return live_; }
  int64_t peak_total() const { return peak_total_; }
  const MemoryBreakdown& breakdown_at_peak() const { return at_peak_; }
  int64_t peak(MemoryCategory category) const { return category_peaks_[category]; }
  const MemoryBreakdown& category_peaks() const { return category_peaks_; }
  // Restarts the peaks from the live bytes (e.g. at the start of a step).
  void reset_peaks();

 private:
  MemoryBreakdown live_;
  MemoryBreakdown at_peak_;
  MemoryBreakdown category_peaks_;  // each category's own peak
  int64_t live_total_ = 0;
  int64_t peak_total_ = 0;
};

// An owning, zero-initialised array of `count` T charged to a tracker while it lives.
// Move-only; an empty Buffer holds nothing and charges nothing.
template <typename T>
class Buffer {
 public:
  Buffer() = default;
  Buffer(MemoryTracker* tracker, MemoryCategory category, int64_t count)
      : tracker_(tracker), category_(category), count_(count) {
    CF_CHECK(tracker != nullptr) << "a Buffer needs a tracker";
    CF_CHECK_GE(count, 0);
    if (count_ > 0) {
      data_.reset(new T[static_cast<size_t>(count_)]());
      tracker_->allocate(category_, bytes());
    }
  }
  Buffer(Buffer&& other) noexcept { *this = std::move(other); }
  Buffer& operator=(Buffer&& other) noexcept {
    if (this != &other) {
      reset();
      tracker_ = std::exchange(other.tracker_, nullptr);
      category_ = other.category_;
      count_ = std::exchange(other.count_, 0);
      data_ = std::move(other.data_);
    }
    return *this;
  }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  ~Buffer() { reset(); }

  void reset() {
    if (data_) tracker_->release(category_, bytes());
    data_.reset();
    count_ = 0;
  }
  T* data() { return data_.get(); }
  const T* data() const { return data_.get(); }
  int64_t size() const { return count_; }
  bool empty() const { return count_ == 0; }
  int64_t bytes() const { return count_ * static_cast<int64_t>(sizeof(T)); }
  T& operator[](int64_t i) { return data_[static_cast<size_t>(i)]; }
  const T& operator[](int64_t i) const { return data_[static_cast<size_t>(i)]; }

 private:
  MemoryTracker* tracker_ = nullptr;
  MemoryCategory category_ = MemoryCategory::kTransient;
  int64_t count_ = 0;
  std::unique_ptr<T[]> data_;
};

using FloatBuffer = Buffer<float>;
using IntBuffer = Buffer<int32_t>;

}  // namespace cf

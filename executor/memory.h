// The executor's measuring allocator: every executor buffer is a Buffer<T> charged to one
// MemoryTracker (one per pipeline stage) under a category, so live bytes, the stage's peak
// and the breakdown at that peak are measured, not modelled. A buffer's storage comes from a
// backend's Allocator (backend.h): host memory from the C library for the CPU backend (told to
// keep what is freed, retain_freed_memory), none for the counting backend. Not a pool. Not
// counted: Eigen's internal GEMM scratch, the transports' copies of messages in flight, and
// each chunk's host vectors of token ids, targets and positions (12 B/token).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <utility>

#include "core/check.h"
#include "traces/kinds.h"

namespace cf {

// Where a Buffer's storage comes from: one backend's memory (backend.h). allocate returns
// `bytes` of zero-filled storage, or null when bytes is 0 or the backend keeps no storage (the
// counting backend); deallocate takes back what allocate returned, with the same size. Storage
// is the backend's: host code never dereferences it (a device backend's is device memory).
// Thread-safe: the stages of one process share an allocator.
class Allocator {
 public:
  virtual ~Allocator() = default;
  virtual void* allocate(int64_t bytes) = 0;
  virtual void deallocate(void* storage, int64_t bytes) = 0;
};

// Host memory from calloc/free: the CPU backend's storage, and the default of a Buffer built
// without an allocator (tests, the profiler's probes).
Allocator* host_allocator();
// Host memory filled with quiet NaNs rather than zeros: the CPU backend's K/V offload pool
// (backend.h), whose storage is written before it is read, so a read before the write shows.
Allocator* poisoned_host_allocator();

// The size class a caching host pool (the CUDA backend's pinned K/V offload pool) rounds a
// request of `bytes` up to, so that freed blocks serve later requests of nearby sizes: a 4 KiB
// page at least, then four classes per power of two (at most 25% more than asked).
int64_t host_block_size(int64_t bytes);

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
  // A second peak over an interval (one op of a stage's stream): restarts from the live bytes
  // at each start_interval and leaves the step's peaks alone.
  void start_interval();
  int64_t interval_peak() const { return interval_peak_; }
  const MemoryBreakdown& breakdown_at_interval_peak() const { return at_interval_peak_; }

 private:
  MemoryBreakdown live_;
  MemoryBreakdown at_peak_;
  MemoryBreakdown category_peaks_;  // each category's own peak
  int64_t live_total_ = 0;
  int64_t peak_total_ = 0;
  MemoryBreakdown at_interval_peak_;
  int64_t interval_peak_ = 0;
};

// An owning, zero-initialised array of `count` T from an allocator, charged to a tracker while
// it lives (whether or not the allocator keeps storage: the counting backend's buffers are
// charged exactly as real ones, with null data). Move-only; an empty Buffer holds nothing and
// charges nothing. data() is backend storage: op code passes it to a Stream (backend.h) and
// never dereferences it; operator[] is for host storage only (tests, the profiler's probes).
template <typename T>
class Buffer {
 public:
  Buffer() = default;
  // Host storage (host_allocator()).
  Buffer(MemoryTracker* tracker, MemoryCategory category, int64_t count)
      : Buffer(host_allocator(), tracker, category, count) {}
  Buffer(Allocator* allocator, MemoryTracker* tracker, MemoryCategory category, int64_t count)
      : allocator_(allocator), tracker_(tracker), category_(category), count_(count) {
    CF_CHECK(tracker != nullptr && allocator != nullptr) << "a Buffer needs a tracker and storage";
    CF_CHECK_GE(count, 0);
    if (count_ > 0) {
      data_ = static_cast<T*>(allocator_->allocate(bytes()));
      tracker_->allocate(category_, bytes());
    }
  }
  Buffer(Buffer&& other) noexcept { *this = std::move(other); }
  Buffer& operator=(Buffer&& other) noexcept {
    if (this != &other) {
      reset();
      allocator_ = std::exchange(other.allocator_, nullptr);
      tracker_ = std::exchange(other.tracker_, nullptr);
      category_ = other.category_;
      count_ = std::exchange(other.count_, 0);
      data_ = std::exchange(other.data_, nullptr);
    }
    return *this;
  }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  ~Buffer() { reset(); }

  void reset() {
    if (count_ > 0) {
      tracker_->release(category_, bytes());
      allocator_->deallocate(data_, bytes());
    }
    data_ = nullptr;
    count_ = 0;
  }
  T* data() { return data_; }
  const T* data() const { return data_; }
  int64_t size() const { return count_; }
  bool empty() const { return count_ == 0; }
  int64_t bytes() const { return count_ * static_cast<int64_t>(sizeof(T)); }
  T& operator[](int64_t i) { return data_[i]; }
  const T& operator[](int64_t i) const { return data_[i]; }

 private:
  Allocator* allocator_ = nullptr;
  MemoryTracker* tracker_ = nullptr;
  MemoryCategory category_ = MemoryCategory::kTransient;
  int64_t count_ = 0;
  T* data_ = nullptr;
};

using FloatBuffer = Buffer<float>;
using IntBuffer = Buffer<int32_t>;

}  // namespace cf

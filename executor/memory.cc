// MemoryTracker: live bytes by category and their peaks; the host allocator (memory.h).
#include "executor/memory.h"

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <algorithm>
#include <cstdlib>
#include <limits>

namespace cf {

namespace {

// calloc: zero-filled as Buffer promises, and for a fresh mmap'ed block without a memset.
class HostAllocator final : public Allocator {
 public:
  void* allocate(int64_t bytes) override {
    CF_CHECK_GE(bytes, 0);
    if (bytes == 0) return nullptr;
    void* storage = std::calloc(static_cast<size_t>(bytes), 1);
    CF_CHECK(storage != nullptr) << "out of host memory allocating " << bytes << " bytes";
    return storage;
  }
  void deallocate(void* storage, int64_t bytes) override { std::free(storage); }
};

// Host memory filled with quiet NaNs: storage that promises no zeros (a K/V offload host pool,
// backend.h), so that an element read before it was written spreads NaN into the results.
class PoisonedHostAllocator final : public Allocator {
 public:
  void* allocate(int64_t bytes) override {
    CF_CHECK_GE(bytes, 0);
    if (bytes == 0) return nullptr;
    void* storage = std::malloc(static_cast<size_t>(bytes));
    CF_CHECK(storage != nullptr) << "out of host memory allocating " << bytes << " bytes";
    float* floats = static_cast<float*>(storage);
    std::fill(floats, floats + bytes / static_cast<int64_t>(sizeof(float)),
              std::numeric_limits<float>::quiet_NaN());
    return storage;
  }
  void deallocate(void* storage, int64_t bytes) override { std::free(storage); }
};

}  // namespace

Allocator* host_allocator() {
  static HostAllocator allocator;  // stateless: shared by every thread
  return &allocator;
}

Allocator* poisoned_host_allocator() {
  static PoisonedHostAllocator allocator;
  return &allocator;
}

int64_t host_block_size(int64_t bytes) {
  CF_CHECK_GE(bytes, 0);
  constexpr int64_t kPage = 4096;
  if (bytes <= kPage) return kPage;
  int64_t power = kPage;
  while (power <= bytes / 2) power *= 2;  // the largest power of two ≤ bytes
  const int64_t step = power / 4;
  return (bytes + step - 1) / step * step;
}

void retain_freed_memory() {
#if defined(__GLIBC__)
  mallopt(M_MMAP_THRESHOLD, 32 << 20);  // glibc's largest heap-served size on 64-bit
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
#endif
}

void MemoryTracker::allocate(MemoryCategory category, int64_t bytes) {
  CF_CHECK_GE(bytes, 0);
  live_[category] += bytes;
  live_total_ += bytes;
  category_peaks_[category] = std::max(category_peaks_[category], live_[category]);
  if (live_total_ > peak_total_) {
    peak_total_ = live_total_;
    at_peak_ = live_;
  }
  if (live_total_ > interval_peak_) {
    interval_peak_ = live_total_;
    at_interval_peak_ = live_;
  }
}

void MemoryTracker::release(MemoryCategory category, int64_t bytes) {
  CF_CHECK_LE(bytes, live_[category])
      << memory_category_name(category) << ": freeing more than is live";
  live_[category] -= bytes;
  live_total_ -= bytes;
}

void MemoryTracker::reset_peaks() {
  peak_total_ = live_total_;
  at_peak_ = live_;
  category_peaks_ = live_;
}

void MemoryTracker::start_interval() {
  interval_peak_ = live_total_;
  at_interval_peak_ = live_;
}

}  // namespace cf

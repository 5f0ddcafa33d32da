// MemoryTracker: live bytes by category and their peaks (memory.h).
#include "executor/memory.h"

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <algorithm>

namespace cf {

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

}  // namespace cf

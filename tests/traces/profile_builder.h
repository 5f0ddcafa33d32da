// PyTorch profiles written by hand for the tests of the profile summary, the chunkflow marks
// and the comparison with a prediction: events at whole microseconds (so every time is exact
// in ns), in Kineto's object form or torch 1.x's bare list. Not a realistic trace (for that:
// profile_generator.h, make_qwen2_profile.py).
#pragma once

#include <fmt/format.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace cf::test {

// Kernel names each of one class (traces/profile_classes.h).
inline constexpr const char* kGemmKernel = "ampere_sgemm_128x64_tn";
inline constexpr const char* kAttentionKernel = "flash_fwd_kernel";
inline constexpr const char* kCollectiveKernel = "ncclDevKernel_AllReduce_Sum_f32_RING_LL";
inline constexpr const char* kElementwiseKernel = "vectorized_elementwise_kernel";
inline constexpr const char* kOtherKernel = "radixSortKVInPlace";

class ProfileBuilder {
 public:
  // legacy: torch 1.x's list, whose events have no "cat" (steps and marks are plain X events).
  explicit ProfileBuilder(bool legacy = false) : legacy_(legacy) {}

  ProfileBuilder& rank(int rank, int world_size) {
    rank_ = rank;
    world_size_ = world_size;
    return *this;
  }
  ProfileBuilder& step(int n, int64_t ts_us, int64_t dur_us) {
    return cpu_event("user_annotation", fmt::format("ProfilerStep#{}", n), ts_us, dur_us, 1);
  }
  // A record_function range: user_annotation on the CPU thread.
  ProfileBuilder& mark(const std::string& name, int64_t ts_us, int64_t dur_us) {
    return cpu_event("user_annotation", name, ts_us, dur_us, 1);
  }
  // Its copy on the device timeline (Kineto only).
  ProfileBuilder& gpu_mark(const std::string& name, int64_t ts_us, int64_t dur_us) {
    return raw(fmt::format(R"({{"ph": "X", "cat": "gpu_user_annotation", "name": "{}", "pid": 0, )"
                           R"("tid": 7, "ts": {}, "dur": {}, "args": {{"device": 0}}}})",
                           name, ts_us, dur_us));
  }
  ProfileBuilder& cpu_op(const std::string& name, int64_t ts_us, int64_t dur_us, int tid = 1) {
    return cpu_event("cpu_op", name, ts_us, dur_us, tid);
  }
  ProfileBuilder& kernel(const std::string& name, int64_t ts_us, int64_t dur_us, int stream = 7) {
    return device_event("kernel", name, ts_us, dur_us, stream);
  }
  ProfileBuilder& memcpy(int64_t ts_us, int64_t dur_us) {
    return device_event("gpu_memcpy", "Memcpy HtoD (Pageable -> Device)", ts_us, dur_us, 7);
  }
  ProfileBuilder& raw(const std::string& event) {
    events_.push_back(event);
    return *this;
  }

  int events() const { return static_cast<int>(events_.size()); }

  std::string json() const {
    std::string list = "[\n";
    for (std::size_t i = 0; i < events_.size(); ++i) {
      list += (i == 0 ? "  " : ",\n  ") + events_[i];
    }
    list += "\n]";
    if (legacy_) return list + "\n";
    std::string out = "{\"schemaVersion\": 1,\n";
    if (rank_) {
      out += fmt::format(
          "\"distributedInfo\": {{\"backend\": \"nccl\", \"rank\": {}, \"world_size\": {}}},\n",
          *rank_, world_size_);
    }
    return out + "\"traceEvents\": " + list + "}\n";
  }

 private:
  ProfileBuilder& cpu_event(const char* cat, const std::string& name, int64_t ts_us, int64_t dur_us,
                            int tid) {
    if (legacy_) {
      return raw(fmt::format(R"({{"name": "{}", "ph": "X", "ts": {}, "dur": {}, "tid": {}, )"
                             R"("pid": "CPU functions", "args": {{}}}})",
                             name, ts_us, dur_us, tid));
    }
    return raw(fmt::format(R"({{"ph": "X", "cat": "{}", "name": "{}", "pid": 100, "tid": {}, )"
                           R"("ts": {}, "dur": {}, "args": {{}}}})",
                           cat, name, tid, ts_us, dur_us));
  }
  ProfileBuilder& device_event(const char* cat, const std::string& name, int64_t ts_us,
                               int64_t dur_us, int stream) {
    return raw(fmt::format(R"({{"ph": "X", "cat": "{}", "name": "{}", "pid": 0, "tid": {}, )"
                           R"("ts": {}, "dur": {}, "args": {{"device": 0, "stream": {}}}}})",
                           cat, name, stream, ts_us, dur_us, stream));
  }

  bool legacy_;
  std::optional<int> rank_;
  int world_size_ = 0;
  std::vector<std::string> events_;
};

}  // namespace cf::test

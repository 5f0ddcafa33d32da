// What attention.cu (the CUDA-core kernels and the public launchers) and attention_tc.cu (the
// tensor-core kernels) share: the segment lookup on the device, stream-ordered scratch for the
// segment table, and the tensor-core launchers. Internal to kernels/cuda; not a public header.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/cpu/attention.h"
#include "kernels/cuda/cuda_check.h"

namespace cf::cuda {

// The segment holding query row `row`: the last one with q_begin ≤ row (segments tile the
// query rows in order; an empty segment never ends up last among those).
__device__ inline AttentionSegment find_segment(const AttentionSegment* segments,
                                                int64_t num_segments, int64_t row) {
  int64_t lo = 0, hi = num_segments;  // answer in [lo, hi)
  while (hi - lo > 1) {
    const int64_t mid = (lo + hi) / 2;
    if (segments[mid].q_begin <= row)
      lo = mid;
    else
      hi = mid;
  }
  return segments[lo];
}

// `count` elements of T in device memory for one launch, allocated and freed in stream order
// on current_stream(); filled from `host` when given.
template <typename T>
class StreamScratch {
 public:
  StreamScratch(int64_t count, const T* host = nullptr) {
    const size_t bytes = size_t(count > 0 ? count : 1) * sizeof(T);
    CUDA_CHECK(cudaMallocAsync(&data_, bytes, current_stream()));
    if (host != nullptr && count > 0) {
      CUDA_CHECK(cudaMemcpyAsync(data_, host, size_t(count) * sizeof(T), cudaMemcpyHostToDevice,
                                 current_stream()));
    }
  }
  ~StreamScratch() { CUDA_CHECK(cudaFreeAsync(data_, current_stream())); }
  StreamScratch(const StreamScratch&) = delete;
  StreamScratch& operator=(const StreamScratch&) = delete;
  T* get() const { return data_; }

 private:
  T* data_ = nullptr;
};

// The tensor-core path (attention_tc.cu) takes head_dim a multiple of 16 (the wmma tile) up to
// kMaxAttentionHeadDim; the launchers in attention.cu send other head dims to the CUDA-core
// kernels even in Math::kBf16.
bool tensor_core_attention_supports(const AttentionShape& shape);

// Same contracts as cf::cuda::attention_forward / attention_backward, with the arguments
// already checked, q_tokens > 0 and the segment table already in device memory.
void attention_forward_tc(float* out, float* lse, const float* q, const float* k, const float* v,
                          const AttentionSegment* device_segments, int64_t num_segments,
                          const AttentionShape& shape);
void attention_backward_tc(float* dq, float* dk, float* dv, const float* dout, const float* q,
                           const float* k, const float* v, const float* out, const float* lse,
                           const AttentionSegment* device_segments, int64_t num_segments,
                           const AttentionShape& shape);

}  // namespace cf::cuda

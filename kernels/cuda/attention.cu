// Segment-table attention on the GPU, and the launchers that pick a kernel by math mode.
// Math::kFp32 (and head dims the tensor-core path does not take): one warp per (query row,
// query head), keys visited in order with an online softmax (Milakov & Gimelshein 2018) in the
// forward; the backward recomputes P from the saved log-sum-exp and adds dK/dV with atomicAdd.
// Simple and correct before fast. Math::kBf16: the tiled tensor-core kernels of
// attention_tc.cu. Mirrors kernels/cpu/attention.cc (same preconditions, same outputs).
#include <cmath>

#include "kernels/cuda/attention_internal.cuh"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_reduce.cuh"
#include "kernels/cuda/kernels.h"

namespace cf::cuda {
namespace {

constexpr int kWarpsPerBlock = 4;
constexpr int kDimsPerLane = int(kMaxAttentionHeadDim / kWarpSize);  // 8

// Where one warp works: query row, head, its segment keys and how many it sees.
struct WarpTask {
  int64_t row, head, kv_head, first_key, visible;
};

__device__ inline bool warp_task(WarpTask& task, const AttentionSegment* segments,
                                 int64_t num_segments, const AttentionShape& shape) {
  const int64_t warp = (blockIdx.x * int64_t(blockDim.x) + threadIdx.x) / kWarpSize;
  if (warp >= shape.q_tokens * shape.heads) return false;
  task.row = warp / shape.heads;
  task.head = warp % shape.heads;
  task.kv_head = task.head / (shape.heads / shape.kv_heads);
  const AttentionSegment seg = find_segment(segments, num_segments, task.row);
  task.first_key = seg.kv_begin;
  task.visible = seg.kv_len - seg.q_len + (task.row - seg.q_begin) + 1;  // bottom-right causal
  return true;
}

// Loads this lane's dims (lane, lane + 32, ...) of a head_dim vector, 0 past the end.
__device__ inline void load_lane(float (&dst)[kDimsPerLane], const float* src, int64_t d) {
  const int lane = threadIdx.x % kWarpSize;
#pragma unroll
  for (int x = 0; x < kDimsPerLane; ++x) {
    const int64_t c = lane + int64_t(x) * kWarpSize;
    dst[x] = c < d ? src[c] : 0.0f;
  }
}

__device__ inline float lane_dot(const float (&a)[kDimsPerLane], const float* b, int64_t d) {
  const int lane = threadIdx.x % kWarpSize;
  float part = 0.0f;
#pragma unroll
  for (int x = 0; x < kDimsPerLane; ++x) {
    const int64_t c = lane + int64_t(x) * kWarpSize;
    if (c < d) part += a[x] * b[c];
  }
  return warp_sum(part);
}

// out (tq, a·d), lse (tq, a); q (tq, a·d); k, v (tk, g·d).
__global__ void attention_forward_kernel(float* out, float* lse, const float* q, const float* k,
                                         const float* v, const AttentionSegment* segments,
                                         int64_t num_segments, AttentionShape shape, float scale) {
  WarpTask task;
  if (!warp_task(task, segments, num_segments, shape)) return;  // warp-uniform
  const int64_t a = shape.heads, g = shape.kv_heads, d = shape.head_dim;
  const int lane = threadIdx.x % kWarpSize;
  float q_lane[kDimsPerLane], acc[kDimsPerLane] = {};
  load_lane(q_lane, q + (task.row * a + task.head) * d, d);
  float running_max = -INFINITY, running_sum = 0.0f;
  for (int64_t j = 0; j < task.visible; ++j) {
    const int64_t kv_offset = ((task.first_key + j) * g + task.kv_head) * d;
    const float s = scale * lane_dot(q_lane, k + kv_offset, d);
    const float new_max = fmaxf(running_max, s);
    const float correction = expf(running_max - new_max);  // 0 on the first key
    const float p = expf(s - new_max);
    running_sum = running_sum * correction + p;
#pragma unroll
    for (int x = 0; x < kDimsPerLane; ++x) {
      const int64_t c = lane + int64_t(x) * kWarpSize;
      acc[x] = acc[x] * correction + (c < d ? p * v[kv_offset + c] : 0.0f);
    }
    running_max = new_max;
  }
  float* out_row = out + (task.row * a + task.head) * d;
#pragma unroll
  for (int x = 0; x < kDimsPerLane; ++x) {
    const int64_t c = lane + int64_t(x) * kWarpSize;
    if (c < d) out_row[c] = acc[x] / running_sum;
  }
  if (lane == 0) lse[task.row * a + task.head] = running_max + logf(running_sum);
}

// dq (tq, a·d) += scale·Σ_j dS_ij·k_j; dk_j += scale·dS_ij·q_i; dv_j += P_ij·dO_i (atomics), with
// P_ij = exp(s_ij − lse_i), dS_ij = P_ij·(dO_i·v_j − dO_i·O_i).
__global__ void attention_backward_kernel(float* dq, float* dk, float* dv, const float* dout,
                                          const float* q, const float* k, const float* v,
                                          const float* out, const float* lse,
                                          const AttentionSegment* segments, int64_t num_segments,
                                          AttentionShape shape, float scale) {
  WarpTask task;
  if (!warp_task(task, segments, num_segments, shape)) return;  // warp-uniform
  const int64_t a = shape.heads, g = shape.kv_heads, d = shape.head_dim;
  const int lane = threadIdx.x % kWarpSize;
  const int64_t q_offset = (task.row * a + task.head) * d;
  float q_lane[kDimsPerLane], do_lane[kDimsPerLane], dq_lane[kDimsPerLane] = {};
  load_lane(q_lane, q + q_offset, d);
  load_lane(do_lane, dout + q_offset, d);
  const float out_dot = lane_dot(do_lane, out + q_offset, d);  // D_i
  const float row_lse = lse[task.row * a + task.head];
  for (int64_t j = 0; j < task.visible; ++j) {
    const int64_t kv_offset = ((task.first_key + j) * g + task.kv_head) * d;
    const float p = expf(scale * lane_dot(q_lane, k + kv_offset, d) - row_lse);
    const float dp = lane_dot(do_lane, v + kv_offset, d);
    const float ds = scale * p * (dp - out_dot);  // scale·dS_ij
#pragma unroll
    for (int x = 0; x < kDimsPerLane; ++x) {
      const int64_t c = lane + int64_t(x) * kWarpSize;
      if (c < d) {
        dq_lane[x] += ds * k[kv_offset + c];
        atomicAdd(&dk[kv_offset + c], ds * q_lane[x]);
        atomicAdd(&dv[kv_offset + c], p * do_lane[x]);
      }
    }
  }
#pragma unroll
  for (int x = 0; x < kDimsPerLane; ++x) {
    const int64_t c = lane + int64_t(x) * kWarpSize;
    if (c < d) dq[q_offset + c] += dq_lane[x];
  }
}

unsigned int attention_blocks(const AttentionShape& shape) {
  return blocks_for(shape.q_tokens * shape.heads, kWarpsPerBlock);
}

}  // namespace

void attention_forward(float* out, float* lse, const float* q, const float* k, const float* v,
                       const AttentionSegment* segments, int64_t num_segments,
                       const AttentionShape& shape) {
  check_attention_args(segments, num_segments, shape);
  CF_CHECK_LE(shape.head_dim, kMaxAttentionHeadDim);
  if (shape.q_tokens == 0) return;
  const StreamScratch<AttentionSegment> device_segments(num_segments, segments);
  if (current_math() == Math::kBf16 && tensor_core_attention_supports(shape)) {
    attention_forward_tc(out, lse, q, k, v, device_segments.get(), num_segments, shape);
    return;
  }
  const float scale = float(1.0 / std::sqrt(double(shape.head_dim)));
  attention_forward_kernel<<<attention_blocks(shape), kWarpsPerBlock * kWarpSize, 0,
                             current_stream()>>>(out, lse, q, k, v, device_segments.get(),
                                                 num_segments, shape, scale);
  CUDA_CHECK_LAUNCH();
}

void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* q,
                        const float* k, const float* v, const float* out, const float* lse,
                        const AttentionSegment* segments, int64_t num_segments,
                        const AttentionShape& shape) {
  check_attention_args(segments, num_segments, shape);
  CF_CHECK_LE(shape.head_dim, kMaxAttentionHeadDim);
  if (shape.q_tokens == 0) return;
  const StreamScratch<AttentionSegment> device_segments(num_segments, segments);
  if (current_math() == Math::kBf16 && tensor_core_attention_supports(shape)) {
    attention_backward_tc(dq, dk, dv, dout, q, k, v, out, lse, device_segments.get(), num_segments,
                          shape);
    return;
  }
  const float scale = float(1.0 / std::sqrt(double(shape.head_dim)));
  attention_backward_kernel<<<attention_blocks(shape), kWarpsPerBlock * kWarpSize, 0,
                              current_stream()>>>(
      dq, dk, dv, dout, q, k, v, out, lse, device_segments.get(), num_segments, shape, scale);
  CUDA_CHECK_LAUNCH();
}

}  // namespace cf::cuda

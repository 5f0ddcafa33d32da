// Cross-entropy on the GPU: one block per token for the forward (max, then Σ exp), one thread
// per logit for the backward. Mirrors kernels/cpu/cross_entropy.cc.
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_reduce.cuh"
#include "kernels/cuda/kernels.h"

namespace cf::cuda {
namespace {

constexpr int kThreads = 256;

// Block t: lse[t] = log Σ_v exp(z_v), losses[t] = scale·(lse − z_target) or 0 when ignored.
__global__ void cross_entropy_forward_kernel(float* losses, float* lse, const float* logits,
                                             const int32_t* targets, int64_t vocab,
                                             float loss_scale) {
  const int64_t t = blockIdx.x;
  const float* row = logits + t * vocab;
  float max_logit = -INFINITY;
  for (int64_t v = threadIdx.x; v < vocab; v += blockDim.x) max_logit = fmaxf(max_logit, row[v]);
  max_logit = block_max(max_logit);
  float sum = 0.0f;
  for (int64_t v = threadIdx.x; v < vocab; v += blockDim.x) sum += expf(row[v] - max_logit);
  sum = block_sum(sum);
  if (threadIdx.x == 0) {
    const float log_sum_exp = max_logit + logf(sum);
    lse[t] = log_sum_exp;
    const int32_t target = targets[t];
    losses[t] = target == cpu::kIgnoreTarget ? 0.0f : loss_scale * (log_sum_exp - row[target]);
  }
}

// dlogits = scale·(exp(z − lse) − [v == target]), 0 for ignored rows. Writes; may alias logits.
__global__ void cross_entropy_backward_kernel(float* dlogits, const float* logits, const float* lse,
                                              const int32_t* targets, int64_t tokens, int64_t vocab,
                                              float loss_scale) {
  const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (i >= tokens * vocab) return;
  const int64_t t = i / vocab, v = i % vocab;
  const int32_t target = targets[t];
  if (target == cpu::kIgnoreTarget) {
    dlogits[i] = 0.0f;
    return;
  }
  const float p = expf(logits[i] - lse[t]);
  dlogits[i] = loss_scale * (p - (v == target ? 1.0f : 0.0f));
}

}  // namespace

void cross_entropy_forward(float* losses, float* lse, const float* logits, const int32_t* targets,
                           int64_t tokens, int64_t vocab, float loss_scale) {
  CF_CHECK_GE(tokens, 0);
  CF_CHECK_GT(vocab, 0);
  if (tokens == 0) return;
  cross_entropy_forward_kernel<<<blocks_for(tokens, 1), kThreads, 0, current_stream()>>>(
      losses, lse, logits, targets, vocab, loss_scale);
  CUDA_CHECK_LAUNCH();
}

void cross_entropy_backward(float* dlogits, const float* logits, const float* lse,
                            const int32_t* targets, int64_t tokens, int64_t vocab,
                            float loss_scale) {
  CF_CHECK_GE(tokens, 0);
  CF_CHECK_GT(vocab, 0);
  if (tokens == 0) return;
  cross_entropy_backward_kernel<<<blocks_for(tokens * vocab, kThreads), kThreads, 0,
                                  current_stream()>>>(dlogits, logits, lse, targets, tokens, vocab,
                                                      loss_scale);
  CUDA_CHECK_LAUNCH();
}

}  // namespace cf::cuda

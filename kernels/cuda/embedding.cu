// Token embedding on the GPU: gather forward, atomicAdd scatter backward.
// Mirrors kernels/cpu/embedding.cc.
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/kernels.h"

namespace cf::cuda {
namespace {

constexpr int kThreads = 256;

// One thread per output element (t, c). out (tokens, hidden), table (vocab, hidden).
__global__ void embedding_forward_kernel(float* out, const int32_t* ids, const float* table,
                                         int64_t tokens, int64_t hidden) {
  const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (i >= tokens * hidden) return;
  const int64_t t = i / hidden, c = i % hidden;
  out[i] = table[int64_t(ids[t]) * hidden + c];
}

// One thread per dout element; repeated ids meet in atomicAdd.
__global__ void embedding_backward_kernel(float* dtable, const float* dout, const int32_t* ids,
                                          int64_t tokens, int64_t hidden) {
  const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (i >= tokens * hidden) return;
  const int64_t t = i / hidden, c = i % hidden;
  atomicAdd(&dtable[int64_t(ids[t]) * hidden + c], dout[i]);
}

}  // namespace

void embedding_forward(float* out, const int32_t* ids, const float* table, int64_t tokens,
                       int64_t vocab, int64_t hidden) {
  CF_CHECK_GE(tokens, 0);
  CF_CHECK_GT(hidden, 0);
  CF_CHECK_GT(vocab, 0);
  if (tokens == 0) return;
  embedding_forward_kernel<<<blocks_for(tokens * hidden, kThreads), kThreads, 0,
                             current_stream()>>>(out, ids, table, tokens, hidden);
  CUDA_CHECK_LAUNCH();
}

void embedding_backward(float* dtable, const float* dout, const int32_t* ids, int64_t tokens,
                        int64_t vocab, int64_t hidden) {
  CF_CHECK_GE(tokens, 0);
  CF_CHECK_GT(hidden, 0);
  CF_CHECK_GT(vocab, 0);
  if (tokens == 0) return;
  embedding_backward_kernel<<<blocks_for(tokens * hidden, kThreads), kThreads, 0,
                              current_stream()>>>(dtable, dout, ids, tokens, hidden);
  CUDA_CHECK_LAUNCH();
}

}  // namespace cf::cuda

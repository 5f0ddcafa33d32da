// Linear layer on the GPU with cuBLAS, plus small kernels for the bias. Mirrors
// kernels/cpu/linear.cc. The math mode of the calling thread (cuda_check.h) picks the GEMM:
//   kFp32: CUBLAS_COMPUTE_32F under CUBLAS_PEDANTIC_MATH — plain fp32, no TF32;
//   kBf16: CUBLAS_COMPUTE_32F_FAST_16BF under CUBLAS_DEFAULT_MATH — fp32 A/B/C in memory,
//          operands rounded to bf16 for the tensor cores, products accumulated in fp32.
// cuBLAS is column-major: a row-major (r, c) array is the column-major (c, r) array, so each
// product below is written for the transposes.
#include <climits>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/kernels.h"

namespace cf::cuda {
namespace {

constexpr int kThreads = 256;

// y (tokens, out) += bias (out) broadcast over tokens.
__global__ void add_bias_kernel(float* y, const float* bias, int64_t tokens, int64_t out) {
  const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (i < tokens * out) y[i] += bias[i % out];
}

// The bias gradient as a tiled column reduction. Block (x, y) sums columns
// [32·x, 32·x + 32) over tokens [kBiasTokensPerBlock·y, +kBiasTokensPerBlock): its 32×8 threads
// read rows of 32 consecutive floats (one 128-byte line per warp), each thread adds every 8th
// token of the range, the 8 partial sums of a column meet in shared memory, and one atomicAdd
// per column and block adds the block's sum to dbias. 8192 tokens × 896 columns make 28 × 32
// blocks of 32 loads per thread, where one thread per column walked all 8192 tokens alone.
constexpr int kBiasColumns = 32;  // threadIdx.x: one warp across 32 columns
constexpr int kBiasRows = 8;      // threadIdx.y
constexpr int64_t kBiasTokensPerBlock = 256;

// dbias (out) += Σ_t dy[t, :]; dy (tokens, out).
__global__ void bias_grad_kernel(float* dbias, const float* dy, int64_t tokens, int64_t out) {
  __shared__ float partial[kBiasRows][kBiasColumns];
  const int64_t column = blockIdx.x * int64_t(kBiasColumns) + threadIdx.x;
  const int64_t t_begin = blockIdx.y * kBiasTokensPerBlock;
  const int64_t t_end =
      t_begin + kBiasTokensPerBlock < tokens ? t_begin + kBiasTokensPerBlock : tokens;
  float sum = 0.0f;
  if (column < out) {
    for (int64_t t = t_begin + threadIdx.y; t < t_end; t += kBiasRows) sum += dy[t * out + column];
  }
  partial[threadIdx.y][threadIdx.x] = sum;
  __syncthreads();
  if (threadIdx.y == 0 && column < out) {
    for (int r = 1; r < kBiasRows; ++r) sum += partial[r][threadIdx.x];
    atomicAdd(&dbias[column], sum);
  }
}

// C (m, n col-major, ldc) = op(A)·op(B) + beta·C, fp32 in memory, computed as the calling
// thread's math mode says. The handle is per thread but the mode may change between calls, so
// both the math mode and the compute type are set on every call.
void gemm(cublasOperation_t op_a, cublasOperation_t op_b, int64_t m, int64_t n, int64_t k,
          const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
          int64_t ldc) {
  for (int64_t dim : {m, n, k, lda, ldb, ldc}) CF_CHECK_LE(dim, int64_t(INT_MAX));
  const bool bf16 = current_math() == Math::kBf16;
  const cublasHandle_t handle = cublas_handle();
  CUBLAS_CHECK(cublasSetMathMode(handle, bf16 ? CUBLAS_DEFAULT_MATH : CUBLAS_PEDANTIC_MATH));
  const cublasComputeType_t compute = bf16 ? CUBLAS_COMPUTE_32F_FAST_16BF : CUBLAS_COMPUTE_32F;
  const float alpha = 1.0f;
  CUBLAS_CHECK(cublasGemmEx(handle, op_a, op_b, int(m), int(n), int(k), &alpha, a, CUDA_R_32F,
                            int(lda), b, CUDA_R_32F, int(ldb), &beta, c, CUDA_R_32F, int(ldc),
                            compute, CUBLAS_GEMM_DEFAULT));
}

void check_linear_args(int64_t tokens, int64_t in_features, int64_t out_features) {
  CF_CHECK_GE(tokens, 0);
  CF_CHECK_GT(in_features, 0);
  CF_CHECK_GT(out_features, 0);
}

}  // namespace

void linear_forward(float* y, const float* x, const float* weight, const float* bias,
                    int64_t tokens, int64_t in_features, int64_t out_features) {
  check_linear_args(tokens, in_features, out_features);
  if (tokens == 0) return;
  // yᵀ (out, tokens) = W (out, in) · xᵀ (in, tokens); W is the col-major (in, out) array.
  gemm(CUBLAS_OP_T, CUBLAS_OP_N, out_features, tokens, in_features, weight, in_features, x,
       in_features, 0.0f, y, out_features);
  if (bias != nullptr) {
    add_bias_kernel<<<blocks_for(tokens * out_features, kThreads), kThreads, 0, current_stream()>>>(
        y, bias, tokens, out_features);
    CUDA_CHECK_LAUNCH();
  }
}

void linear_backward(float* dx, float* dweight, float* dbias, const float* dy, const float* x,
                     const float* weight, int64_t tokens, int64_t in_features,
                     int64_t out_features) {
  check_linear_args(tokens, in_features, out_features);
  if (tokens == 0) return;
  if (dx != nullptr) {
    // dxᵀ (in, tokens) += Wᵀ (in, out) · dyᵀ (out, tokens).
    gemm(CUBLAS_OP_N, CUBLAS_OP_N, in_features, tokens, out_features, weight, in_features, dy,
         out_features, 1.0f, dx, in_features);
  }
  if (dweight != nullptr) {
    // dWᵀ (in, out) += xᵀ (in, tokens) · dy (tokens, out).
    gemm(CUBLAS_OP_N, CUBLAS_OP_T, in_features, out_features, tokens, x, in_features, dy,
         out_features, 1.0f, dweight, in_features);
  }
  if (dbias != nullptr) {
    const dim3 grid(blocks_for(out_features, kBiasColumns),
                    blocks_for(tokens, int(kBiasTokensPerBlock)));
    CF_CHECK_LE(grid.y, 65535u) << "tokens " << tokens;
    bias_grad_kernel<<<grid, dim3(kBiasColumns, kBiasRows), 0, current_stream()>>>(
        dbias, dy, tokens, out_features);
    CUDA_CHECK_LAUNCH();
  }
}

}  // namespace cf::cuda

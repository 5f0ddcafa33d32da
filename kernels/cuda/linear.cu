// Linear layer on the GPU with cuBLAS (fp32 compute, pedantic math: no TF32), plus small kernels
// for the bias. Mirrors kernels/cpu/linear.cc. cuBLAS is column-major: a row-major (r, c) array
// is the column-major (c, r) array, so each product below is written for the transposes.
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

// dbias (out) += Σ_t dy[t, :], one thread per column.
__global__ void bias_grad_kernel(float* dbias, const float* dy, int64_t tokens, int64_t out) {
  const int64_t o = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (o >= out) return;
  float sum = 0.0f;
  for (int64_t t = 0; t < tokens; ++t) sum += dy[t * out + o];
  dbias[o] += sum;
}

// C (m, n col-major, ldc) = alpha·op(A)·op(B) + beta·C in fp32.
void gemm(cublasOperation_t op_a, cublasOperation_t op_b, int64_t m, int64_t n, int64_t k,
          const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
          int64_t ldc) {
  for (int64_t dim : {m, n, k, lda, ldb, ldc}) CF_CHECK_LE(dim, int64_t(INT_MAX));
  const float alpha = 1.0f;
  CUBLAS_CHECK(cublasGemmEx(cublas_handle(), op_a, op_b, int(m), int(n), int(k), &alpha, a,
                            CUDA_R_32F, int(lda), b, CUDA_R_32F, int(ldb), &beta, c, CUDA_R_32F,
                            int(ldc), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
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
    bias_grad_kernel<<<blocks_for(out_features, kThreads), kThreads, 0, current_stream()>>>(
        dbias, dy, tokens, out_features);
    CUDA_CHECK_LAUNCH();
  }
}

}  // namespace cf::cuda

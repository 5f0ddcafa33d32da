// CUDA_CHECK / CUBLAS_CHECK / CUDA_CHECK_LAUNCH: abort through CF_CHECK printing the call,
// file:line and the error string; plus the per-thread stream and cuBLAS handle the kernels
// launch on. Not a device allocator and not stream management beyond "the current stream".
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "core/check.h"

#define CUDA_CHECK(call)                                                                     \
  do {                                                                                       \
    const cudaError_t cf_cuda_err_ = (call);                                                 \
    CF_CHECK(cf_cuda_err_ == cudaSuccess) << #call << ": " << cudaGetErrorName(cf_cuda_err_) \
                                          << ": " << cudaGetErrorString(cf_cuda_err_);       \
  } while (0)

#define CUBLAS_CHECK(call)                                                 \
  do {                                                                     \
    const cublasStatus_t cf_cublas_status_ = (call);                       \
    CF_CHECK(cf_cublas_status_ == CUBLAS_STATUS_SUCCESS)                   \
        << #call << ": " << cublasGetStatusName(cf_cublas_status_) << ": " \
        << cublasGetStatusString(cf_cublas_status_);                       \
  } while (0)

// After every kernel launch: reports launch-configuration errors at the launch site.
#define CUDA_CHECK_LAUNCH() CUDA_CHECK(cudaGetLastError())

namespace cf::cuda {

// The stream every cf::cuda kernel of the calling thread launches on (default: the legacy
// default stream 0). Pipeline stages running as threads each set their own.
void set_stream(cudaStream_t stream);
cudaStream_t current_stream();

// The calling thread's cuBLAS handle, bound to current_stream(): the one set_cublas_handle
// gave (a stream's own, so threads that come and go need not create one each), else one the
// thread creates on first use with CUBLAS_PEDANTIC_MATH. The GEMMs of linear.cu set its math
// mode on every call from current_math() (pedantic for kFp32, so fp32 GEMMs never use TF32 or
// reduced-precision emulation).
cublasHandle_t cublas_handle();
void set_cublas_handle(cublasHandle_t handle);  // null: the thread's own

// How the kernels of the calling thread compute (thread-local, like the stream; default kFp32).
//   kFp32: exact fp32 — cuBLAS pinned to plain fp32 (no TF32), attention on CUDA cores; the
//          mode of the exact tests and the gradient contract.
//   kBf16: tensor cores — GEMM and attention operands rounded to bf16, products accumulated in
//          fp32 (the precision of bf16 mixed-precision training); storage stays fp32.
enum class Math { kFp32, kBf16 };
void set_math(Math math);
Math current_math();
const char* to_string(Math math);

// Empty when a CUDA device is usable; otherwise why not ("no CUDA device: cudaGetDeviceCount
// returned cudaErrorNoDevice (no CUDA-capable device is detected)").
std::string no_device_reason();

// Blocks of `threads` threads covering n work items.
inline unsigned int blocks_for(int64_t n, int threads) {
  CF_CHECK_GE(n, 0);
  const int64_t blocks = (n + threads - 1) / threads;
  CF_CHECK_LE(blocks, int64_t(0x7fffffff)) << "grid too large";
  return static_cast<unsigned int>(blocks);
}

}  // namespace cf::cuda

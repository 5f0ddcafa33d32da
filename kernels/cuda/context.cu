// The per-thread current stream and cuBLAS handle of the CUDA kernels (cuda_check.h).
#include "kernels/cuda/cuda_check.h"

namespace cf::cuda {
namespace {

thread_local cudaStream_t g_stream = nullptr;

struct HandleHolder {
  cublasHandle_t handle = nullptr;
  ~HandleHolder() {
    if (handle != nullptr) cublasDestroy(handle);  // at thread exit; errors are moot then
  }
};
thread_local HandleHolder g_handle;

}  // namespace

void set_stream(cudaStream_t stream) { g_stream = stream; }
cudaStream_t current_stream() { return g_stream; }

cublasHandle_t cublas_handle() {
  if (g_handle.handle == nullptr) {
    CUBLAS_CHECK(cublasCreate(&g_handle.handle));
    CUBLAS_CHECK(cublasSetMathMode(g_handle.handle, CUBLAS_PEDANTIC_MATH));
  }
  CUBLAS_CHECK(cublasSetStream(g_handle.handle, g_stream));
  return g_handle.handle;
}

}  // namespace cf::cuda

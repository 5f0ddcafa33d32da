// The per-thread current stream, math mode and cuBLAS handle of the CUDA kernels, and the
// device check (cuda_check.h).
#include "kernels/cuda/cuda_check.h"

namespace cf::cuda {
namespace {

thread_local cudaStream_t g_stream = nullptr;
thread_local Math g_math = Math::kFp32;

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

void set_math(Math math) { g_math = math; }
Math current_math() { return g_math; }
const char* to_string(Math math) { return math == Math::kBf16 ? "bf16" : "fp32"; }

std::string no_device_reason() {
  int devices = 0;
  const cudaError_t status = cudaGetDeviceCount(&devices);
  if (status == cudaSuccess && devices > 0) return "";
  std::string reason = "no CUDA device: cudaGetDeviceCount returned ";
  reason += cudaGetErrorName(status);
  reason += " (";
  reason += cudaGetErrorString(status);
  reason += "), " + std::to_string(devices) + " devices";
  return reason;
}

thread_local cublasHandle_t g_set_handle = nullptr;

void set_cublas_handle(cublasHandle_t handle) { g_set_handle = handle; }

cublasHandle_t cublas_handle() {
  if (g_set_handle != nullptr) {
    CUBLAS_CHECK(cublasSetStream(g_set_handle, g_stream));
    return g_set_handle;
  }
  if (g_handle.handle == nullptr) {
    CUBLAS_CHECK(cublasCreate(&g_handle.handle));
    CUBLAS_CHECK(cublasSetMathMode(g_handle.handle, CUBLAS_PEDANTIC_MATH));
  }
  CUBLAS_CHECK(cublasSetStream(g_handle.handle, g_stream));
  return g_handle.handle;
}

}  // namespace cf::cuda

// Helpers of the CUDA kernel tests: a device array copied to and from host vectors, and a
// fixture that skips (with the reason) when no CUDA device is present. Not a device allocator
// for the executor.
#pragma once

#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

#include "kernels/cuda/cuda_check.h"
#include "tests/kernels/kernel_test_util.h"

namespace cf::test {

template <typename T>
class DeviceArray {
 public:
  explicit DeviceArray(const std::vector<T>& host) : size_(host.size()) {
    CUDA_CHECK(cudaMalloc(&data_, std::max<size_t>(bytes(), 1)));  // distinct even when empty
    CUDA_CHECK(cudaMemcpy(data_, host.data(), bytes(), cudaMemcpyHostToDevice));
  }
  ~DeviceArray() { cudaFree(data_); }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;

  T* get() { return data_; }
  const T* get() const { return data_; }
  std::vector<T> ToHost() const {
    std::vector<T> host(size_);
    CUDA_CHECK(cudaDeviceSynchronize());
    CUDA_CHECK(cudaMemcpy(host.data(), data_, bytes(), cudaMemcpyDeviceToHost));
    return host;
  }

 private:
  size_t bytes() const { return size_ * sizeof(T); }
  T* data_ = nullptr;
  size_t size_ = 0;
};

class CudaKernelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    int devices = 0;
    const cudaError_t status = cudaGetDeviceCount(&devices);
    if (status != cudaSuccess || devices == 0) {
      GTEST_SKIP() << "no CUDA device: cudaGetDeviceCount returned " << cudaGetErrorName(status)
                   << " (" << cudaGetErrorString(status) << "), " << devices << " devices";
    }
  }
};

// GPU against CPU: two fp32 implementations, each within `tol` of float64, differ by at most
// twice `tol` (the CPU side uses ≤ 35% of it, see kernel_test_util.h).
inline Tolerance Twice(Tolerance tol) { return {2.0 * tol.atol, 2.0 * tol.rtol}; }

}  // namespace cf::test

// Helpers of the CUDA kernel tests: a device array copied to and from host vectors, a fixture
// that skips (with the reason) when no CUDA device is present, a scope for the math mode and
// the bf16 tolerances. Not a device allocator for the executor.
#pragma once

#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
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

// Sets the calling thread's math mode for one scope and restores the previous one.
class MathScope {
 public:
  explicit MathScope(cuda::Math math) : previous_(cuda::current_math()) { cuda::set_math(math); }
  ~MathScope() { cuda::set_math(previous_); }
  MathScope(const MathScope&) = delete;
  MathScope& operator=(const MathScope&) = delete;

 private:
  cuda::Math previous_;
};

// GPU against CPU: two fp32 implementations, each within `tol` of float64, differ by at most
// twice `tol` (the CPU side uses ≤ 35% of it, see kernel_test_util.h).
inline Tolerance Twice(Tolerance tol) { return {2.0 * tol.atol, 2.0 * tol.rtol}; }

// Math::kBf16 results against the fp32 CPU reference, inputs ~N(0, 1). bf16 keeps 8
// significant bits: unit roundoff u = 2^-8 ≈ 0.0039. Rounding an operand to nearest leaves a
// relative error roughly uniform in ±u (std u/√3); a product of two rounded operands, std
// √(2/3)·u ≈ 0.82u. The products are exact in fp32 and accumulate in fp32, whose own error
// (~2^-24 per add) is negligible beside these.
inline constexpr double kBf16Roundoff = 1.0 / 256;

// A length-k dot product of rounded N(0, 1) operands: the k product errors are independent, so
// the result's error is ~N(0, (2/3)·u²·Σ t²) over its terms t = x·w, i.e. ~N(0, (2/3)·u²·k)
// whatever the result's size (it grows as √k, not k); 5u·√k is 6σ. For short dot products
// the terms' heavy tail shows: one product of two N(0, 1) values reaches ~10 in 10^4 draws,
// with an error up to 2u·|t|, hence 16u more. rtol u leaves room for large results. An
// indexing error is O(√k): 50× more than 5u·√k.
inline Tolerance Bf16DotTol(int64_t k) {
  return {kBf16Roundoff * (5.0 * std::sqrt(double(k)) + 16.0), kBf16Roundoff};
}

// Attention in kBf16. A score s = q·k/√d is a length-d dot product scaled by 1/√d: error std
// 0.82u. Each P_j takes that as a relative error plus its own rounding for P·V (u/√3), each
// v_j its rounding (u/√3); with Σ_j P_j = 1 the output error has std
// ≤ u·√(Σ_j P_j²·((v_j − o)² + v_j²/3)) ≈ 1.5u in the worst case, one dominant key (Σ P² = 1):
// atol 10u ≈ 6.5σ. lse = log Σ e^s moves by Σ_j P_j·Δs_j, std ≤ 0.82u: atol 5u. The backward
// chains further rounded products (dP = dO·Vᵀ; then Pᵀ·dO, dS·K, dSᵀ·Q with P and dS rounded
// again), ~2u per gradient element where a key is seen by a few short rows (Σ_i P_ij² ~ 1.6):
// atol 16u. rtol 2u for the rare large elements. Indexing or masking errors are O(0.1–1).
inline constexpr Tolerance kBf16AttentionOutTol{10 * kBf16Roundoff, 2 * kBf16Roundoff};
inline constexpr Tolerance kBf16AttentionLseTol{5 * kBf16Roundoff, kBf16Roundoff};
inline constexpr Tolerance kBf16AttentionGradTol{16 * kBf16Roundoff, 2 * kBf16Roundoff};

// x rounded to the nearest bf16 (ties to even), as the tensor-core paths round their operands;
// inputs made of such values make those paths' products exact.
inline float RoundToBf16(float x) {
  uint32_t bits;
  std::memcpy(&bits, &x, sizeof(bits));
  bits += 0x7fffu + ((bits >> 16) & 1u);  // finite inputs only
  bits &= 0xffff0000u;
  std::memcpy(&x, &bits, sizeof(bits));
  return x;
}
inline std::vector<float> RoundToBf16(std::vector<float> values) {
  for (float& x : values) x = RoundToBf16(x);
  return values;
}

}  // namespace cf::test

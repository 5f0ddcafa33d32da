// The CUDA backend: device memory and kernels/cuda, every call enqueued on the stream's own
// cudaStream_t (one per pipeline stage, non-blocking), with the math mode of the backend
// (kernels/cuda/cuda_check.h: fp32 exact, or bf16 tensor cores with fp32 accumulation). The
// mirror of cpu_backend.h, call for call. Device buffers come from the device's stream-ordered
// pool (cudaMallocAsync, kept rather than given back between steps, as a caching allocator
// does) and are counted here as well as by the stages' trackers, so the device's peak can be
// held against the pool's and cudaMemGetInfo's. Built only with CHUNKFLOW_HAVE_CUDA. Not a
// transport (staged_transport.h, cuda_transport.h).
#pragma once

#include <cuda_runtime.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "core/status.h"
#include "executor/backend.h"
#include "kernels/cuda/cuda_check.h"

namespace cf {

class CudaBackend final : public Backend {
 public:
  // Device `device` of this process, computing in `math`. Runtime when no device is usable
  // (the message starts "no CUDA device") or `device` does not exist.
  static StatusOr<std::unique_ptr<CudaBackend>> open(int device, cuda::Math math);
  ~CudaBackend() override;

  const char* name() const override { return "cuda"; }
  bool device_storage() const override { return true; }
  std::unique_ptr<Stream> create_stream() override;

  int device() const { return device_; }
  cuda::Math math() const { return math_; }
  const std::string& device_name() const { return device_name_; }
  // Makes the calling thread's CUDA calls go to this backend's device (each stage thread calls
  // it before its first CUDA call; create_stream does).
  void bind_thread() const override;
  std::string description() const override;
  // Waits for all work on the device, then reads the three views of its memory.
  std::optional<DeviceMemoryReport> device_memory() const override;
  // Restarts the executor's and the pool's peaks from what is live now.
  void reset_device_peaks() override;

  // The allocator's bookkeeping (Allocator calls from any stream's thread).
  void charge(int64_t bytes);
  int64_t live_bytes() const { return live_.load(); }
  void discharge(int64_t bytes);

 private:
  CudaBackend(int device, cuda::Math math);
  int device_;
  cuda::Math math_;
  std::string device_name_;
  cudaMemPool_t pool_ = nullptr;
  int64_t driver_used_at_open_ = 0;
  std::atomic<int64_t> live_{0};
  std::atomic<int64_t> peak_{0};
};

// The stream's native handle, for a device-aware transport; null for a stream of another
// backend.
cudaStream_t native_cuda_stream(Stream* stream);

}  // namespace cf

// The CUDA backend (cuda_backend.h): each Stream call is the kernels/cuda launcher of the same
// name, or the CUDA runtime call that does what cpu_backend.cc's std algorithm does, enqueued
// on the stream with its math mode and cuBLAS handle. Read beside cpu_backend.cc.
#include "executor/cuda_backend.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdint>

#include "core/check.h"
#include "kernels/cuda/kernels.h"

namespace cf {
namespace {

// Stream-ordered device storage of one stream: allocated and zeroed in the stream's order,
// freed in it, counted by the backend.
class CudaAllocator final : public Allocator {
 public:
  CudaAllocator(CudaBackend* backend, cudaStream_t stream) : backend_(backend), stream_(stream) {}
  void* allocate(int64_t bytes) override {
    if (bytes == 0) return nullptr;
    void* storage = nullptr;
    const cudaError_t status = cudaMallocAsync(&storage, size_t(bytes), stream_);
    if (status == cudaErrorMemoryAllocation) {
      size_t free = 0, total = 0;
      cudaMemGetInfo(&free, &total);
      CF_CHECK(false) << fmt::format(
          "device {}: out of memory allocating {:.1f} MiB ({:.1f} MiB free of {:.1f} MiB; the "
          "executor holds {:.1f} MiB)",
          backend_->device(), bytes / 1048576.0, free / 1048576.0, total / 1048576.0,
          backend_->live_bytes() / 1048576.0);
    }
    CUDA_CHECK(status);
    CUDA_CHECK(cudaMemsetAsync(storage, 0, size_t(bytes), stream_));
    backend_->charge(bytes);
    return storage;
  }
  void deallocate(void* storage, int64_t bytes) override {
    if (storage == nullptr) return;
    CUDA_CHECK(cudaFreeAsync(storage, stream_));
    backend_->discharge(bytes);
  }

 private:
  CudaBackend* backend_;
  cudaStream_t stream_;
};

class CudaStream final : public Stream {
 public:
  CudaStream(CudaBackend* backend, cuda::Math math) : math_(math) {
    backend->bind_thread();
    CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    CUBLAS_CHECK(cublasCreate(&cublas_));
    CUBLAS_CHECK(cublasSetStream(cublas_, stream_));
    CUBLAS_CHECK(cublasSetMathMode(cublas_, CUBLAS_PEDANTIC_MATH));  // launchers set theirs
    allocator_ = std::make_unique<CudaAllocator>(backend, stream_);
  }
  ~CudaStream() override {
    // Buffers of this stream are gone (their owners are destroyed first): finish its work.
    cudaStreamSynchronize(stream_);
    cublasDestroy(cublas_);
    cudaStreamDestroy(stream_);
  }
  CudaStream(const CudaStream&) = delete;
  CudaStream& operator=(const CudaStream&) = delete;

  cudaStream_t native() const { return stream_; }

  Allocator* allocator() override { return allocator_.get(); }
  void synchronize() override { CUDA_CHECK(cudaStreamSynchronize(stream_)); }

  void copy_to_host(float* host, const float* src, int64_t n) override {
    CF_CHECK_GE(n, 0);
    if (n == 0) return;
    CUDA_CHECK(cudaMemcpyAsync(host, src, bytes(n), cudaMemcpyDeviceToHost, stream_));
    synchronize();
  }
  void copy_from_host(float* dst, const float* host, int64_t n) override {
    CF_CHECK_GE(n, 0);
    if (n == 0) return;
    CUDA_CHECK(cudaMemcpyAsync(dst, host, bytes(n), cudaMemcpyHostToDevice, stream_));
    synchronize();  // `host` is free for reuse when this returns
  }
  void copy(float* dst, const float* src, int64_t n) override {
    CF_CHECK_GE(n, 0);
    if (n == 0 || dst == src) return;
    CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes(n), cudaMemcpyDeviceToDevice, stream_));
  }
  void fill(float* dst, float value, int64_t n) override {
    CF_CHECK_GE(n, 0);
    if (n == 0) return;
    if (value == 0.0f) {
      CUDA_CHECK(cudaMemsetAsync(dst, 0, bytes(n), stream_));  // +0.0f is all zero bits
      return;
    }
    on_stream();
    cuda::fill(dst, value, n);
  }
  void residual_add(float* y, const float* x, int64_t n) override {
    on_stream();
    cuda::residual_add(y, x, n);
  }

  void embedding_forward(float* out, const int32_t* ids, const float* table, int64_t tokens,
                         int64_t vocab, int64_t hidden) override {
    const DeviceInts d_ids(this, ids, tokens);
    cuda::embedding_forward(out, d_ids.get(), table, tokens, vocab, hidden);
  }
  void embedding_backward(float* dtable, const float* dout, const int32_t* ids, int64_t tokens,
                          int64_t vocab, int64_t hidden) override {
    const DeviceInts d_ids(this, ids, tokens);
    cuda::embedding_backward(dtable, dout, d_ids.get(), tokens, vocab, hidden);
  }
  void rmsnorm_forward(float* out, float* rstd, const float* x, const float* weight, int64_t tokens,
                       int64_t hidden, float eps) override {
    on_stream();
    cuda::rmsnorm_forward(out, rstd, x, weight, tokens, hidden, eps);
  }
  void rmsnorm_backward(float* dx, float* dweight, const float* dout, const float* x,
                        const float* weight, const float* rstd, int64_t tokens,
                        int64_t hidden) override {
    on_stream();
    cuda::rmsnorm_backward(dx, dweight, dout, x, weight, rstd, tokens, hidden);
  }
  void rope_forward(float* out, const float* x, const int32_t* positions, int64_t tokens,
                    int64_t heads, int64_t head_dim, double theta) override {
    const DeviceInts d_positions(this, positions, tokens);
    cuda::rope_forward(out, x, d_positions.get(), tokens, heads, head_dim, theta);
  }
  void rope_backward(float* dx, const float* dout, const int32_t* positions, int64_t tokens,
                     int64_t heads, int64_t head_dim, double theta) override {
    const DeviceInts d_positions(this, positions, tokens);
    cuda::rope_backward(dx, dout, d_positions.get(), tokens, heads, head_dim, theta);
  }
  void attention_forward(float* out, float* lse, const float* q, const float* k, const float* v,
                         const AttentionSegment* segments, int64_t num_segments,
                         const AttentionShape& shape) override {
    on_stream();  // the launcher stages the host segment table itself
    cuda::attention_forward(out, lse, q, k, v, segments, num_segments, shape);
  }
  void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* q,
                          const float* k, const float* v, const float* out, const float* lse,
                          const AttentionSegment* segments, int64_t num_segments,
                          const AttentionShape& shape) override {
    on_stream();
    cuda::attention_backward(dq, dk, dv, dout, q, k, v, out, lse, segments, num_segments, shape);
  }
  void swiglu_forward(float* out, const float* gate, const float* up, int64_t n) override {
    on_stream();
    cuda::swiglu_forward(out, gate, up, n);
  }
  void swiglu_backward(float* dgate, float* dup, const float* dout, const float* gate,
                       const float* up, int64_t n) override {
    on_stream();
    cuda::swiglu_backward(dgate, dup, dout, gate, up, n);
  }
  void linear_forward(float* y, const float* x, const float* weight, const float* bias,
                      int64_t tokens, int64_t in_features, int64_t out_features) override {
    on_stream();
    cuda::linear_forward(y, x, weight, bias, tokens, in_features, out_features);
  }
  void linear_backward(float* dx, float* dweight, float* dbias, const float* dy, const float* x,
                       const float* weight, int64_t tokens, int64_t in_features,
                       int64_t out_features) override {
    on_stream();
    cuda::linear_backward(dx, dweight, dbias, dy, x, weight, tokens, in_features, out_features);
  }
  void cross_entropy_forward(float* losses, float* lse, const float* logits, const int32_t* targets,
                             int64_t tokens, int64_t vocab, float loss_scale) override {
    const DeviceInts d_targets(this, targets, tokens);
    cuda::cross_entropy_forward(losses, lse, logits, d_targets.get(), tokens, vocab, loss_scale);
  }
  void cross_entropy_backward(float* dlogits, const float* logits, const float* lse,
                              const int32_t* targets, int64_t tokens, int64_t vocab,
                              float loss_scale) override {
    const DeviceInts d_targets(this, targets, tokens);
    cuda::cross_entropy_backward(dlogits, logits, lse, d_targets.get(), tokens, vocab, loss_scale);
  }
  void adamw_step(float* params, float* m, float* v, const float* grads, int64_t n,
                  const AdamWHyper& hyper, int64_t step) override {
    on_stream();
    cuda::adamw_step(params, m, v, grads, n, hyper, step);
  }

 private:
  // A chunk's host index array (ids, positions, targets) on the device for one launch, in
  // stream order: the backend seam keeps them on the host (backend.h), 12 B/token, uncounted.
  // The copy is from pageable memory, so the host array may change once the call returns.
  class DeviceInts {
   public:
    DeviceInts(CudaStream* s, const int32_t* host, int64_t n) : stream_(s->stream_) {
      s->on_stream();
      const size_t size = size_t(std::max<int64_t>(n, 1)) * sizeof(int32_t);
      CUDA_CHECK(cudaMallocAsync(&data_, size, stream_));
      if (n > 0) {
        CUDA_CHECK(cudaMemcpyAsync(data_, host, size_t(n) * sizeof(int32_t), cudaMemcpyHostToDevice,
                                   stream_));
      }
    }
    ~DeviceInts() { CUDA_CHECK(cudaFreeAsync(data_, stream_)); }
    DeviceInts(const DeviceInts&) = delete;
    DeviceInts& operator=(const DeviceInts&) = delete;
    const int32_t* get() const { return data_; }

   private:
    cudaStream_t stream_;
    int32_t* data_ = nullptr;
  };

  static size_t bytes(int64_t n) { return size_t(n) * sizeof(float); }
  // The kernels/cuda launchers read the thread's stream, math mode and handle: this stream's.
  void on_stream() {
    cuda::set_stream(stream_);
    cuda::set_math(math_);
    cuda::set_cublas_handle(cublas_);
  }

  cuda::Math math_;
  cudaStream_t stream_ = nullptr;
  cublasHandle_t cublas_ = nullptr;
  std::unique_ptr<CudaAllocator> allocator_;
};

int64_t used_bytes() {
  size_t free = 0, total = 0;
  CUDA_CHECK(cudaMemGetInfo(&free, &total));
  return int64_t(total - free);
}

}  // namespace

StatusOr<std::unique_ptr<CudaBackend>> CudaBackend::open(int device, cuda::Math math) {
  const std::string reason = cuda::no_device_reason();
  if (!reason.empty()) return Status::Runtime(reason);
  int devices = 0;
  CUDA_CHECK(cudaGetDeviceCount(&devices));
  if (device < 0 || device >= devices) {
    return Status::Runtime(fmt::format("no CUDA device {}: this process sees {} device{}", device,
                                       devices, devices == 1 ? "" : "s"));
  }
  return std::unique_ptr<CudaBackend>(new CudaBackend(device, math));
}

CudaBackend::CudaBackend(int device, cuda::Math math) : device_(device), math_(math) {
  bind_thread();
  CUDA_CHECK(cudaFree(nullptr));  // creates the context now, so it is in the baseline below
  cudaDeviceProp prop{};
  CUDA_CHECK(cudaGetDeviceProperties(&prop, device_));
  device_name_ = prop.name;
  CUDA_CHECK(cudaDeviceGetDefaultMemPool(&pool_, device_));
  // Keep freed memory in the pool between steps (a caching allocator's behaviour): without it
  // the pool gives memory back at every synchronisation and maps it again.
  uint64_t keep = UINT64_MAX;
  CUDA_CHECK(cudaMemPoolSetAttribute(pool_, cudaMemPoolAttrReleaseThreshold, &keep));
  CUDA_CHECK(cudaMemPoolTrimTo(pool_, 0));
  driver_used_at_open_ = used_bytes();
  reset_device_peaks();
}

CudaBackend::~CudaBackend() {
  bind_thread();
  cudaDeviceSynchronize();
  cudaMemPoolTrimTo(pool_, 0);  // what the pool kept goes back to the driver
}

void CudaBackend::bind_thread() const { CUDA_CHECK(cudaSetDevice(device_)); }

std::unique_ptr<Stream> CudaBackend::create_stream() {
  return std::make_unique<CudaStream>(this, math_);
}

void CudaBackend::charge(int64_t bytes) {
  const int64_t live = live_.fetch_add(bytes) + bytes;
  int64_t peak = peak_.load();
  while (live > peak && !peak_.compare_exchange_weak(peak, live)) {
  }
}

void CudaBackend::discharge(int64_t bytes) { live_.fetch_sub(bytes); }

void CudaBackend::reset_device_peaks() {
  peak_.store(live_.load());
  uint64_t zero = 0;
  CUDA_CHECK(cudaMemPoolSetAttribute(pool_, cudaMemPoolAttrUsedMemHigh, &zero));
}

std::string CudaBackend::description() const {
  return fmt::format("cuda ({}, device {}, {})", device_name_, device_, cuda::to_string(math_));
}

std::optional<DeviceMemoryReport> CudaBackend::device_memory() const {
  bind_thread();
  CUDA_CHECK(cudaDeviceSynchronize());
  DeviceMemoryReport r;
  r.executor_peak = peak_.load();
  uint64_t used_high = 0;
  CUDA_CHECK(cudaMemPoolGetAttribute(pool_, cudaMemPoolAttrUsedMemHigh, &used_high));
  r.pool_used_peak = int64_t(used_high);
  size_t free = 0, total = 0;
  CUDA_CHECK(cudaMemGetInfo(&free, &total));
  r.driver_used = int64_t(total - free);
  r.driver_used_at_open = driver_used_at_open_;
  r.device_total = int64_t(total);
  return r;
}

cudaStream_t native_cuda_stream(Stream* stream) {
  auto* cuda = dynamic_cast<CudaStream*>(stream);
  return cuda == nullptr ? nullptr : cuda->native();
}

}  // namespace cf

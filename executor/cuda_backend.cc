// The CUDA backend (cuda_backend.h): each Stream call is the kernels/cuda launcher of the same
// name, or the CUDA runtime call that does what cpu_backend.cc's std algorithm does, enqueued
// on the stream with its math mode and cuBLAS handle. Read beside cpu_backend.cc.
#include "executor/cuda_backend.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <mutex>
#include <utility>
#include <vector>

#include "core/check.h"
#include "kernels/cuda/kernels.h"

namespace cf {
namespace {

// Stream-ordered device storage of one stream: allocated and zeroed in the stream's order,
// freed in it, counted by the backend. Storage that a copy on the stream's copy queue still
// reads or writes is guarded: freeing it makes the stream wait for that copy first, so the
// pool does not hand the memory to later work before the copy is done (what a caching
// allocator's record_stream does for a tensor used on a side stream).
class CudaAllocator final : public Allocator {
 public:
  CudaAllocator(CudaBackend* backend, cudaStream_t stream) : backend_(backend), stream_(stream) {}
  // Storage from `storage` on (inside one buffer) is used by the copy that `done` follows.
  void guard(const void* storage, cudaEvent_t done) {
    const auto begin = reinterpret_cast<uintptr_t>(storage);
    guards_.emplace(begin, done);
  }
  // The stream's later work waits for every guarded copy already (wait_copies).
  void clear_guards() { guards_.clear(); }
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
    // A copy's range lies inside one buffer: the guards that start inside this one.
    const auto begin = reinterpret_cast<uintptr_t>(storage);
    const auto first = guards_.lower_bound(begin), last = guards_.lower_bound(begin + bytes);
    for (auto it = first; it != last; ++it) CUDA_CHECK(cudaStreamWaitEvent(stream_, it->second, 0));
    guards_.erase(first, last);
    CUDA_CHECK(cudaFreeAsync(storage, stream_));
    backend_->discharge(bytes);
  }

 private:
  CudaBackend* backend_;
  cudaStream_t stream_;
  std::multimap<uintptr_t, cudaEvent_t> guards_;  // start of the range → the copy's end event
};

// Pinned (page-locked) host memory for a stream's K/V offload pool: what lets a copy run
// asynchronously beside the kernels at the host link's speed. cudaHostAlloc is slow (it maps
// the pages for the device), so freed blocks are kept and handed out again, as a caching host
// allocator does; they go back at the stream's end. Requests are rounded up to a size class
// (host_block_size, memory.h), so that pieces of every length a batch brings reuse a bounded
// set of blocks step after step. Every use of the pool's storage is a copy on the stream's
// copy queue, in order, so a block freed while a copy still uses it is safe to hand out again:
// its next copy comes after. Not zero-filled (backend.h). A stage synchronises both queues at
// the end of each op, so an op's time holds its copies too (as sim/offload_cost.h prices it:
// the longer of its compute and its copies).
class PinnedPool final : public Allocator {
 public:
  ~PinnedPool() override {
    for (const auto& [bytes, storage] : free_) cudaFreeHost(storage);
  }
  void* allocate(int64_t requested) override {
    CF_CHECK_GE(requested, 0);
    if (requested == 0) return nullptr;
    const int64_t bytes = host_block_size(requested);
    const std::lock_guard<std::mutex> lock(mutex_);
    if (auto it = free_.find(bytes); it != free_.end()) {
      void* storage = it->second;
      free_.erase(it);
      return storage;
    }
    void* storage = nullptr;
    const cudaError_t status = cudaHostAlloc(&storage, size_t(bytes), cudaHostAllocPortable);
    CF_CHECK(status == cudaSuccess) << fmt::format(
        "out of pinned host memory allocating {:.1f} MiB for the K/V offload pool ({})",
        bytes / 1048576.0, cudaGetErrorString(status));
    return storage;
  }
  void deallocate(void* storage, int64_t requested) override {
    if (storage == nullptr) return;
    const std::lock_guard<std::mutex> lock(mutex_);
    free_.emplace(host_block_size(requested), storage);
  }

 private:
  std::mutex mutex_;
  std::multimap<int64_t, void*> free_;  // kept blocks by size class
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
    if (copy_ != nullptr) {
      cudaStreamSynchronize(copy_);
      for (const auto& [start, end] : timed_copies_) cudaEventDestroy(start), cudaEventDestroy(end);
      cudaStreamDestroy(copy_);
    }
    cublasDestroy(cublas_);
    cudaStreamDestroy(stream_);
  }
  CudaStream(const CudaStream&) = delete;
  CudaStream& operator=(const CudaStream&) = delete;

  cudaStream_t native() const { return stream_; }

  Allocator* allocator() override { return allocator_.get(); }
  void synchronize() override {
    CUDA_CHECK(cudaStreamSynchronize(stream_));
    if (copy_ != nullptr) {
      CUDA_CHECK(cudaStreamSynchronize(copy_));
      allocator_->clear_guards();
    }
  }

  // K/V offload: pinned host memory, and copies on a second non-blocking stream that waits for
  // this one's work issued before each copy (an event) and is waited for by wait_copies.
  Allocator* host_pool() override { return &pinned_; }
  void offload(float* host, const float* src, int64_t n) override {
    CF_CHECK_GE(n, 0);
    if (n == 0) return;
    const cudaEvent_t done = queue_copy(host, src, n, cudaMemcpyDeviceToHost);
    allocator_->guard(src, done);  // src is read until `done`
  }
  void fetch(float* dst, const float* host, int64_t n) override {
    CF_CHECK_GE(n, 0);
    if (n == 0) return;
    const cudaEvent_t done = queue_copy(dst, host, n, cudaMemcpyHostToDevice);
    allocator_->guard(dst, done);  // dst is written until `done`
  }
  void wait_copies() override {
    if (copy_ == nullptr) return;
    cudaEvent_t queued = nullptr;
    CUDA_CHECK(cudaEventCreateWithFlags(&queued, cudaEventDisableTiming));
    CUDA_CHECK(cudaEventRecord(queued, copy_));
    CUDA_CHECK(cudaStreamWaitEvent(stream_, queued, 0));
    CUDA_CHECK(cudaEventDestroy(queued));  // released once the wait has passed it
    allocator_->clear_guards();
  }
  double take_copy_seconds() override {
    if (copy_ == nullptr) return 0;
    CUDA_CHECK(cudaStreamSynchronize(copy_));
    allocator_->clear_guards();
    double seconds = 0;
    for (const auto& [start, end] : timed_copies_) {
      float ms = 0;
      CUDA_CHECK(cudaEventElapsedTime(&ms, start, end));
      seconds += double(ms) * 1e-3;
      CUDA_CHECK(cudaEventDestroy(start));
      CUDA_CHECK(cudaEventDestroy(end));
    }
    timed_copies_.clear();
    return seconds;
  }

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

  // Queues a copy of n floats on the copy queue after the work issued so far on this stream,
  // between two timing events; returns the one after the copy.
  cudaEvent_t queue_copy(float* dst, const float* src, int64_t n, cudaMemcpyKind kind) {
    if (copy_ == nullptr) {
      CUDA_CHECK(cudaStreamCreateWithFlags(&copy_, cudaStreamNonBlocking));
    }
    cudaEvent_t issued = nullptr, start = nullptr, end = nullptr;
    CUDA_CHECK(cudaEventCreateWithFlags(&issued, cudaEventDisableTiming));
    CUDA_CHECK(cudaEventRecord(issued, stream_));
    CUDA_CHECK(cudaStreamWaitEvent(copy_, issued, 0));
    CUDA_CHECK(cudaEventDestroy(issued));
    CUDA_CHECK(cudaEventCreate(&start));
    CUDA_CHECK(cudaEventCreate(&end));
    CUDA_CHECK(cudaEventRecord(start, copy_));
    CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes(n), kind, copy_));
    CUDA_CHECK(cudaEventRecord(end, copy_));
    timed_copies_.emplace_back(start, end);
    return end;
  }
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
  PinnedPool pinned_;            // the K/V offload pool
  cudaStream_t copy_ = nullptr;  // the copy queue, made by the first offload or fetch
  std::vector<std::pair<cudaEvent_t, cudaEvent_t>> timed_copies_;  // not yet taken
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

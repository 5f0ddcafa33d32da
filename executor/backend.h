// The executor's backend seam: the op code (layer.cc, head.cc, state_store.cc, params.cc,
// stage.cc, reference.cc) issues every kernel and every array operation on a Stream of a
// Backend, and takes every buffer's storage from that stream's allocator. Implemented by the
// CPU reference backend (cpu_backend.h) and the memory-only counting backend
// (counting_backend.h), and the CUDA backend (cuda_backend.h: device memory, a cudaStream_t
// and a cuBLAS handle per stream). Not the kernels (kernels/) nor transports.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "executor/memory.h"
#include "kernels/cpu/adamw.h"
#include "kernels/cpu/attention.h"

namespace cf {

// Storage, the contract every caller keeps: a float* of a Buffer is the backend's storage
// (host memory on the CPU backend, device memory on a GPU backend, null on the counting
// backend). Op code never dereferences it: it passes it to a Stream, offsets it only with
// storage_at, and reads values on the host only through Stream::copy_to_host.

// Element i of backend storage. Null storage (the counting backend's) stays null, so no offset
// is ever applied to a null pointer (undefined behaviour; -fsanitize=pointer-overflow aborts).
template <typename T>
T* storage_at(T* storage, int64_t i) {
  return storage == nullptr ? nullptr : storage + i;
}

// An ordered queue of one backend's work, owned by one StageWorker (one thread): calls run in
// issue order; the CPU backend runs each inline before returning. Shapes, accumulate-or-write
// and aliasing rules of every kernel are those of its CPU reference (kernels/cpu/*.h). Integer
// index arrays (ids, positions, targets: a chunk's ChunkInputs) and the segment table are host
// arrays, 12 B/token, uncounted (memory.h): a device backend stages them itself, as the CUDA
// attention launcher already does with its segment table.
class Stream {
 public:
  virtual ~Stream() = default;

  // Storage for this stream's buffers, zero-filled and ready for the work issued after it; a
  // device backend allocates and frees in stream order (as cudaMallocAsync / cudaFreeAsync).
  virtual Allocator* allocator() = 0;
  // Returns when every call issued so far has completed: before host code or a host transport
  // reads storage this stream wrote, or another stream uses it.
  virtual void synchronize() = 0;

  // Host ↔ storage copies of n floats. copy_to_host returns with the values on the host (it
  // waits for the stream's earlier work); copy_from_host returns with `host` free for reuse.
  virtual void copy_to_host(float* host, const float* src, int64_t n) = 0;
  virtual void copy_from_host(float* dst, const float* host, int64_t n) = 0;

  // K/V offload (state_store.h): a pool of host memory beside this stream's storage and a copy
  // queue of the stream's own between the two, each copy ordered after the work issued before
  // it, so the copies run beside the stream's later kernels. The pool's storage is not
  // zero-filled: every element is written by an offload before a fetch reads it. The CPU and
  // counting backends copy at once; the CUDA backend's pool is pinned host memory and its queue
  // a second cudaStream_t, ordered against this one by events.
  virtual Allocator* host_pool() = 0;
  // host (n) = src (n): queued now, after the work issued so far. src may be freed once this
  // returns: its storage is not reused before the copy has read it.
  virtual void offload(float* host, const float* src, int64_t n) = 0;
  // dst (n) = host (n): queued now, after the work issued so far. Work that reads dst must be
  // issued after wait_copies; dst may be freed before (it is not reused before the copy).
  virtual void fetch(float* dst, const float* host, int64_t n) = 0;
  // The work issued from now on waits for every copy queued so far.
  virtual void wait_copies() = 0;
  // Seconds the copy queue spent copying since the last call (it waits for the queue first).
  virtual double take_copy_seconds() = 0;

  // Array operations on storage of this backend.
  virtual void copy(float* dst, const float* src, int64_t n) = 0;      // dst (n) = src (n)
  virtual void fill(float* dst, float value, int64_t n) = 0;           // dst (n) = value
  virtual void residual_add(float* y, const float* x, int64_t n) = 0;  // y (n) += x (n)

  // The kernels, with the signatures of kernels/cpu (and kernels/cuda/kernels.h).
  virtual void embedding_forward(float* out, const int32_t* ids, const float* table, int64_t tokens,
                                 int64_t vocab, int64_t hidden) = 0;
  virtual void embedding_backward(float* dtable, const float* dout, const int32_t* ids,
                                  int64_t tokens, int64_t vocab, int64_t hidden) = 0;
  virtual void rmsnorm_forward(float* out, float* rstd, const float* x, const float* weight,
                               int64_t tokens, int64_t hidden, float eps) = 0;
  virtual void rmsnorm_backward(float* dx, float* dweight, const float* dout, const float* x,
                                const float* weight, const float* rstd, int64_t tokens,
                                int64_t hidden) = 0;
  virtual void rope_forward(float* out, const float* x, const int32_t* positions, int64_t tokens,
                            int64_t heads, int64_t head_dim, double theta) = 0;
  virtual void rope_backward(float* dx, const float* dout, const int32_t* positions, int64_t tokens,
                             int64_t heads, int64_t head_dim, double theta) = 0;
  virtual void attention_forward(float* out, float* lse, const float* q, const float* k,
                                 const float* v, const AttentionSegment* segments,
                                 int64_t num_segments, const AttentionShape& shape) = 0;
  virtual void attention_backward(float* dq, float* dk, float* dv, const float* dout,
                                  const float* q, const float* k, const float* v, const float* out,
                                  const float* lse, const AttentionSegment* segments,
                                  int64_t num_segments, const AttentionShape& shape) = 0;
  virtual void swiglu_forward(float* out, const float* gate, const float* up, int64_t n) = 0;
  virtual void swiglu_backward(float* dgate, float* dup, const float* dout, const float* gate,
                               const float* up, int64_t n) = 0;
  virtual void linear_forward(float* y, const float* x, const float* weight, const float* bias,
                              int64_t tokens, int64_t in_features, int64_t out_features) = 0;
  virtual void linear_backward(float* dx, float* dweight, float* dbias, const float* dy,
                               const float* x, const float* weight, int64_t tokens,
                               int64_t in_features, int64_t out_features) = 0;
  virtual void cross_entropy_forward(float* losses, float* lse, const float* logits,
                                     const int32_t* targets, int64_t tokens, int64_t vocab,
                                     float loss_scale) = 0;
  virtual void cross_entropy_backward(float* dlogits, const float* logits, const float* lse,
                                      const int32_t* targets, int64_t tokens, int64_t vocab,
                                      float loss_scale) = 0;
  virtual void adamw_step(float* params, float* m, float* v, const float* grads, int64_t n,
                          const AdamWHyper& hyper, int64_t step) = 0;
};

// A device's memory as three sources see it, bytes: the executor's own count, the device
// allocator's and the driver's (Backend::device_memory).
struct DeviceMemoryReport {
  int64_t executor_peak = 0;        // the highest sum of the executor's live buffers on the device
  int64_t pool_used_peak = 0;       // the allocator pool's high-water mark of memory in use
  int64_t driver_used = 0;          // the driver's used memory (total − free), now
  int64_t driver_used_at_open = 0;  // the same when the backend was opened (context, libraries)
  int64_t device_total = 0;
  // The device memory the run took, as the driver sees it.
  int64_t driver_delta() const { return driver_used - driver_used_at_open; }
};

// One kind of compute (one device): a factory of streams over its memory. Thread-safe; it must
// outlive its streams and the buffers they allocated.
class Backend {
 public:
  virtual ~Backend() = default;
  virtual const char* name() const = 0;  // "cpu", "counting", "cuda"
  virtual std::unique_ptr<Stream> create_stream() = 0;
  // Makes the calling thread's work go to this backend's device: a thread that uses a stream
  // calls it first (a device backend's current device is per thread). Nothing on the host.
  virtual void bind_thread() const {}
  // True when storage is device memory: the transports of host memory cannot read it.
  virtual bool device_storage() const { return false; }
  // What runs where, for reports: "cpu", "cuda (NVIDIA H100 80GB HBM3, device 0, bf16)".
  virtual std::string description() const { return name(); }
  // A device backend's memory (waits for the device's work first); none for host memory.
  virtual std::optional<DeviceMemoryReport> device_memory() const { return std::nullopt; }
  // Restarts the device memory peaks from what is live now.
  virtual void reset_device_peaks() {}
};

}  // namespace cf

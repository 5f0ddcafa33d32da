// The CPU backend (cpu_backend.h): each Stream call is the kernels/cpu function of the same
// name, or the std algorithm the executor's loops used, run at once.
#include "executor/cpu_backend.h"

#include <algorithm>
#include <chrono>
#include <utility>

#include "core/check.h"
#include "kernels/cpu/kernels.h"

namespace cf {
namespace {

class CpuStream final : public Stream {
 public:
  Allocator* allocator() override { return host_allocator(); }
  void synchronize() override {}  // every call has completed when it returns

  void copy_to_host(float* host, const float* src, int64_t n) override { copy(host, src, n); }
  void copy_from_host(float* dst, const float* host, int64_t n) override { copy(dst, host, n); }
  void copy(float* dst, const float* src, int64_t n) override {
    CF_CHECK_GE(n, 0);
    std::copy(src, src + n, dst);
  }
  void fill(float* dst, float value, int64_t n) override {
    CF_CHECK_GE(n, 0);
    std::fill(dst, dst + n, value);
  }

  // The host pool is host memory too: its copies run at once, timed.
  Allocator* host_pool() override { return poisoned_host_allocator(); }
  void offload(float* host, const float* src, int64_t n) override { timed_copy(host, src, n); }
  void fetch(float* dst, const float* host, int64_t n) override { timed_copy(dst, host, n); }
  void wait_copies() override {}
  double take_copy_seconds() override {
    return static_cast<double>(std::exchange(copy_ns_, 0)) * 1e-9;
  }
  void residual_add(float* y, const float* x, int64_t n) override { cpu::residual_add(y, x, n); }

  void embedding_forward(float* out, const int32_t* ids, const float* table, int64_t tokens,
                         int64_t vocab, int64_t hidden) override {
    cpu::embedding_forward(out, ids, table, tokens, vocab, hidden);
  }
  void embedding_backward(float* dtable, const float* dout, const int32_t* ids, int64_t tokens,
                          int64_t vocab, int64_t hidden) override {
    cpu::embedding_backward(dtable, dout, ids, tokens, vocab, hidden);
  }
  void rmsnorm_forward(float* out, float* rstd, const float* x, const float* weight, int64_t tokens,
                       int64_t hidden, float eps) override {
    cpu::rmsnorm_forward(out, rstd, x, weight, tokens, hidden, eps);
  }
  void rmsnorm_backward(float* dx, float* dweight, const float* dout, const float* x,
                        const float* weight, const float* rstd, int64_t tokens,
                        int64_t hidden) override {
    cpu::rmsnorm_backward(dx, dweight, dout, x, weight, rstd, tokens, hidden);
  }
  void rope_forward(float* out, const float* x, const int32_t* positions, int64_t tokens,
                    int64_t heads, int64_t head_dim, double theta) override {
    cpu::rope_forward(out, x, positions, tokens, heads, head_dim, theta);
  }
  void rope_backward(float* dx, const float* dout, const int32_t* positions, int64_t tokens,
                     int64_t heads, int64_t head_dim, double theta) override {
    cpu::rope_backward(dx, dout, positions, tokens, heads, head_dim, theta);
  }
  void attention_forward(float* out, float* lse, const float* q, const float* k, const float* v,
                         const AttentionSegment* segments, int64_t num_segments,
                         const AttentionShape& shape) override {
    cpu::attention_forward(out, lse, q, k, v, segments, num_segments, shape);
  }
  void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* q,
                          const float* k, const float* v, const float* out, const float* lse,
                          const AttentionSegment* segments, int64_t num_segments,
                          const AttentionShape& shape) override {
    cpu::attention_backward(dq, dk, dv, dout, q, k, v, out, lse, segments, num_segments, shape);
  }
  void swiglu_forward(float* out, const float* gate, const float* up, int64_t n) override {
    cpu::swiglu_forward(out, gate, up, n);
  }
  void swiglu_backward(float* dgate, float* dup, const float* dout, const float* gate,
                       const float* up, int64_t n) override {
    cpu::swiglu_backward(dgate, dup, dout, gate, up, n);
  }
  void linear_forward(float* y, const float* x, const float* weight, const float* bias,
                      int64_t tokens, int64_t in_features, int64_t out_features) override {
    cpu::linear_forward(y, x, weight, bias, tokens, in_features, out_features);
  }
  void linear_backward(float* dx, float* dweight, float* dbias, const float* dy, const float* x,
                       const float* weight, int64_t tokens, int64_t in_features,
                       int64_t out_features) override {
    cpu::linear_backward(dx, dweight, dbias, dy, x, weight, tokens, in_features, out_features);
  }
  void cross_entropy_forward(float* losses, float* lse, const float* logits, const int32_t* targets,
                             int64_t tokens, int64_t vocab, float loss_scale) override {
    cpu::cross_entropy_forward(losses, lse, logits, targets, tokens, vocab, loss_scale);
  }
  void cross_entropy_backward(float* dlogits, const float* logits, const float* lse,
                              const int32_t* targets, int64_t tokens, int64_t vocab,
                              float loss_scale) override {
    cpu::cross_entropy_backward(dlogits, logits, lse, targets, tokens, vocab, loss_scale);
  }
  void adamw_step(float* params, float* m, float* v, const float* grads, int64_t n,
                  const AdamWHyper& hyper, int64_t step) override {
    cpu::adamw_step(params, m, v, grads, n, hyper, step);
  }

 private:
  void timed_copy(float* dst, const float* src, int64_t n) {
    const auto start = std::chrono::steady_clock::now();
    copy(dst, src, n);
    copy_ns_ += std::chrono::duration_cast<std::chrono::nanoseconds>(
                    std::chrono::steady_clock::now() - start)
                    .count();
  }
  int64_t copy_ns_ = 0;
};

}  // namespace

std::unique_ptr<Stream> CpuBackend::create_stream() { return std::make_unique<CpuStream>(); }

CpuBackend& cpu_backend() {
  static CpuBackend backend;
  return backend;
}

Stream* cpu_stream() {
  static CpuStream stream;  // stateless: safe to share between threads
  return &stream;
}

}  // namespace cf

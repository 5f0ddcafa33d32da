// The counting backend (counting_backend.h): an allocator that keeps nothing and a stream whose
// calls check their sizes (and attention its segment table, host data) and compute nothing.
#include "executor/counting_backend.h"

#include "core/check.h"
#include "executor/tokens.h"

namespace cf {
namespace {

class NoStorage final : public Allocator {
 public:
  void* allocate(int64_t bytes) override {
    CF_CHECK_GE(bytes, 0);
    return nullptr;
  }
  void deallocate(void* storage, int64_t bytes) override {
    CF_CHECK(storage == nullptr) << "the counting backend never gave out storage";
  }
};

class CountingStream final : public Stream {
 public:
  Allocator* allocator() override { return &storage_; }
  void synchronize() override {}

  // Host arrays are left as they are: a copy to the host delivers nothing (the loss reads 0).
  void copy_to_host(float* host, const float* src, int64_t n) override { CF_CHECK_GE(n, 0); }
  void copy_from_host(float* dst, const float* host, int64_t n) override { CF_CHECK_GE(n, 0); }
  void copy(float* dst, const float* src, int64_t n) override { CF_CHECK_GE(n, 0); }
  void fill(float* dst, float value, int64_t n) override { CF_CHECK_GE(n, 0); }
  void residual_add(float* y, const float* x, int64_t n) override { CF_CHECK_GE(n, 0); }
  Allocator* host_pool() override { return &storage_; }
  void offload(float* host, const float* src, int64_t n) override { CF_CHECK_GE(n, 0); }
  void fetch(float* dst, const float* host, int64_t n) override { CF_CHECK_GE(n, 0); }
  void wait_copies() override {}
  double take_copy_seconds() override { return 0; }

  void embedding_forward(float* out, const int32_t* ids, const float* table, int64_t tokens,
                         int64_t vocab, int64_t hidden) override {}
  void embedding_backward(float* dtable, const float* dout, const int32_t* ids, int64_t tokens,
                          int64_t vocab, int64_t hidden) override {}
  void rmsnorm_forward(float* out, float* rstd, const float* x, const float* weight, int64_t tokens,
                       int64_t hidden, float eps) override {}
  void rmsnorm_backward(float* dx, float* dweight, const float* dout, const float* x,
                        const float* weight, const float* rstd, int64_t tokens,
                        int64_t hidden) override {}
  void rope_forward(float* out, const float* x, const int32_t* positions, int64_t tokens,
                    int64_t heads, int64_t head_dim, double theta) override {}
  void rope_backward(float* dx, const float* dout, const int32_t* positions, int64_t tokens,
                     int64_t heads, int64_t head_dim, double theta) override {}
  void attention_forward(float* out, float* lse, const float* q, const float* k, const float* v,
                         const AttentionSegment* segments, int64_t num_segments,
                         const AttentionShape& shape) override {
    check_attention_args(segments, num_segments, shape);
  }
  void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* q,
                          const float* k, const float* v, const float* out, const float* lse,
                          const AttentionSegment* segments, int64_t num_segments,
                          const AttentionShape& shape) override {
    check_attention_args(segments, num_segments, shape);
  }
  void swiglu_forward(float* out, const float* gate, const float* up, int64_t n) override {}
  void swiglu_backward(float* dgate, float* dup, const float* dout, const float* gate,
                       const float* up, int64_t n) override {}
  void linear_forward(float* y, const float* x, const float* weight, const float* bias,
                      int64_t tokens, int64_t in_features, int64_t out_features) override {}
  void linear_backward(float* dx, float* dweight, float* dbias, const float* dy, const float* x,
                       const float* weight, int64_t tokens, int64_t in_features,
                       int64_t out_features) override {}
  void cross_entropy_forward(float* losses, float* lse, const float* logits, const int32_t* targets,
                             int64_t tokens, int64_t vocab, float loss_scale) override {}
  void cross_entropy_backward(float* dlogits, const float* logits, const float* lse,
                              const int32_t* targets, int64_t tokens, int64_t vocab,
                              float loss_scale) override {}
  void adamw_step(float* params, float* m, float* v, const float* grads, int64_t n,
                  const AdamWHyper& hyper, int64_t step) override {}

 private:
  NoStorage storage_;
};

}  // namespace

std::unique_ptr<Stream> CountingBackend::create_stream() {
  return std::make_unique<CountingStream>();
}

std::vector<OpMemoryRecord> count_op_memory(const ModelConfig& model, const Plan& plan, int dp_rank,
                                            int stage, CpRank cp, KvOffloadPolicy kv_offload) {
  TokenBatch batch;  // token id 0 everywhere: ids change no buffer's size
  for (const int64_t length : plan.sequence_lengths) {
    batch.sequences.emplace_back(static_cast<size_t>(length), 0);
  }
  CountingBackend backend;
  NullTransport transport;
  StageWorker worker(model, plan.split(), dp_rank, stage, &backend, cp);
  worker.set_kv_offload(kv_offload);
  worker.run_step(plan, batch, &transport, StepClock::now(), /*record=*/false);
  return worker.op_memory();
}

}  // namespace cf

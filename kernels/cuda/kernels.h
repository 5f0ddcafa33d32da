// The CUDA mirrors of kernels/cpu, one launcher per CPU function with the same name and
// signature in cf::cuda. The CPU headers are the specification (shapes, accumulate-or-write,
// aliasing); the differences are listed here. Launchers run on cf::cuda::current_stream().
//   - Every float and integer array is device memory, except attention's segment table, which
//     stays on the host (the launcher copies it).
//   - Token ids, positions and targets are not range-checked on the device.
//   - Linear and attention compute as the calling thread's math mode says (cuda_check.h):
//     kFp32 exactly as the reference does in fp32, kBf16 on tensor cores with bf16 operands
//     and fp32 accumulation (docs/KERNELS-CUDA.md). The other kernels ignore the mode.
//   - Accumulations over tokens (embedding, the linear bias gradient past 256 tokens, attention
//     dK/dV in kFp32 and dQ in kBf16) use atomicAdd: their order, hence their last bits, may
//     differ from run to run.
#pragma once

#include <cstdint>

#include "kernels/cpu/adamw.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/cross_entropy.h"
#include "kernels/cpu/residual.h"  // cuda::residual_add, declared beside its reference

namespace cf::cuda {

void embedding_forward(float* out, const int32_t* ids, const float* table, int64_t tokens,
                       int64_t vocab, int64_t hidden);
void embedding_backward(float* dtable, const float* dout, const int32_t* ids, int64_t tokens,
                        int64_t vocab, int64_t hidden);

void rmsnorm_forward(float* out, float* rstd, const float* x, const float* weight, int64_t tokens,
                     int64_t hidden, float eps);
void rmsnorm_backward(float* dx, float* dweight, const float* dout, const float* x,
                      const float* weight, const float* rstd, int64_t tokens, int64_t hidden);

void rope_forward(float* out, const float* x, const int32_t* positions, int64_t tokens,
                  int64_t heads, int64_t head_dim, double theta);
void rope_backward(float* dx, const float* dout, const int32_t* positions, int64_t tokens,
                   int64_t heads, int64_t head_dim, double theta);

// head_dim ≤ kMaxAttentionHeadDim. kFp32: one warp per query row and head, 8 dims per lane.
// kBf16: the tiled tensor-core kernels (attention_tc.cu) when head_dim is a multiple of 16, the
// kFp32 kernels otherwise.
inline constexpr int64_t kMaxAttentionHeadDim = 256;
void attention_forward(float* out, float* lse, const float* q, const float* k, const float* v,
                       const AttentionSegment* segments, int64_t num_segments,
                       const AttentionShape& shape);
void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* q,
                        const float* k, const float* v, const float* out, const float* lse,
                        const AttentionSegment* segments, int64_t num_segments,
                        const AttentionShape& shape);

void swiglu_forward(float* out, const float* gate, const float* up, int64_t n);
void swiglu_backward(float* dgate, float* dup, const float* dout, const float* gate,
                     const float* up, int64_t n);

// cuBLAS GEMMs (cublasGemmEx on fp32 arrays): kFp32 CUBLAS_COMPUTE_32F with pedantic math (no
// TF32); kBf16 CUBLAS_COMPUTE_32F_FAST_16BF (operands rounded to bf16, fp32 accumulation).
void linear_forward(float* y, const float* x, const float* weight, const float* bias,
                    int64_t tokens, int64_t in_features, int64_t out_features);
void linear_backward(float* dx, float* dweight, float* dbias, const float* dy, const float* x,
                     const float* weight, int64_t tokens, int64_t in_features,
                     int64_t out_features);

void cross_entropy_forward(float* losses, float* lse, const float* logits, const int32_t* targets,
                           int64_t tokens, int64_t vocab, float loss_scale);
void cross_entropy_backward(float* dlogits, const float* logits, const float* lse,
                            const int32_t* targets, int64_t tokens, int64_t vocab,
                            float loss_scale);

void adamw_step(float* params, float* m, float* v, const float* grads, int64_t n,
                const AdamWHyper& hyper, int64_t step);

// dst (n) = value: what std::fill does for the CPU backend (no kernels/cpu mirror).
void fill(float* dst, float value, int64_t n);

}  // namespace cf::cuda

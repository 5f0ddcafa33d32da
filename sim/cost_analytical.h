// The analytical cost model (DESIGN.md §4.5): op times from FLOPs and bytes over the GPU's
// peak rates and efficiency curves (models/hardware/*.yaml), collectives from the α-β ring
// model with nccl-tests' bus-bandwidth factors, links chosen by where ranks sit.
// Not calibrated: every efficiency is an assumption of the hardware file.
#pragma once

#include "models/hardware.h"
#include "models/model.h"
#include "sim/cost_model.h"

namespace cf {

// A link class between two GPUs: bandwidth per direction (after the collective efficiency)
// and per-message latency.
struct Link {
  double bandwidth_bytes_per_s = 0;
  double latency_s = 0;
};

// Ring collectives over n ranks, `bytes` = the whole array (nccl-tests' S). Bus bandwidth
// factors from nccl-tests doc/PERFORMANCE.md: all-reduce 2(n−1)/n, reduce-scatter and
// all-gather (n−1)/n; latency one α per ring step.
double all_reduce_s(double bytes, int n, const Link& link);
double reduce_scatter_s(double bytes, int n, const Link& link);
double all_gather_s(double bytes, int n, const Link& link);

// Placement (Megatron-LM's default rank order tp-cp-ep-dp-pp: TP fastest, PP slowest): the
// first GPU of (dp_rank, stage) is tp·cp·(dp_rank + dp·stage); its CP ranks follow at stride tp.
int64_t first_gpu(int tp, int cp, int dp, int dp_rank, int stage);

// [derived] Kernels one transformer layer launches per pass (Megatron-Core with Transformer
// Engine): forward 2 norms, 4 GEMMs (QKV, projection, fc1, fc2), attention, the MLP
// activation, 2 bias-dropout-adds, and RoPE on Q and K (Llama / Qwen2 only); backward 8 GEMMs
// (data and weight gradients), attention's 3 (FlashAttention-2: dO·O, the main kernel, dQ
// conversion), 2 norms, the activation, 2 residual gradient adds, RoPE's 2 (Llama / Qwen2).
int layer_kernels(const ModelConfig& model, bool backward);

class AnalyticalCostModel final : public CostModel {
 public:
  AnalyticalCostModel(const ModelConfig& model, const GpuSpec& gpu, int gpus_per_node,
                      const ParallelConfig& parallel, const TrainingConfig& training = {},
                      const OverlapConfig& overlap = {});

  std::string name() const override { return "analytical"; }
  OpTime op_time(const OpQuery& query) const override;
  void op_times(std::span<const OpQuery> queries, std::span<OpTime> out) const override;
  int64_t p2p_time_ns(const P2pQuery& query) const override;
  int64_t dp_reduce_time_ns(int stage) const override;
  int64_t optimizer_time_ns(int stage) const override;

  // Forward seconds of one transformer layer's parts for a chunk on one GPU (exposed for
  // tests); with context parallelism the GPU's share (tokens / cp, attention pairs / cp).
  struct LayerSeconds {
    double gemm = 0;       // QKV, output projection, MLP fc1 (gate+up) and fc2
    double attention = 0;  // core attention (FlashAttention, or the unfused bmm path)
    // Of `attention`, the unfused path's two batched matmuls (0 with FlashAttention): GEMM
    // kernels in a profile, so the class split counts them as gemm.
    double attention_matmul = 0;
    double elementwise = 0;  // norms, residual adds, RoPE, the MLP activation, softmax
    double tp_comm = 0;      // two all-reduces (or all-gather + reduce-scatter with SP)
    // Context-parallel communication left exposed in the forward and in the backward
    // (the ring overlaps its K/V passes with attention; all-gather and a2a do not).
    double cp_comm_forward = 0;
    double cp_comm_backward = 0;
    double cp_backward_extra = 0;  // the ring's fp32 gradient accumulation in the backward
  };
  LayerSeconds layer_forward_seconds(int64_t tokens, std::span<const AttentionSpan> spans) const;

 private:
  // op_time with the chunk's layer costs already known.
  OpTime op_time(const OpQuery& query, const LayerSeconds& layer) const;
  // A GEMM of m×k by k×n in bf16: its FLOPs at the efficiency of their size, or its bytes at
  // HBM speed, whichever is slower (the roofline: a GEMM of few tokens reads its weights).
  double gemm_s(double m, double k, double n) const;
  double elementwise_s(double bytes) const;
  Link link_between(int64_t gpu_a, int64_t gpu_b) const;
  // The link of the group of `size` GPUs at stride `stride` from `first`.
  Link group_link(int64_t first, int64_t stride, int size) const;
  // Attention (query, key) pairs the kernels compute for `spans` on one GPU: FlashAttention
  // in whole tiles of the causal pattern, the unfused path the whole q × (prefix + q) square.
  double attention_pairs(std::span<const AttentionSpan> spans) const;
  void add_cp_comm(std::span<const AttentionSpan> spans, int64_t local_tokens,
                   LayerSeconds* s) const;
  // Seconds of a piece of work by the class of kernels that run it.
  struct Parts {
    double gemm = 0;
    double attention = 0;
    double elementwise = 0;
    double comm = 0;  // TP / CP collectives
    double sum() const { return gemm + attention + elementwise + comm; }
    // An unfused attention's matmuls are GEMM kernels: from attention to gemm.
    void move_attention_matmul(double seconds) {
      gemm += seconds;
      attention -= seconds;
    }
    Parts& operator+=(const Parts& o) {
      gemm += o.gemm;
      attention += o.attention;
      elementwise += o.elementwise;
      comm += o.comm;
      return *this;
    }
  };
  // Forward and backward seconds of the embedding (first virtual stage) and the final norm,
  // LM head and cross-entropy (last virtual stage), for the GPU's tokens.
  Parts embedding_s(double tokens, bool backward) const;
  Parts lm_head_s(double tokens, bool backward) const;
  // The GPU's own tokens of a chunk under context parallelism.
  double local_tokens(int64_t tokens) const;
  // Exposed TP communication of a layer pass: all of it, or with overlap.tp_comm what the
  // GEMMs it is pipelined with do not cover.
  double exposed_tp_comm(const LayerSeconds& layer, double gemm_factor) const;

  ModelConfig model_;
  GpuSpec gpu_;
  int gpus_per_node_;
  ParallelConfig parallel_;
  LayerSplit split_;  // parallel_'s, for each stage's parameters
  TrainingConfig training_;
  OverlapConfig overlap_;
  Link nvlink_;
  Link ib_;
  Link tp_link_;
  Link cp_link_;
  // Local (per TP rank) widths: Q = a·d_h/t, K/V heads replicated when t > g, f/t, V/t.
  double q_local_ = 0;
  double kv_local_ = 0;
  double f_local_ = 0;
  double vocab_local_ = 0;
};

}  // namespace cf

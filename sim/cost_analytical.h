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

// Placement (Megatron-LM's default rank order tp-cp-ep-dp-pp: TP fastest, PP slowest):
// the first GPU of (dp_rank, stage) is tp·(dp_rank + dp·stage).
int64_t first_gpu(int tp, int dp, int dp_rank, int stage);

class AnalyticalCostModel final : public CostModel {
 public:
  AnalyticalCostModel(const ModelConfig& model, const GpuSpec& gpu, int gpus_per_node,
                      const ParallelConfig& parallel);

  std::string name() const override { return "analytical"; }
  OpTime op_time(const OpQuery& query) const override;
  int64_t p2p_time_ns(const P2pQuery& query) const override;
  int64_t dp_reduce_time_ns(int stage) const override;
  int64_t optimizer_time_ns(int stage) const override;

  // Forward seconds of one transformer layer's parts for a chunk (exposed for tests).
  struct LayerSeconds {
    double gemm = 0;         // QKV, output projection, MLP fc1 (gate+up) and fc2
    double attention = 0;    // core attention (FlashAttention)
    double elementwise = 0;  // norms, residual adds, RoPE, SwiGLU activation
    double tp_comm = 0;      // two all-reduces (or all-gather + reduce-scatter with SP)
  };
  LayerSeconds layer_forward_seconds(int64_t tokens, std::span<const AttentionSpan> spans) const;

 private:
  double gemm_s(double flops) const;
  double elementwise_s(double bytes) const;
  Link link_between(int64_t gpu_a, int64_t gpu_b) const;
  // Forward and backward seconds of the embedding (first virtual stage) and the final norm,
  // LM head and cross-entropy (last virtual stage).
  double embedding_s(int64_t tokens, bool backward) const;
  double lm_head_s(int64_t tokens, bool backward) const;

  ModelConfig model_;
  GpuSpec gpu_;
  int gpus_per_node_;
  ParallelConfig parallel_;
  Link nvlink_;
  Link ib_;
  Link tp_link_;
  // Local (per TP rank) widths: Q = a·d_h/t, K/V heads replicated when t > g, f/t, V/t.
  double q_local_ = 0;
  double kv_local_ = 0;
  double f_local_ = 0;
  double vocab_local_ = 0;
};

}  // namespace cf

// The analytical cost model: per-op FLOPs and bytes over rates, collectives by the α-β ring
// model. Each formula names its source; [derived] marks this project's own algebra on top
// of the cited sources (docs/COSTS-REFERENCE.md), to be checked against `chunkflow calibrate`.
#include "sim/cost_analytical.h"

#include <algorithm>
#include <cmath>

#include "core/check.h"
#include "core/numeric.h"
#include "sim/memory_model.h"

namespace cf {
namespace {

int64_t to_ns(double seconds) { return std::llround(seconds * 1e9); }

}  // namespace

// nccl-tests doc/PERFORMANCE.md: busbw = algbw · 2(n−1)/n for all-reduce, so the ideal time
// is (S/B)·2(n−1)/n; a ring all-reduce takes 2(n−1) steps of latency α (docs/COSTS-REFERENCE.md
// §6.1).
double all_reduce_s(double bytes, int n, const Link& link) {
  if (n <= 1) return 0;
  return 2.0 * (n - 1) * link.latency_s + 2.0 * (n - 1) / n * bytes / link.bandwidth_bytes_per_s;
}

// Reduce-scatter and all-gather: busbw = algbw · (n−1)/n, n−1 ring steps.
double reduce_scatter_s(double bytes, int n, const Link& link) {
  if (n <= 1) return 0;
  return (n - 1) * link.latency_s +
         static_cast<double>(n - 1) / n * bytes / link.bandwidth_bytes_per_s;
}

double all_gather_s(double bytes, int n, const Link& link) {
  return reduce_scatter_s(bytes, n, link);
}

int64_t first_gpu(int tp, int dp, int dp_rank, int stage) {
  return static_cast<int64_t>(tp) * (dp_rank + static_cast<int64_t>(dp) * stage);
}

AnalyticalCostModel::AnalyticalCostModel(const ModelConfig& model, const GpuSpec& gpu,
                                         int gpus_per_node, const ParallelConfig& parallel)
    : model_(model), gpu_(gpu), gpus_per_node_(gpus_per_node), parallel_(parallel) {
  CF_CHECK_GT(gpus_per_node, 0);
  const double eff = gpu.collective_efficiency;
  nvlink_ = Link{gpu.nvlink_bandwidth_bytes_per_s * eff, gpu.nvlink_latency_s};
  ib_ = Link{gpu.ib_bandwidth_bytes_per_s * eff, gpu.ib_latency_s};
  // A TP group is tp consecutive GPUs: inside one node when it fits.
  tp_link_ = parallel.tp <= gpus_per_node ? nvlink_ : ib_;
  const int tp = parallel.tp;
  q_local_ = static_cast<double>(ceil_div(model.heads, tp) * model.head_dim);
  kv_local_ = static_cast<double>(ceil_div(model.kv_heads, tp) * model.head_dim);
  f_local_ = static_cast<double>(ceil_div(model.ffn_hidden, tp));
  vocab_local_ = static_cast<double>(ceil_div(model.vocab, tp));
}

// A GEMM of `flops` reaches gemm_efficiency_at(flops) of the dense bf16 peak.
double AnalyticalCostModel::gemm_s(double flops) const {
  if (flops <= 0) return 0;
  return flops / (gpu_.peak_bf16_flops * gpu_.gemm_efficiency_at(flops));
}

double AnalyticalCostModel::elementwise_s(double bytes) const {
  return bytes / (gpu_.hbm_bandwidth_bytes_per_s * gpu_.memory_efficiency);
}

Link AnalyticalCostModel::link_between(int64_t gpu_a, int64_t gpu_b) const {
  return gpu_a / gpus_per_node_ == gpu_b / gpus_per_node_ ? nvlink_ : ib_;
}

AnalyticalCostModel::LayerSeconds AnalyticalCostModel::layer_forward_seconds(
    int64_t tokens, std::span<const AttentionSpan> spans) const {
  const double t = static_cast<double>(tokens);
  const double h = static_cast<double>(model_.hidden);
  const double sp_div = parallel_.sp ? parallel_.tp : 1;
  LayerSeconds s;
  // GEMMs on this TP rank, 2 FLOPs per multiply-add (Megatron's counter, docs/COSTS-REFERENCE.md
  // §2.2): QKV t·h·(Q + 2·g·d_h), output projection t·Q·h, fc1 (gate and up fused) t·h·2f,
  // fc2 t·f·h — each timed at the efficiency of its own size.
  s.gemm = gemm_s(2 * t * h * (q_local_ + 2 * kv_local_)) + gemm_s(2 * t * q_local_ * h) +
           gemm_s(2 * t * h * 2 * f_local_) + gemm_s(2 * t * f_local_ * h);
  // Core attention: 4·Q FLOPs per unmasked query-key pair (QKᵀ and PV); a segment of q
  // queries after a prefix p has q·p + q(q+1)/2 pairs (docs/COSTS-REFERENCE.md §5), so a packed
  // chunk costs Σ ℓᵢ², not (Σ ℓᵢ)².
  double pairs = 0;
  for (const AttentionSpan& span : spans) {
    const double q = static_cast<double>(span.q_len);
    pairs += q * static_cast<double>(span.kv_prefix) + q * (q + 1) / 2;
  }
  s.attention = 4 * q_local_ * pairs / (gpu_.peak_bf16_flops * gpu_.attention_efficiency);
  // [derived] Bytes moved by the elementwise kernels per token, bf16: two RMSNorms (read and
  // write h: 8h), two residual adds (read 2h, write h: 12h) — on t/tp tokens with SP, else
  // replicated — RoPE on Q and K (read and write: 4·(Q + kv)) and SwiGLU's act(gate)·up
  // (read 2f, write f: 6f), split over TP.
  s.elementwise = elementwise_s(t * (20 * h / sp_div + 4 * (q_local_ + kv_local_) + 6 * f_local_));
  // TP: two all-reduces of (t, h) bf16 per layer forward, or with SP two all-gather +
  // reduce-scatter pairs of the same volume and the same ring time (Korthikanti et al. 2022
  // §4.2; docs/COSTS-REFERENCE.md §6.2).
  s.tp_comm = 2 * all_reduce_s(2 * t * h, parallel_.tp, tp_link_);
  return s;
}

// [derived] Embedding: the lookup writes (t, h) bf16 and reads it back for the residual
// (4·t·h B); vocab-parallel embedding all-reduces its output (reduce-scatter with SP). The
// backward scatters the gradient (same bytes ×2); with SP it all-gathers the gradient.
double AnalyticalCostModel::embedding_s(int64_t tokens, bool backward) const {
  const double bytes = 2.0 * tokens * model_.hidden;  // (t, h) bf16
  const int tp = parallel_.tp;
  if (backward) {
    return elementwise_s(4 * bytes) + (parallel_.sp ? all_gather_s(bytes, tp, tp_link_) : 0);
  }
  return elementwise_s(2 * bytes) +
         (parallel_.sp ? reduce_scatter_s(bytes, tp, tp_link_) : all_reduce_s(bytes, tp, tp_link_));
}

// Final RMSNorm (8h B per token), LM head GEMM (2·h·V/t FLOPs per token, Megatron's 6·h·V
// fwd+bwd ÷ 3), vocab-parallel cross-entropy ([derived] logits read, exp written, read again:
// 12·V/t B per token in fp32, plus three all-reduces of one fp32 per token: max, sum, target
// logit). With SP the head's input is all-gathered first (its gradient reduce-scattered in
// backward); without SP the backward all-reduces the input gradient. Backward: 2× the GEMM.
double AnalyticalCostModel::lm_head_s(int64_t tokens, bool backward) const {
  const double t = static_cast<double>(tokens);
  const double h = static_cast<double>(model_.hidden);
  const int tp = parallel_.tp;
  const double gemm = gemm_s(2 * t * h * vocab_local_);
  const double elementwise = elementwise_s(t * (8 * h + 12 * vocab_local_));
  const double input_bytes = 2 * t * h;
  if (backward) {
    const double comm = parallel_.sp ? reduce_scatter_s(input_bytes, tp, tp_link_)
                                     : all_reduce_s(input_bytes, tp, tp_link_);
    return 2 * gemm + elementwise + comm;
  }
  const double comm = (parallel_.sp ? all_gather_s(input_bytes, tp, tp_link_) : 0) +
                      3 * all_reduce_s(4 * t, tp, tp_link_);
  return gemm + elementwise + comm;
}

// Forward passes (F, F*, R) cost the same; the backward costs 2× the GEMMs (dgrad and
// wgrad), 2.5× core attention (FlashAttention's backward recomputes QKᵀ: 5 matmuls against
// 2, docs/COSTS-REFERENCE.md §2.2), 2× elementwise, the same TP collectives as the forward, plus
// the policy's recompute: selective redoes core attention's forward (Megatron's default recompute
// module core_attn), full redoes the whole layer forward with its collectives.
OpTime AnalyticalCostModel::op_time(const OpQuery& query) const {
  const LayerSeconds layer = layer_forward_seconds(query.tokens, query.spans);
  const double layers = static_cast<double>(query.layers);
  const bool backward = query.pass == Pass::kBackward;
  double compute_s = 0, recompute_s = 0, comm_s = layers * layer.tp_comm;
  if (!backward) {
    compute_s = layers * (layer.gemm + layer.attention + layer.elementwise);
  } else {
    compute_s = layers * (2 * layer.gemm + 2.5 * layer.attention + 2 * layer.elementwise);
    if (parallel_.recompute == Recompute::kSelective) {
      recompute_s = layers * layer.attention;
    } else if (parallel_.recompute == Recompute::kFull) {
      recompute_s = layers * (layer.gemm + layer.attention + layer.elementwise + layer.tp_comm);
    }
  }
  if (query.embedding) compute_s += embedding_s(query.tokens, backward);
  if (query.lm_head) compute_s += lm_head_s(query.tokens, backward);
  OpTime time;
  time.recompute_ns = to_ns(recompute_s);
  time.comm_ns = to_ns(comm_s);
  time.total_ns = to_ns(compute_s) + time.recompute_ns + time.comm_ns;
  return time;
}

// Point-to-point: T = α + n/β (docs/COSTS-REFERENCE.md §6.1), NVLink when both stages' GPUs share a
// node, else InfiniBand. Megatron-LM with variable_seq_lengths first exchanges a 24-byte
// shape tensor (p2p_communication.py _communicate_shapes): one more latency.
int64_t AnalyticalCostModel::p2p_time_ns(const P2pQuery& query) const {
  const int tp = parallel_.tp, dp = parallel_.dp;
  const Link link = link_between(first_gpu(tp, dp, query.dp_rank, query.from_stage),
                                 first_gpu(tp, dp, query.dp_rank, query.to_stage));
  return to_ns(2 * link.latency_s + static_cast<double>(query.bytes) / link.bandwidth_bytes_per_s);
}

// The DP group of a stage spans GPUs tp·dp·stage + tp·r for r < dp: NVLink when the first
// and last share a node. Gradients are fp32 main grads (4 B per parameter, Megatron's bf16
// recipe): reduce-scatter with the distributed optimizer, all-reduce without
// (docs/COSTS-REFERENCE.md §6.2).
int64_t AnalyticalCostModel::dp_reduce_time_ns(int stage) const {
  const int tp = parallel_.tp, dp = parallel_.dp;
  if (dp <= 1) return 0;
  const Link link = link_between(first_gpu(tp, dp, 0, stage), first_gpu(tp, dp, dp - 1, stage));
  const double grad_bytes =
      4.0 * stage_local_parameters(model_, tp, parallel_.pp, parallel_.vpp, stage);
  return to_ns(parallel_.distributed_optimizer ? reduce_scatter_s(grad_bytes, dp, link)
                                               : all_reduce_s(grad_bytes, dp, link));
}

// [derived] Adam over this GPU's shard, memory-bound: reads fp32 grad, master, m, v (16 B),
// writes master, m, v (12 B) and the bf16 weight (2 B): 30 B per parameter. The distributed
// optimizer then all-gathers the updated bf16 weights over DP.
int64_t AnalyticalCostModel::optimizer_time_ns(int stage) const {
  const int tp = parallel_.tp, dp = parallel_.dp;
  const double params =
      static_cast<double>(stage_local_parameters(model_, tp, parallel_.pp, parallel_.vpp, stage));
  double seconds = 0;
  if (parallel_.distributed_optimizer && dp > 1) {
    const Link link = link_between(first_gpu(tp, dp, 0, stage), first_gpu(tp, dp, dp - 1, stage));
    seconds = elementwise_s(30 * params / dp) + all_gather_s(2 * params, dp, link);
  } else {
    seconds = elementwise_s(30 * params);
  }
  return to_ns(seconds);
}

}  // namespace cf

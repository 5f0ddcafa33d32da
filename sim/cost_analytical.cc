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

int64_t to_ns(double seconds) { return seconds_to_ns(seconds); }

// An op's total_ns by kernel class: each class's seconds rounded to ns; what they leave of
// the total is "other" (kernel launch overheads, and the host's time when it, not the GPU,
// sets the op's). Rounding can make the classes exceed the total by a few ns: the largest
// class gives them back, so the split always sums to the total exactly. Times past
// kMaxSimulatedNs (a hostile hardware file) saturate: the classes then take the saturated
// total in order, gemm first, and still sum to it.
ClassNs class_split(double gemm_s, double attention_s, double elementwise_s, double comm_s,
                    int64_t total_ns) {
  ClassNs split{};
  split[static_cast<int>(KernelClass::kGemm)] = to_ns(gemm_s);
  split[static_cast<int>(KernelClass::kAttention)] = to_ns(attention_s);
  split[static_cast<int>(KernelClass::kElementwise)] = to_ns(elementwise_s);
  split[static_cast<int>(KernelClass::kCollective)] = to_ns(comm_s);
  int64_t sum = 0;
  bool saturated = false;
  for (int64_t ns : split) {
    saturated = saturated || ns > kMaxSimulatedNs - sum;
    sum = saturating_add_ns(sum, ns);
  }
  if (saturated) {
    int64_t left = total_ns;
    for (int64_t& ns : split) {
      ns = std::min(ns, left);
      left -= ns;
    }
    split[static_cast<int>(KernelClass::kOther)] += left;
    return split;
  }
  if (sum > total_ns) {
    int64_t& largest = *std::max_element(split.begin(), split.end());
    CF_CHECK_LE(sum - total_ns, largest) << "class split past the op's total";
    largest -= sum - total_ns;
    sum = total_ns;
  }
  split[static_cast<int>(KernelClass::kOther)] = total_ns - sum;
  return split;
}

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

int64_t first_gpu(int tp, int cp, int dp, int dp_rank, int stage) {
  return static_cast<int64_t>(tp) * cp * (dp_rank + static_cast<int64_t>(dp) * stage);
}

int layer_kernels(const ModelConfig& model, bool backward) {
  const int rope = model.gpt() ? 0 : 2;
  return backward ? 8 + 3 + 2 + 1 + 2 + rope : 2 + 4 + 1 + 1 + 2 + rope;
}

AnalyticalCostModel::AnalyticalCostModel(const ModelConfig& model, const GpuSpec& gpu,
                                         int gpus_per_node, const ParallelConfig& parallel,
                                         const TrainingConfig& training,
                                         const OverlapConfig& overlap)
    : model_(model),
      gpu_(gpu),
      gpus_per_node_(gpus_per_node),
      parallel_(parallel),
      split_(layer_split(model.layers, parallel)),
      training_(training),
      overlap_(overlap) {
  CF_CHECK_GT(gpus_per_node, 0);
  const double eff = gpu.collective_efficiency;
  nvlink_ = Link{gpu.nvlink_bandwidth_bytes_per_s * eff, gpu.nvlink_latency_s};
  ib_ = Link{gpu.ib_bandwidth_bytes_per_s * eff, gpu.ib_latency_s};
  // A TP group is tp consecutive GPUs, a CP group cp GPUs at stride tp: inside one node when
  // they fit.
  tp_link_ = parallel.tp <= gpus_per_node ? nvlink_ : ib_;
  cp_link_ = static_cast<int64_t>(parallel.tp) * parallel.cp <= gpus_per_node ? nvlink_ : ib_;
  const int tp = parallel.tp;
  q_local_ = static_cast<double>(ceil_div(model.heads, tp) * model.head_dim);
  kv_local_ = static_cast<double>(ceil_div(model.kv_heads, tp) * model.head_dim);
  f_local_ = static_cast<double>(ceil_div(model.ffn_hidden, tp));
  vocab_local_ = static_cast<double>(ceil_div(model.vocab, tp));
}

double AnalyticalCostModel::gemm_s(double m, double k, double n) const {
  const double flops = 2 * m * k * n;
  if (flops <= 0) return 0;
  const double compute = flops / (gpu_.peak_bf16_flops * gpu_.gemm_efficiency_at(flops));
  const double memory = elementwise_s(2 * (m * k + k * n + m * n));
  return std::max(compute, memory);
}

double AnalyticalCostModel::elementwise_s(double bytes) const {
  return bytes / (gpu_.hbm_bandwidth_bytes_per_s * gpu_.memory_efficiency);
}

Link AnalyticalCostModel::link_between(int64_t gpu_a, int64_t gpu_b) const {
  return gpu_a / gpus_per_node_ == gpu_b / gpus_per_node_ ? nvlink_ : ib_;
}

Link AnalyticalCostModel::group_link(int64_t first, int64_t stride, int size) const {
  return link_between(first, first + stride * (size - 1));
}

double AnalyticalCostModel::local_tokens(int64_t tokens) const {
  return static_cast<double>(tokens) / parallel_.cp;
}

// A segment of q queries after a prefix p has q·p + q(q+1)/2 unmasked pairs
// (docs/COSTS-REFERENCE.md §5), so a packed chunk costs Σ ℓᵢ², not (Σ ℓᵢ)². FlashAttention
// works in tiles of B queries × B keys (FlashAttention-2, Dao 2023, §3.1; hardware YAML
// attention_block) and computes every tile the mask touches: ⌈q/B⌉ query blocks each read
// ⌈p/B⌉ prefix tiles, and the causal diagonal ⌈q/B⌉(⌈q/B⌉+1)/2 tiles [derived]. The unfused path
// multiplies the whole q × (p + q) score matrix and masks it afterwards. Load-balanced context
// parallelism gives each of the cp GPUs 1/cp of the pairs (Megatron-Core's 2·cp pieces).
double AnalyticalCostModel::attention_pairs(std::span<const AttentionSpan> spans) const {
  double pairs = 0;
  const int64_t block = gpu_.attention_block;
  for (const AttentionSpan& span : spans) {
    const double q = static_cast<double>(span.q_len);
    const double p = static_cast<double>(span.kv_prefix);
    if (!model_.flash_attention) {
      pairs += q * (p + q);
    } else if (block <= 1) {
      pairs += q * p + q * (q + 1) / 2;
    } else {
      const double nq = static_cast<double>(ceil_div(span.q_len, block));
      const double np = static_cast<double>(ceil_div(span.kv_prefix, block));
      pairs += (nq * np + nq * (nq + 1) / 2) * static_cast<double>(block * block);
    }
  }
  return pairs / parallel_.cp;
}

// Context parallelism's communication per layer (Megatron-Core cp_comm_type; the K/V of a
// GPU's share are 2 · (its tokens, this TP rank's K/V width) in bf16, prefix included):
//  - p2p, the ring: cp − 1 steps each passing one K/V block to the next rank while the
//    attention of the current block runs; exposed is what the attention does not cover.
//    The backward passes K/V and their gradients (twice the bytes) behind the backward
//    attention (2.5× the forward).
//  - all_gather: K/V all-gathered before attention; the backward gathers again and
//    reduce-scatters dK/dV (Llama 3, Dubey et al. 2024 §3.3.2), not overlapped.
//  - a2a (Ulysses, Jacobs et al. 2023): all-to-alls of Q, K, V before attention and of the
//    output after it, the same in the backward; each moves (cp−1)/cp of a GPU's share, one
//    latency per peer. K/V heads fewer than cp are replicated up to cp.
void AnalyticalCostModel::add_cp_comm(std::span<const AttentionSpan> spans, int64_t local_tokens,
                                      LayerSeconds* s) const {
  const int cp = parallel_.cp;
  if (cp <= 1) return;
  double key_tokens = 0;
  for (const AttentionSpan& span : spans) {
    key_tokens += static_cast<double>(span.q_len + span.kv_prefix);
  }
  const double kv_block = 2 * (key_tokens / cp) * kv_local_ * 2;  // K and V, bf16
  const Link& link = cp_link_;
  switch (parallel_.cp_comm) {
    case CpComm::kP2p: {
      // [derived] Each ring step's partial output is merged into the running one by its
      // log-sum-exp (Transformer Engine's AttnFuncWithCPAndKVP2P): per element of the GPU's
      // (tokens, Q) output the forward reads the partial bf16 output (2 B) and reads and
      // writes the fp32 accumulator (8 B); the backward accumulates dQ in fp32 (8 B) and
      // dK/dV in fp32 (16 B per element of the K/V width) per step.
      const double t = static_cast<double>(local_tokens);
      s->elementwise += elementwise_s(cp * t * 10 * q_local_);
      s->cp_backward_extra = elementwise_s(cp * t * (8 * q_local_ + 16 * kv_local_));
      const double step = link.latency_s + kv_block / link.bandwidth_bytes_per_s;
      const double step_backward = link.latency_s + 2 * kv_block / link.bandwidth_bytes_per_s;
      s->cp_comm_forward = std::max(0.0, (cp - 1) * step - s->attention);
      s->cp_comm_backward = std::max(0.0, (cp - 1) * step_backward - 2.5 * s->attention);
      break;
    }
    case CpComm::kAllGather: {
      const double gather = all_gather_s(cp * kv_block, cp, link);
      s->cp_comm_forward = gather;
      s->cp_comm_backward = gather + reduce_scatter_s(cp * kv_block, cp, link);
      break;
    }
    case CpComm::kA2a: {
      const double kv_wire = std::max(kv_local_, static_cast<double>(cp * model_.head_dim));
      const double t = static_cast<double>(local_tokens);
      auto all_to_all = [&](double bytes) {
        return (cp - 1) * link.latency_s +
               static_cast<double>(cp - 1) / cp * bytes / link.bandwidth_bytes_per_s;
      };
      const double pass =
          all_to_all(2 * t * (q_local_ + 2 * kv_wire)) + all_to_all(2 * t * q_local_);
      s->cp_comm_forward = pass;
      s->cp_comm_backward = pass;
      break;
    }
  }
}

AnalyticalCostModel::LayerSeconds AnalyticalCostModel::layer_forward_seconds(
    int64_t tokens, std::span<const AttentionSpan> spans) const {
  const double t = local_tokens(tokens);
  const double h = static_cast<double>(model_.hidden);
  const double sp_div = parallel_.sp ? parallel_.tp : 1;
  LayerSeconds s;
  // GEMMs on this TP rank, 2 FLOPs per multiply-add (Megatron's counter, docs/COSTS-REFERENCE.md
  // §2.2): QKV t·h·(Q + 2·g·d_h), output projection t·Q·h, fc1 t·h·2f (SwiGLU gate and up
  // fused; GeLU t·h·f), fc2 t·f·h — each timed at the efficiency of its own size.
  const double fc1_width = (model_.gpt() ? 1 : 2) * f_local_;
  s.gemm = gemm_s(t, h, q_local_ + 2 * kv_local_) + gemm_s(t, q_local_, h) +
           gemm_s(t, h, fc1_width) + gemm_s(t, f_local_, h);
  // Core attention: 4·Q FLOPs per computed query-key pair (QKᵀ and PV). FlashAttention at the
  // hardware's attention efficiency; the unfused path runs QKᵀ and PV as batched GEMMs (at the
  // GEMM curve) and [derived] moves 13 B per score through HBM: QKᵀ writes 2, the fused
  // scale-mask-softmax reads 2 and writes 2, dropout reads 2, writes 2 and a 1 B mask, PV
  // reads 2.
  const double pairs = attention_pairs(spans);
  const double heads_local = q_local_ / static_cast<double>(model_.head_dim);
  if (model_.flash_attention) {
    s.attention = 4 * q_local_ * pairs / (gpu_.peak_bf16_flops * gpu_.attention_efficiency);
  } else {
    const double bmm_flops = 2 * q_local_ * pairs;
    s.attention_matmul =
        2 * bmm_flops / (gpu_.peak_bf16_flops * gpu_.gemm_efficiency_at(bmm_flops));
    s.attention = s.attention_matmul + elementwise_s(13 * heads_local * pairs);
  }
  // [derived] Bytes moved by the elementwise kernels per token, bf16: two norms (read and
  // write h: 8h), two residual adds (read 2h, write h: 12h) — on t/tp tokens with SP, else
  // replicated — plus dropout's 1 B masks (2h) when the model has dropout; Llama / Qwen2:
  // RoPE on Q and K (read and write: 4·(Q + kv)) and SwiGLU's act(gate)·up (read 2f, write
  // f: 6f); GPT: GeLU (read f, write f: 4f). The MLP and RoPE parts are split over TP.
  const double dropout_bytes = model_.dropout > 0 ? 2 * h : 0;
  const double split_bytes =
      model_.gpt() ? 4 * f_local_ : 4 * (q_local_ + kv_local_) + 6 * f_local_;
  s.elementwise = elementwise_s(t * ((20 * h + dropout_bytes) / sp_div + split_bytes));
  // TP: two all-reduces of (t, h) bf16 per layer forward, or with SP two all-gather +
  // reduce-scatter pairs of the same volume and the same ring time (Korthikanti et al. 2022
  // §4.2; docs/COSTS-REFERENCE.md §6.2).
  s.tp_comm = 2 * all_reduce_s(2 * t * h, parallel_.tp, tp_link_);
  add_cp_comm(spans, static_cast<int64_t>(std::ceil(t)), &s);
  return s;
}

// [derived] Embedding: the lookup writes (t, h) bf16 and reads it back for the residual
// (4·t·h B); vocab-parallel embedding all-reduces its output (reduce-scatter with SP). The
// backward scatters the gradient (same bytes ×2); with SP it all-gathers the gradient.
AnalyticalCostModel::Parts AnalyticalCostModel::embedding_s(double tokens, bool backward) const {
  const double bytes = 2.0 * tokens * model_.hidden;  // (t, h) bf16
  const int tp = parallel_.tp;
  if (backward) {
    return {.elementwise = elementwise_s(4 * bytes),
            .comm = parallel_.sp ? all_gather_s(bytes, tp, tp_link_) : 0};
  }
  return {.elementwise = elementwise_s(2 * bytes),
          .comm = parallel_.sp ? reduce_scatter_s(bytes, tp, tp_link_)
                               : all_reduce_s(bytes, tp, tp_link_)};
}

// Final norm (8h B per token), LM head GEMM (2·h·V/t FLOPs per token, Megatron's 6·h·V
// fwd+bwd ÷ 3), vocab-parallel cross-entropy ([derived] unfused: logits read, exp written,
// read again in fp32, 12·V/t B per token; fused (Megatron-Core fused_cross_entropy.py): the
// bf16 logits read twice and their gradient written, 6·V/t B) plus three all-reduces of one
// fp32 per token: max, sum, target logit. With SP the head's input is all-gathered first (its
// gradient reduce-scattered in backward); without SP the backward all-reduces the input
// gradient. Backward: 2× the GEMM.
AnalyticalCostModel::Parts AnalyticalCostModel::lm_head_s(double t, bool backward) const {
  const double h = static_cast<double>(model_.hidden);
  const int tp = parallel_.tp;
  const double gemm = gemm_s(t, h, vocab_local_);
  const double ce_bytes = training_.cross_entropy == CrossEntropy::kFused ? 6 : 12;
  const double elementwise = elementwise_s(t * (8 * h + ce_bytes * vocab_local_));
  const double input_bytes = 2 * t * h;
  if (backward) {
    const double comm = parallel_.sp ? reduce_scatter_s(input_bytes, tp, tp_link_)
                                     : all_reduce_s(input_bytes, tp, tp_link_);
    return {.gemm = 2 * gemm, .elementwise = elementwise, .comm = comm};
  }
  const double comm = (parallel_.sp ? all_gather_s(input_bytes, tp, tp_link_) : 0) +
                      3 * all_reduce_s(4 * t, tp, tp_link_);
  return {.gemm = gemm, .elementwise = elementwise, .comm = comm};
}

// Megatron's --tp-comm-overlap (Transformer Engine userbuffers) pipelines each TP collective
// with the GEMM next to it: what the GEMMs take longer than hides the collective.
double AnalyticalCostModel::exposed_tp_comm(const LayerSeconds& layer, double gemm_factor) const {
  if (!overlap_.tp_comm) return layer.tp_comm;
  return std::max(0.0, layer.tp_comm - gemm_factor * layer.gemm);
}

// Forward passes (F, F*, R) cost the same; the backward costs 2× the GEMMs (dgrad and
// wgrad), 2.5× FlashAttention (its backward recomputes QKᵀ: 5 matmuls against 2,
// docs/COSTS-REFERENCE.md §2.2; 2× for the unfused path, which kept the scores), 2×
// elementwise, the same TP collectives as the forward, plus the policy's recompute: selective
// redoes core attention's forward (Megatron's default recompute module core_attn), full redoes
// the whole layer forward with its collectives. Context parallelism adds its exposed
// communication per layer and pass.
// Overheads that do not scale with work: every kernel costs the GPU gpu.kernel_launch_s beyond
// its work, and the host needs gpu.host_kernel_s to issue it plus gpu.microbatch_s per
// micro-batch pass (Megatron's forward_step / backward_step); the GPU cannot run ahead of the
// host, so the op takes the longer of the two. On a CPU that is its own device
// (gpu.host_runs_kernels: a file fitted to a CPU-only profile) one thread does both, so they
// add.
// The same seconds by class are OpTime::class_ns: GEMMs (the LM head's too, and an unfused
// attention's two batched matmuls, which a profile shows as GEMM kernels), attention
// (recomputed attention included; unfused: its mask and softmax), elementwise (norms, residuals,
// embedding, loss, CP merges), collective (TP and CP, as far as exposed); launch overheads and the
// host's excess are other.
OpTime AnalyticalCostModel::op_time(const OpQuery& query) const {
  return op_time(query, layer_forward_seconds(query.tokens, query.spans));
}

void AnalyticalCostModel::op_times(std::span<const OpQuery> queries, std::span<OpTime> out) const {
  CF_CHECK_EQ(queries.size(), out.size());
  if (queries.empty()) return;
  const OpQuery& first = queries.front();
  const LayerSeconds layer = layer_forward_seconds(first.tokens, first.spans);
  for (size_t i = 0; i < queries.size(); ++i) {
    CF_CHECK(queries[i].tokens == first.tokens && queries[i].spans.data() == first.spans.data() &&
             queries[i].spans.size() == first.spans.size())
        << "op_times: queries of different chunks";
    out[i] = op_time(queries[i], layer);
  }
}

OpTime AnalyticalCostModel::op_time(const OpQuery& query, const LayerSeconds& layer) const {
  const double layers = static_cast<double>(query.layers);
  const bool backward = query.pass == Pass::kBackward;
  const double attention_backward = model_.flash_attention ? 2.5 : 2.0;
  double compute_s = 0, recompute_s = 0, comm_s = 0;
  Parts split;  // the same seconds by class, recompute included
  int kernels = layer_kernels(model_, backward);
  if (!backward) {
    compute_s = layers * (layer.gemm + layer.attention + layer.elementwise);
    comm_s = layers * (exposed_tp_comm(layer, 1) + layer.cp_comm_forward);
    split = {layers * layer.gemm, layers * layer.attention, layers * layer.elementwise, comm_s};
    split.move_attention_matmul(layers * layer.attention_matmul);
  } else {
    compute_s = layers * (2 * layer.gemm + attention_backward * layer.attention +
                          2 * layer.elementwise + layer.cp_backward_extra);
    comm_s = layers * (exposed_tp_comm(layer, 2) + layer.cp_comm_backward);
    split = {layers * 2 * layer.gemm, layers * attention_backward * layer.attention,
             layers * (2 * layer.elementwise + layer.cp_backward_extra), comm_s};
    split.move_attention_matmul(layers * attention_backward * layer.attention_matmul);
    if (parallel_.recompute == Recompute::kSelective) {
      recompute_s = layers * layer.attention;
      split.attention += recompute_s;
      split.move_attention_matmul(layers * layer.attention_matmul);
      kernels += 1;
    } else if (parallel_.recompute == Recompute::kFull) {
      recompute_s = layers * (layer.gemm + layer.attention + layer.elementwise +
                              exposed_tp_comm(layer, 1) + layer.cp_comm_forward);
      split.gemm += layers * layer.gemm;
      split.attention += layers * layer.attention;
      split.move_attention_matmul(layers * layer.attention_matmul);
      split.elementwise += layers * layer.elementwise;
      split.comm += layers * (exposed_tp_comm(layer, 1) + layer.cp_comm_forward);
      kernels += layer_kernels(model_, false);
    }
  }
  const double t = local_tokens(query.tokens);
  if (query.embedding) {
    const Parts p = embedding_s(t, backward);
    compute_s += p.sum();
    split += p;
  }
  if (query.lm_head) {
    const Parts p = lm_head_s(t, backward);
    compute_s += p.sum();
    split += p;
  }
  const double launches = layers * kernels;
  OpTime time;
  time.recompute_ns = to_ns(recompute_s);
  time.comm_ns = to_ns(comm_s);
  const int64_t device_ns =
      to_ns(compute_s + launches * gpu_.kernel_launch_s) + time.recompute_ns + time.comm_ns;
  const int64_t host_ns = to_ns(launches * gpu_.host_kernel_s + gpu_.microbatch_s);
  time.total_ns = gpu_.host_runs_kernels ? device_ns + host_ns : std::max(device_ns, host_ns);
  time.class_ns =
      class_split(split.gemm, split.attention, split.elementwise, split.comm, time.total_ns);
  return time;
}

// Point-to-point: T = α + n/β (docs/COSTS-REFERENCE.md §6.1), NVLink when both stages' GPUs share a
// node, else InfiniBand. Megatron-LM with variable_seq_lengths first exchanges a 24-byte
// shape tensor (p2p_communication.py _communicate_shapes): one more latency. With context
// parallelism each CP rank sends its own share to its peer of the next stage.
int64_t AnalyticalCostModel::p2p_time_ns(const P2pQuery& query) const {
  const int tp = parallel_.tp, cp = parallel_.cp, dp = parallel_.dp;
  const Link link = link_between(first_gpu(tp, cp, dp, query.dp_rank, query.from_stage),
                                 first_gpu(tp, cp, dp, query.dp_rank, query.to_stage));
  return to_ns(2 * link.latency_s +
               static_cast<double>(query.bytes) / cp / link.bandwidth_bytes_per_s);
}

// The gradients of a stage are reduced over its dp·cp GPUs (Megatron-Core's data-parallel
// group with context parallelism), which span tp·cp·dp consecutive GPUs at stride tp: NVLink
// when the first and last share a node. 4 B per parameter for fp32 main grads
// (--accumulate-allreduce-grads-in-fp32), 2 B in bf16: reduce-scatter with the distributed
// optimizer, all-reduce without (docs/COSTS-REFERENCE.md §6.2).
int64_t AnalyticalCostModel::dp_reduce_time_ns(int stage) const {
  const int tp = parallel_.tp, cp = parallel_.cp, dp = parallel_.dp;
  const int group = dp * cp;
  if (group <= 1) return 0;
  const Link link = group_link(first_gpu(tp, cp, dp, 0, stage), tp, group);
  const double bytes_per_grad = training_.grad_accumulation_dtype == GradDtype::kBf16 ? 2 : 4;
  const double grad_bytes = bytes_per_grad * stage_local_parameters(model_, tp, split_, stage);
  return to_ns(parallel_.distributed_optimizer ? reduce_scatter_s(grad_bytes, group, link)
                                               : all_reduce_s(grad_bytes, group, link));
}

// [derived] Adam over this GPU's shard, memory-bound: reads fp32 grad, master, m, v (16 B),
// writes master, m, v (12 B) and the bf16 weight (2 B): 30 B per parameter. The distributed
// optimizer then all-gathers the updated bf16 weights over dp·cp; with overlap.param_gather
// (Megatron's --overlap-param-gather) that gather runs behind the next step's forward and is
// not counted here.
int64_t AnalyticalCostModel::optimizer_time_ns(int stage) const {
  const int tp = parallel_.tp, cp = parallel_.cp, dp = parallel_.dp;
  const int group = dp * cp;
  const double params = static_cast<double>(stage_local_parameters(model_, tp, split_, stage));
  double seconds = 0;
  if (parallel_.distributed_optimizer && group > 1) {
    const Link link = group_link(first_gpu(tp, cp, dp, 0, stage), tp, group);
    seconds = elementwise_s(30 * params / group) +
              (overlap_.param_gather ? 0 : all_gather_s(2 * params, group, link));
  } else {
    seconds = elementwise_s(30 * params);
  }
  return to_ns(seconds);
}

}  // namespace cf

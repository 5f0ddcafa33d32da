// The cost models: unit times, the ring collective formulas, and the analytical model's
// structure (FLOP totals, packed attention Σℓ², backward ratios, recompute, link choice),
// checked on a GPU spec built so the arithmetic is exact.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "models/hardware.h"
#include "models/model.h"
#include "sim/cost_analytical.h"
#include "sim/cost_unit.h"
#include "sim/memory_model.h"
#include "tests/support/presets.h"

namespace cf {
namespace {

TEST(UnitCost, ForwardIsTokensBackwardTwice) {
  const UnitCostModel unit;
  OpQuery q;
  q.tokens = 17;
  q.layers = 3;
  for (Pass pass : {Pass::kForward, Pass::kForwardKeepKV, Pass::kRecompute}) {
    q.pass = pass;
    EXPECT_EQ(unit.op_time(q).total_ns, 17 * UnitCostModel::kUnitNsPerToken);
  }
  q.pass = Pass::kBackward;
  EXPECT_EQ(unit.op_time(q).total_ns, 34 * UnitCostModel::kUnitNsPerToken);
  EXPECT_EQ(unit.p2p_time_ns(P2pQuery{0, 0, 1, 1 << 20}), 0);
  EXPECT_EQ(unit.dp_reduce_time_ns(0) + unit.optimizer_time_ns(0), 0);
}

// nccl-tests: all-reduce moves 2(n−1)/n·S, reduce-scatter and all-gather (n−1)/n·S.
TEST(Collectives, RingFormulas) {
  const Link link{1e9, 0};
  EXPECT_DOUBLE_EQ(all_reduce_s(8e9, 8, link), 14.0);
  EXPECT_DOUBLE_EQ(reduce_scatter_s(8e9, 8, link), 7.0);
  EXPECT_DOUBLE_EQ(all_gather_s(8e9, 8, link), 7.0);
  EXPECT_EQ(all_reduce_s(8e9, 1, link), 0.0);
  const Link slow{1e9, 1e-3};
  EXPECT_DOUBLE_EQ(all_reduce_s(3e9, 3, slow), 4 * 1e-3 + 4.0);
}

// Peak 1e12 FLOP/s, every efficiency 1, HBM 1e12 B/s, NVLink 1e11 B/s, IB 1e10 B/s, no latency.
GpuSpec exact_gpu() {
  GpuSpec gpu;
  gpu.name = "exact";
  gpu.peak_bf16_flops = 1e12;
  gpu.hbm_bytes = int64_t{80} << 30;
  gpu.hbm_bandwidth_bytes_per_s = 1e12;
  gpu.nvlink_bandwidth_bytes_per_s = 1e11;
  gpu.ib_bandwidth_bytes_per_s = 1e10;
  gpu.attention_efficiency = 1;
  gpu.memory_efficiency = 1;
  gpu.collective_efficiency = 1;
  return gpu;
}

ParallelConfig parallel(int tp, int pp, int dp, Recompute recompute = Recompute::kNone) {
  ParallelConfig p;
  p.tp = tp;
  p.pp = pp;
  p.dp = dp;
  p.recompute = recompute;
  return p;
}

TEST(AnalyticalCost, GemmFlopsMatchTheModelsCount) {
  const ModelConfig model = test::shipped_model("tiny");
  for (int tp : {1, 2}) {
    const AnalyticalCostModel cost(model, exact_gpu(), 8, parallel(tp, 1, 1));
    const AttentionSpan span{101, 0};
    const auto layer = cost.layer_forward_seconds(101, {&span, 1});
    EXPECT_NEAR(layer.gemm * 1e12, 101 * model.linear_flops_per_token_per_layer() / tp, 1e-3);
    EXPECT_NEAR(layer.attention * 1e12,
                101.0 * 102 / 2 * model.attention_flops_per_pair_per_layer() / tp, 1e-3);
  }
}

// Two packed sequences of 100 cost Σℓ(ℓ+1)/2 pairs, not (Σℓ)(Σℓ+1)/2; a dependent piece of
// 100 after a prefix of 300 costs 100·300 + 100·101/2.
TEST(AnalyticalCost, AttentionPairsOfPackedAndDependentChunks) {
  const AnalyticalCostModel cost(test::shipped_model("tiny"), exact_gpu(), 8, parallel(1, 1, 1));
  const AttentionSpan packed[] = {{100, 0}, {100, 0}};
  const AttentionSpan whole{200, 0};
  const AttentionSpan dependent{100, 300};
  const AttentionSpan one{1, 0};  // one query, one key: 1 pair
  const double per_pair = cost.layer_forward_seconds(1, {&one, 1}).attention;
  EXPECT_NEAR(cost.layer_forward_seconds(200, packed).attention / per_pair, 10100, 1e-6);
  EXPECT_NEAR(cost.layer_forward_seconds(200, {&whole, 1}).attention / per_pair, 20100, 1e-6);
  EXPECT_NEAR(cost.layer_forward_seconds(100, {&dependent, 1}).attention / per_pair, 35050, 1e-6);
}

OpQuery op(Pass pass, const AttentionSpan* span, int64_t layers) {
  OpQuery q;
  q.pass = pass;
  q.layers = layers;
  q.tokens = span->q_len;
  q.spans = {span, 1};
  return q;
}

// tp = 1: no collectives. B = 2·GEMM + 2.5·attention + 2·elementwise per layer; selective
// adds attention's forward, full the whole forward; F, F*, R cost the same.
TEST(AnalyticalCost, BackwardAndRecompute) {
  const ModelConfig model = test::shipped_model("tiny");
  const AttentionSpan span{333, 0};
  const AnalyticalCostModel none(model, exact_gpu(), 8, parallel(1, 1, 1));
  const auto layer = none.layer_forward_seconds(333, {&span, 1});
  const int64_t f = none.op_time(op(Pass::kForward, &span, 3)).total_ns;
  EXPECT_EQ(f, std::llround(3e9 * (layer.gemm + layer.attention + layer.elementwise)));
  EXPECT_EQ(none.op_time(op(Pass::kForwardKeepKV, &span, 3)).total_ns, f);
  EXPECT_EQ(none.op_time(op(Pass::kRecompute, &span, 3)).total_ns, f);
  const OpTime b = none.op_time(op(Pass::kBackward, &span, 3));
  EXPECT_EQ(b.total_ns,
            std::llround(3e9 * (2 * layer.gemm + 2.5 * layer.attention + 2 * layer.elementwise)));
  EXPECT_EQ(b.recompute_ns, 0);
  EXPECT_EQ(b.comm_ns, 0);
  const AnalyticalCostModel selective(model, exact_gpu(), 8,
                                      parallel(1, 1, 1, Recompute::kSelective));
  const OpTime bs = selective.op_time(op(Pass::kBackward, &span, 3));
  EXPECT_EQ(bs.recompute_ns, std::llround(3e9 * layer.attention));
  EXPECT_EQ(bs.total_ns - bs.recompute_ns, b.total_ns);
  const AnalyticalCostModel full(model, exact_gpu(), 8, parallel(1, 1, 1, Recompute::kFull));
  const OpTime bf = full.op_time(op(Pass::kBackward, &span, 3));
  EXPECT_NEAR(bf.recompute_ns, f, 1);
  EXPECT_EQ(bf.total_ns - bf.recompute_ns, b.total_ns);
}

// TP collectives per layer: 2 all-reduces of (t, h) bf16 forward and backward, over NVLink.
TEST(AnalyticalCost, TensorParallelCommunication) {
  const ModelConfig model = test::shipped_model("tiny");
  const AttentionSpan span{1000, 0};
  const AnalyticalCostModel cost(model, exact_gpu(), 8, parallel(2, 1, 1));
  const double ar = all_reduce_s(2.0 * 1000 * 64, 2, Link{1e11, 0});
  EXPECT_EQ(cost.op_time(op(Pass::kForward, &span, 2)).comm_ns, std::llround(2 * 2 * ar * 1e9));
  EXPECT_EQ(cost.op_time(op(Pass::kBackward, &span, 2)).comm_ns, std::llround(2 * 2 * ar * 1e9));
}

// tp 4, dp 1, 8 GPUs per node: stages 0 and 1 share node 0 (NVLink), stage 2 is on node 1
// (InfiniBand). 2 latencies (shape message + payload) are 0 here.
TEST(AnalyticalCost, PipelineLinkFollowsPlacement) {
  const AnalyticalCostModel cost(test::shipped_model("tiny"), exact_gpu(), 8, parallel(4, 4, 1));
  EXPECT_EQ(cost.p2p_time_ns(P2pQuery{0, 0, 1, 100000}), 1000);   // 1e5 B / 1e11 B/s
  EXPECT_EQ(cost.p2p_time_ns(P2pQuery{0, 1, 2, 100000}), 10000);  // 1e5 B / 1e10 B/s
  EXPECT_EQ(first_gpu(4, 1, 2, 1, 3), 4 * (1 + 2 * 3));
  EXPECT_EQ(first_gpu(4, 2, 2, 1, 3), 8 * (1 + 2 * 3));
}

// DP: reduce-scatter of fp32 gradients with the distributed optimizer, all-reduce without.
TEST(AnalyticalCost, DataParallelReduction) {
  const ModelConfig model = test::shipped_model("tiny");
  ParallelConfig p = parallel(1, 1, 4);
  const double grads = 4.0 * stage_local_parameters(model, 1, LayerSplit{1, 1, model.layers}, 0);
  const Link nvlink{1e11, 0};
  const AnalyticalCostModel distributed(model, exact_gpu(), 8, p);
  EXPECT_EQ(distributed.dp_reduce_time_ns(0),
            std::llround(reduce_scatter_s(grads, 4, nvlink) * 1e9));
  p.distributed_optimizer = false;
  const AnalyticalCostModel plain(model, exact_gpu(), 8, p);
  EXPECT_EQ(plain.dp_reduce_time_ns(0), std::llround(all_reduce_s(grads, 4, nvlink) * 1e9));
  EXPECT_GT(plain.optimizer_time_ns(0), 0);
  EXPECT_EQ(AnalyticalCostModel(model, exact_gpu(), 8, parallel(1, 1, 1)).dp_reduce_time_ns(0), 0);
}

}  // namespace
}  // namespace cf

namespace cf {
namespace {

ParallelConfig with_cp(int cp, CpComm comm) {
  ParallelConfig p = parallel(1, 1, 1);
  p.cp = cp;
  p.cp_comm = comm;
  return p;
}

// Context parallelism: a GPU does the linear work of tokens / cp and 1/cp of the attention
// pairs (load-balanced); each variant's communication follows its formula.
TEST(AnalyticalCost, ContextParallelShareAndCommunication) {
  const ModelConfig model = test::shipped_model("tiny");
  const AttentionSpan span{1000, 0};
  const AnalyticalCostModel one(model, exact_gpu(), 8, with_cp(1, CpComm::kP2p));
  const auto whole = one.layer_forward_seconds(1000, {&span, 1});
  const auto half = one.layer_forward_seconds(500, {&span, 1});  // tokens 500, pairs of 1000
  for (CpComm comm : {CpComm::kP2p, CpComm::kAllGather, CpComm::kA2a}) {
    SCOPED_TRACE(to_string(comm));
    const AnalyticalCostModel two(model, exact_gpu(), 8, with_cp(2, comm));
    const auto layer = two.layer_forward_seconds(1000, {&span, 1});
    EXPECT_DOUBLE_EQ(layer.gemm, half.gemm);
    EXPECT_DOUBLE_EQ(layer.attention, whole.attention / 2);
    const double kv_block = 2 * 500.0 * model.kv_width() * 2;  // K and V of 500 tokens, bf16
    const Link nvlink{1e11, 0};
    if (comm == CpComm::kAllGather) {
      EXPECT_DOUBLE_EQ(layer.cp_comm_forward, all_gather_s(2 * kv_block, 2, nvlink));
      EXPECT_DOUBLE_EQ(layer.cp_comm_backward, all_gather_s(2 * kv_block, 2, nvlink) +
                                                   reduce_scatter_s(2 * kv_block, 2, nvlink));
    } else if (comm == CpComm::kP2p) {
      // One ring step of kv_block against the attention it overlaps.
      EXPECT_DOUBLE_EQ(layer.cp_comm_forward, std::max(0.0, kv_block / 1e11 - layer.attention));
      EXPECT_GT(layer.elementwise, half.elementwise);  // the output merge
    } else {
      // Q, K, V out and the output back: half of each GPU's share crosses the link.
      const double moved =
          0.5 * 2 * 500.0 * (model.q_width() + 2 * model.kv_width() + model.q_width());
      EXPECT_NEAR(layer.cp_comm_forward, moved / 1e11, 1e-15);
      EXPECT_DOUBLE_EQ(layer.cp_comm_backward, layer.cp_comm_forward);
    }
  }
}

// FlashAttention's tiles: with 128-token tiles a 1-token segment costs a whole tile, a
// 300-token one 3·4/2 = 6 tiles, a 100-token piece after a 200-token prefix 1·2 + 1 tiles.
TEST(AnalyticalCost, AttentionInWholeTiles) {
  const ModelConfig model = test::shipped_model("tiny");
  GpuSpec tiled = exact_gpu();
  tiled.attention_block = 128;
  const AnalyticalCostModel exact(model, exact_gpu(), 8, parallel(1, 1, 1));
  const AnalyticalCostModel tiles(model, tiled, 8, parallel(1, 1, 1));
  const AttentionSpan one{1, 0};
  const double per_pair = exact.layer_forward_seconds(1, {&one, 1}).attention;
  const AttentionSpan cases[] = {{1, 0}, {300, 0}, {100, 200}};
  const double expected_tiles[] = {1, 6, 3};
  for (int i = 0; i < 3; ++i) {
    EXPECT_NEAR(tiles.layer_forward_seconds(cases[i].q_len, {&cases[i], 1}).attention / per_pair,
                expected_tiles[i] * 128 * 128, 1e-6);
  }
}

// Overheads: every kernel adds kernel_launch_s on the GPU; when the host's issue time
// (host_kernel_s per kernel + microbatch_s) is longer than the GPU's, the op takes that.
TEST(AnalyticalCost, KernelAndHostOverheads) {
  const ModelConfig model = test::shipped_model("tiny");
  const AttentionSpan span{7, 0};
  GpuSpec launch = exact_gpu();
  launch.kernel_launch_s = 1e-6;
  const AnalyticalCostModel plain(model, exact_gpu(), 8, parallel(1, 1, 1));
  const AnalyticalCostModel launched(model, launch, 8, parallel(1, 1, 1));
  const int64_t f = plain.op_time(op(Pass::kForward, &span, 3)).total_ns;
  EXPECT_NEAR(launched.op_time(op(Pass::kForward, &span, 3)).total_ns - f,
              3 * layer_kernels(model, false) * 1000, 1);
  GpuSpec host = exact_gpu();
  host.host_kernel_s = 1e-3;
  host.microbatch_s = 5e-3;
  const AnalyticalCostModel slow_host(model, host, 8, parallel(1, 1, 1));
  EXPECT_EQ(slow_host.op_time(op(Pass::kBackward, &span, 3)).total_ns,
            std::llround((3 * layer_kernels(model, true) * 1e-3 + 5e-3) * 1e9));
}

// A CPU that is its own device (host_runs_kernels) spends the host's time and the ops' work one
// after the other: the op takes their sum, where a GPU's takes the longer; the time beyond the
// work is "other".
TEST(AnalyticalCost, HostTimeAddsWhenTheHostRunsTheKernels) {
  const ModelConfig model = test::shipped_model("tiny");
  for (const int64_t tokens : {7, 333, 4099}) {
    const AttentionSpan span{tokens, 0};
    for (const Pass pass : {Pass::kForward, Pass::kBackward}) {
      GpuSpec fast_host = exact_gpu();
      fast_host.microbatch_s = 1e-9;  // far less than the op's work
      GpuSpec cpu = fast_host;
      cpu.host_runs_kernels = true;
      cpu.microbatch_s = 2.5e-4;
      cpu.host_kernel_s = 1e-6;
      const AnalyticalCostModel plain(model, exact_gpu(), 8, parallel(1, 1, 1));
      const AnalyticalCostModel gpu(model, fast_host, 8, parallel(1, 1, 1));
      const AnalyticalCostModel host_is_device(model, cpu, 8, parallel(1, 1, 1));
      const OpTime work = plain.op_time(op(pass, &span, 2));
      EXPECT_EQ(gpu.op_time(op(pass, &span, 2)).total_ns, work.total_ns) << tokens;
      const OpTime t = host_is_device.op_time(op(pass, &span, 2));
      const double host_s = 2 * layer_kernels(model, pass == Pass::kBackward) * 1e-6 + 2.5e-4;
      EXPECT_EQ(t.total_ns, work.total_ns + std::llround(host_s * 1e9)) << tokens;
      ASSERT_TRUE(t.class_ns.has_value() && work.class_ns.has_value());
      int64_t classes = 0;
      for (int c = 0; c < kKernelClassCount; ++c) classes += (*t.class_ns)[c];
      EXPECT_EQ(classes, t.total_ns);
      const int other = static_cast<int>(KernelClass::kOther);
      // Each class is rounded to ns on its own: "other" is the remainder, within a few ns.
      EXPECT_NEAR((*t.class_ns)[other], (*work.class_ns)[other] + std::llround(host_s * 1e9), 4)
          << tokens;
    }
  }
}

// Overlap: with overlap.tp_comm only what the GEMMs do not cover is exposed; with
// overlap.param_gather the optimizer step leaves out the distributed optimizer's all-gather;
// bf16 gradients halve the reduce-scatter's bandwidth term.
TEST(AnalyticalCost, OverlapAndGradientDtype) {
  const ModelConfig model = test::shipped_model("tiny");
  const AttentionSpan span{64, 0};
  ParallelConfig p = parallel(2, 1, 4);
  p.distributed_optimizer = true;
  OverlapConfig overlap;
  overlap.tp_comm = true;
  overlap.param_gather = true;
  const AnalyticalCostModel plain(model, exact_gpu(), 8, p);
  const AnalyticalCostModel overlapped(model, exact_gpu(), 8, p, TrainingConfig{}, overlap);
  const auto layer = plain.layer_forward_seconds(64, {&span, 1});
  const OpTime f = plain.op_time(op(Pass::kForward, &span, 2));
  const OpTime fo = overlapped.op_time(op(Pass::kForward, &span, 2));
  EXPECT_EQ(f.comm_ns, std::llround(2e9 * layer.tp_comm));
  EXPECT_EQ(fo.comm_ns, std::llround(2e9 * std::max(0.0, layer.tp_comm - layer.gemm)));
  EXPECT_LT(overlapped.optimizer_time_ns(0), plain.optimizer_time_ns(0));
  TrainingConfig bf16;
  bf16.grad_accumulation_dtype = GradDtype::kBf16;
  const AnalyticalCostModel half(model, exact_gpu(), 8, p, bf16);
  const double grads = stage_local_parameters(model, 2, LayerSplit{1, 1, model.layers}, 0);
  EXPECT_EQ(half.dp_reduce_time_ns(0),
            std::llround(reduce_scatter_s(2 * grads, 4, Link{1e11, 0}) * 1e9));
  EXPECT_EQ(plain.dp_reduce_time_ns(0),
            std::llround(reduce_scatter_s(4 * grads, 4, Link{1e11, 0}) * 1e9));
}

// op_times prices several ops of one chunk at once: each exactly what op_time gives it, over
// passes, places (layers, embedding, LM head), recompute policies, TP, CP and packed spans.
TEST(AnalyticalCost, OpTimesAreOpTimeForEachQuery) {
  const ModelConfig model = load_model("qwen2.5-7b").value();
  GpuSpec gpu = load_gpu("h100-sxm-80g").value();
  std::mt19937_64 rng(29);
  for (int trial = 0; trial < 30; ++trial) {
    ParallelConfig p = parallel(1 << (rng() % 3), 1, 1, static_cast<Recompute>(rng() % 3));
    p.cp = 1 << (rng() % 3);
    p.sp = p.tp > 1;
    const AnalyticalCostModel cost(model, gpu, 8, p);
    std::vector<AttentionSpan> spans;
    int64_t tokens = 0;
    const int segments = 1 + static_cast<int>(rng() % 5);
    for (int i = 0; i < segments; ++i) {
      const int64_t q = 1 + static_cast<int64_t>(rng() % 3000);
      spans.push_back(AttentionSpan{q, static_cast<int64_t>(rng() % 2 ? 0 : rng() % 9000)});
      tokens += q;
    }
    std::vector<OpQuery> queries;
    for (Pass pass : {Pass::kForward, Pass::kForwardKeepKV, Pass::kRecompute, Pass::kBackward}) {
      for (int place = 0; place < 3; ++place) {
        OpQuery q;
        q.pass = pass;
        q.layers = 1 + static_cast<int64_t>(rng() % 9);
        q.embedding = place == 0;
        q.lm_head = place == 2;
        q.tokens = tokens;
        q.spans = spans;
        queries.push_back(q);
      }
    }
    std::vector<OpTime> out(queries.size());
    cost.op_times(queries, out);
    for (size_t i = 0; i < queries.size(); ++i) {
      const OpTime one = cost.op_time(queries[i]);
      EXPECT_EQ(out[i].total_ns, one.total_ns) << "trial " << trial << " query " << i;
      EXPECT_EQ(out[i].recompute_ns, one.recompute_ns);
      EXPECT_EQ(out[i].comm_ns, one.comm_ns);
      EXPECT_EQ(out[i].class_ns, one.class_ns);
      // The class split is whole: every op's, embedding and LM head included, sums to it.
      ASSERT_TRUE(one.class_ns.has_value());
      int64_t sum = 0;
      for (int64_t ns : *one.class_ns) {
        EXPECT_GE(ns, 0);
        sum += ns;
      }
      EXPECT_EQ(sum, one.total_ns) << "trial " << trial << " query " << i;
      EXPECT_GT((*one.class_ns)[static_cast<int>(KernelClass::kGemm)], 0);
      EXPECT_EQ((*one.class_ns)[static_cast<int>(KernelClass::kMemcpy)], 0);
    }
  }
}

int64_t class_ns(const OpTime& t, KernelClass kind) {
  return (*t.class_ns)[static_cast<int>(kind)];
}

// The class split of an op: each part of the layer's seconds in its class (backward: 2·GEMM,
// 2.5·attention, 2·elementwise; selective recompute adds attention's forward), the TP
// collectives as collective, and what is left of the total — launch overheads, or the host's
// time when it sets the op's — as other. The unit model has none.
TEST(AnalyticalCost, ClassSplitOfAnOp) {
  const ModelConfig model = test::shipped_model("tiny");
  const AttentionSpan span{333, 0};
  const AnalyticalCostModel selective(model, exact_gpu(), 8,
                                      parallel(1, 1, 1, Recompute::kSelective));
  const auto layer = selective.layer_forward_seconds(333, {&span, 1});
  const OpTime f = selective.op_time(op(Pass::kForward, &span, 3));
  // Within 1 ns: the parts are rounded one by one (and the largest may give back a rounding).
  EXPECT_NEAR(class_ns(f, KernelClass::kGemm), 3e9 * layer.gemm, 1);
  EXPECT_NEAR(class_ns(f, KernelClass::kAttention), 3e9 * layer.attention, 1);
  EXPECT_NEAR(class_ns(f, KernelClass::kElementwise), 3e9 * layer.elementwise, 1);
  EXPECT_EQ(class_ns(f, KernelClass::kCollective), 0);
  EXPECT_LE(class_ns(f, KernelClass::kOther), 2);  // rounding only: no launch cost here
  const OpTime b = selective.op_time(op(Pass::kBackward, &span, 3));
  EXPECT_NEAR(class_ns(b, KernelClass::kGemm), 3e9 * 2 * layer.gemm, 1);
  EXPECT_NEAR(class_ns(b, KernelClass::kAttention), 3e9 * 3.5 * layer.attention, 1);

  const AnalyticalCostModel tp2(model, exact_gpu(), 8, parallel(2, 1, 1));
  const OpTime f2 = tp2.op_time(op(Pass::kForward, &span, 3));
  EXPECT_GT(f2.comm_ns, 0);
  EXPECT_EQ(class_ns(f2, KernelClass::kCollective), f2.comm_ns);

  GpuSpec host = exact_gpu();
  host.microbatch_s = 5e-3;  // the host sets the op's time: the rest of it is "other"
  const AnalyticalCostModel slow_host(model, host, 8, parallel(1, 1, 1));
  const OpTime fh = slow_host.op_time(op(Pass::kForward, &span, 3));
  EXPECT_EQ(fh.total_ns, 5'000'000);
  EXPECT_EQ(class_ns(fh, KernelClass::kGemm), class_ns(f, KernelClass::kGemm));
  int64_t work = 0;
  for (KernelClass kind : {KernelClass::kGemm, KernelClass::kAttention, KernelClass::kElementwise,
                           KernelClass::kCollective}) {
    work += class_ns(fh, kind);
  }
  EXPECT_EQ(class_ns(fh, KernelClass::kOther), fh.total_ns - work);

  // Unfused attention: its two batched matmuls are GEMM kernels in a profile, its mask and
  // softmax the attention class; the op's time is the same either way.
  ModelConfig unfused_model = model;
  unfused_model.flash_attention = false;
  const AnalyticalCostModel unfused(unfused_model, exact_gpu(), 8,
                                    parallel(1, 1, 1, Recompute::kSelective));
  const auto u = unfused.layer_forward_seconds(333, {&span, 1});
  ASSERT_GT(u.attention_matmul, 0);
  ASSERT_LT(u.attention_matmul, u.attention);
  const OpTime uf = unfused.op_time(op(Pass::kForward, &span, 3));
  EXPECT_NEAR(class_ns(uf, KernelClass::kGemm), 3e9 * (u.gemm + u.attention_matmul), 1);
  EXPECT_NEAR(class_ns(uf, KernelClass::kAttention), 3e9 * (u.attention - u.attention_matmul), 1);
  // The backward: 2× the unfused attention, plus the selective recompute of its forward.
  const OpTime ub = unfused.op_time(op(Pass::kBackward, &span, 3));
  EXPECT_NEAR(class_ns(ub, KernelClass::kGemm), 3e9 * (2 * u.gemm + 3 * u.attention_matmul), 2);
  EXPECT_NEAR(class_ns(ub, KernelClass::kAttention), 3e9 * 3 * (u.attention - u.attention_matmul),
              2);
  EXPECT_EQ(layer.attention_matmul, 0);  // FlashAttention's is all attention

  EXPECT_FALSE(UnitCostModel().op_time(op(Pass::kForward, &span, 3)).class_ns.has_value());
}

}  // namespace
}  // namespace cf

// The cost models: unit times, the ring collective formulas, and the analytical model's
// structure (FLOP totals, packed attention Σℓ², backward ratios, recompute, link choice),
// checked on a GPU spec built so the arithmetic is exact.
#include <gtest/gtest.h>

#include <cmath>

#include "models/model.h"
#include "sim/cost_analytical.h"
#include "sim/cost_unit.h"
#include "sim/memory_model.h"

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

ModelConfig tiny() {
  StatusOr<ModelConfig> model = load_model("tiny");
  CF_CHECK(model.ok()) << model.status().message();
  return *model;
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
  const ModelConfig model = tiny();
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
  const AnalyticalCostModel cost(tiny(), exact_gpu(), 8, parallel(1, 1, 1));
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
  const ModelConfig model = tiny();
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
  const ModelConfig model = tiny();
  const AttentionSpan span{1000, 0};
  const AnalyticalCostModel cost(model, exact_gpu(), 8, parallel(2, 1, 1));
  const double ar = all_reduce_s(2.0 * 1000 * 64, 2, Link{1e11, 0});
  EXPECT_EQ(cost.op_time(op(Pass::kForward, &span, 2)).comm_ns, std::llround(2 * 2 * ar * 1e9));
  EXPECT_EQ(cost.op_time(op(Pass::kBackward, &span, 2)).comm_ns, std::llround(2 * 2 * ar * 1e9));
}

// tp 4, dp 1, 8 GPUs per node: stages 0 and 1 share node 0 (NVLink), stage 2 is on node 1
// (InfiniBand). 2 latencies (shape message + payload) are 0 here.
TEST(AnalyticalCost, PipelineLinkFollowsPlacement) {
  const AnalyticalCostModel cost(tiny(), exact_gpu(), 8, parallel(4, 4, 1));
  EXPECT_EQ(cost.p2p_time_ns(P2pQuery{0, 0, 1, 100000}), 1000);   // 1e5 B / 1e11 B/s
  EXPECT_EQ(cost.p2p_time_ns(P2pQuery{0, 1, 2, 100000}), 10000);  // 1e5 B / 1e10 B/s
  EXPECT_EQ(first_gpu(4, 2, 1, 3), 4 * (1 + 2 * 3));
}

// DP: reduce-scatter of fp32 gradients with the distributed optimizer, all-reduce without.
TEST(AnalyticalCost, DataParallelReduction) {
  const ModelConfig model = tiny();
  ParallelConfig p = parallel(1, 1, 4);
  const double grads = 4.0 * stage_local_parameters(model, 1, 1, 1, 0);
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

// Uneven pipeline splits in the simulator: each stage's own layer count reaches the cost model's
// op queries and the memory model (activations, K/V, parameters), a stage with more layers is
// busier by exactly the layer ratio under per-layer unit costs, a job whose split does not fit
// its layout (as the tuner's layouts of another pp) is refused as bad input, and the Qwen2.5-7B
// example's split beats the even one.
#include <gtest/gtest.h>

#include <vector>

#include "sim/cost_analytical.h"
#include "sim/cost_unit.h"
#include "sim/memory_model.h"
#include "sim/memory_source.h"
#include "sim/plan/layer_split.h"
#include "sim/simulator.h"
#include "tests/sim/simulator_test_util.h"

namespace cf {
namespace {

using test::plan_of;
using test::tiny_job;

// One query as a cost model saw it.
struct SeenQuery {
  int stage = 0;
  int64_t layers = 0;
  bool embedding = false;
  bool lm_head = false;
};

// Unit costs per layer: forward (F, F*, R) = tokens × layers units, backward 2× — the unit
// model's shape with the layers counted, so a stage's busy time is proportional to its layers.
// Records every query it prices.
class PerLayerUnitCost final : public CostModel {
 public:
  static constexpr int64_t kNsPerTokenLayer = 1000;
  std::string name() const override { return "per-layer unit"; }
  OpTime op_time(const OpQuery& q) const override {
    seen.push_back({q.stage, q.layers, q.embedding, q.lm_head});
    OpTime t;
    t.total_ns = (q.pass == Pass::kBackward ? 2 : 1) * q.tokens * q.layers * kNsPerTokenLayer;
    return t;
  }
  int64_t p2p_time_ns(const P2pQuery&) const override { return 0; }
  int64_t dp_reduce_time_ns(int) const override { return 0; }
  int64_t optimizer_time_ns(int) const override { return 0; }
  mutable std::vector<SeenQuery> seen;
};

// Busy time of each stage under per-layer unit costs, and the queries seen.
std::vector<int64_t> busy_ns(const Job& job, std::vector<SeenQuery>* seen = nullptr) {
  const PerLayerUnitCost cost;
  StatusOr<SimResult> result = simulate(job, plan_of(job), cost);
  CF_CHECK(result.ok()) << result.status().message();
  std::vector<int64_t> out;
  for (const StageMetrics& st : result->metrics.stages)
    out.push_back(std::llround(st.busy_s * 1e9));
  if (seen != nullptr) *seen = cost.seen;
  return out;
}

// K = 1 on sequences longer than ChunkSize: F, F*, R and B all run on every stage, so stage s
// is busy (its layers) × (the same token work): [1, 3] gives 1 : 3, the even split 2 : 2, and
// the total is the same.
TEST(UnevenStages, BusyTimeFollowsTheLayerRatioExactly) {
  const std::string strategy = "{kind: chunkflow, chunk_size: 5, k: 1}";
  const std::string lengths = "17, 3, 9, 1, 12";
  const std::vector<int64_t> even = busy_ns(tiny_job(1, 2, 1, "", strategy, lengths));
  std::vector<SeenQuery> seen;
  const std::vector<int64_t> uneven =
      busy_ns(tiny_job(1, 2, 1, "layers_per_stage: [1, 3]", strategy, lengths), &seen);
  ASSERT_EQ(even.size(), 2u);
  ASSERT_EQ(uneven.size(), 2u);
  EXPECT_GT(uneven[0], 0);
  EXPECT_EQ(even[0], even[1]);
  EXPECT_EQ(uneven[1], 3 * uneven[0]);
  EXPECT_EQ(2 * uneven[0], even[0]);
  EXPECT_EQ(uneven[0] + uneven[1], even[0] + even[1]);
  // Every op's query carries its stage's layers; the embedding on stage 0, the head on 1.
  ASSERT_FALSE(seen.empty());
  for (const SeenQuery& q : seen) {
    EXPECT_EQ(q.layers, q.stage == 0 ? 1 : 3);
    EXPECT_EQ(q.embedding, q.stage == 0);
    EXPECT_EQ(q.lm_head, q.stage == 1);
  }
  // pp 4 over tiny's 4 layers cannot be uneven with every stage ≥ 1; pp 3 as [1, 1, 2].
  const std::vector<int64_t> three =
      busy_ns(tiny_job(1, 3, 1, "layers_per_stage: [1, 1, 2]", strategy, lengths));
  EXPECT_EQ(three[0], three[1]);
  EXPECT_EQ(three[2], 2 * three[0]);
  EXPECT_EQ(three[0], uneven[0]);  // one layer's work, whatever the pipeline
}

// The analytical model's per-stage terms: each stage's DP reduction and optimizer step follow
// its own parameters (its layers), so the 3-layer stage's are the larger, and the op queries
// reach the model with the split's layers.
TEST(UnevenStages, AnalyticalModelPricesEachStagesLayers) {
  const Job job = tiny_job(1, 2, 2, "layers_per_stage: [1, 3]",
                           "{kind: chunkflow, chunk_size: 8, k: 1}", "17, 3, 9, 1", "analytical");
  StatusOr<std::unique_ptr<CostModel>> cost = make_cost_model(job);
  ASSERT_TRUE(cost.ok()) << cost.status().message();
  EXPECT_GT((*cost)->dp_reduce_time_ns(1), (*cost)->dp_reduce_time_ns(0));
  EXPECT_GT((*cost)->optimizer_time_ns(1), (*cost)->optimizer_time_ns(0));
  // A query without embedding or head grows with its layers: the work and the kernel count
  // scale with them, the per-pass host cost does not, so 1× < time(3 layers) / time(1) ≤ 3×.
  const std::vector<AttentionSpan> spans = {{2048, 0}};
  OpQuery one = op_query(Pass::kForward, 0, 0, 0, stage_place(LayerSplit{2, 1, 4, {1, 3}}, 0, 0),
                         2048, spans);
  EXPECT_EQ(one.layers, 1);
  one.embedding = false;
  OpQuery three = one;
  three.layers = 3;
  const int64_t t1 = (*cost)->op_time(one).total_ns, t3 = (*cost)->op_time(three).total_ns;
  EXPECT_GT(t3, t1);
  EXPECT_LE(t3, 3 * t1 + 3);  // + rounding of each term to ns
}

// Parameters by hand on tiny (43,264 per layer; embedding and LM head 16,384 each; final norm
// 64), [1, 3] at tp 1: stage 0 43,264 + 16,384 = 59,648; stage 1 3 · 43,264 + 64 + 16,384 =
// 146,240 — and at tp 2 a layer's matrices and the vocabulary halve, its two norms (128) do
// not: (43,264 − 128) / 2 + 128 = 21,696 per layer, 8,192 of the vocabulary.
TEST(UnevenStages, StageParametersByHand) {
  const Job job = tiny_job(1, 2, 1, "layers_per_stage: [1, 3]",
                           "{kind: chunkflow, chunk_size: 8, k: 1}", "3", "unit");
  const LayerSplit split = layer_split(job.model.layers, job.parallel);
  EXPECT_EQ(stage_local_parameters(job.model, 1, split, 0), 59648);
  EXPECT_EQ(stage_local_parameters(job.model, 1, split, 1), 146240);
  EXPECT_EQ(stage_local_parameters(job.model, 2, split, 0), 21696 + 8192);
  EXPECT_EQ(stage_local_parameters(job.model, 2, split, 1), 3 * 21696 + 64 + 8192);
  const MemoryModel memory(job.model, job.parallel);
  EXPECT_EQ(memory.model_states(0).weights, 2 * 59648);
  EXPECT_EQ(memory.model_states(1).weights, 2 * 146240);
}

// One sequence of 3 tokens, one micro-batch, pp 2 as [1, 3], recompute none: each stage's
// activation peak is its layers' (1,872 B per token and layer: memory_model_test's tiny
// figure) plus the token ids (8 B per token) on stage 0, the head's inputs and softmax
// (4·64 + 4·256 B per token) on stage 1.
TEST(UnevenStages, ActivationPeaksByHand) {
  const Job job = tiny_job(1, 2, 1, "layers_per_stage: [1, 3]",
                           "{kind: baseline, micro_batching: per_sequence}", "3");
  const UnitCostModel unit;
  StatusOr<SimResult> result = simulate(job, plan_of(job), unit);
  ASSERT_TRUE(result.ok()) << result.status().message();
  EXPECT_EQ(result->metrics.stages[0].peak_breakdown.activations, 3 * (1872 + 8));
  EXPECT_EQ(result->metrics.stages[1].peak_breakdown.activations,
            3 * (3 * 1872 + 4 * 64 + 4 * 256));
  // K/V of a dependent chunk over the op's layers: 2 · 32 · 2 B per token and layer.
  const MemoryModel memory(job.model, job.parallel);
  const LayerSplit split = layer_split(job.model.layers, job.parallel);
  EXPECT_EQ(memory.kv_bytes(stage_place(split, 0, 0), 5), 5 * 128);
  EXPECT_EQ(memory.kv_bytes(stage_place(split, 1, 0), 5), 3 * 5 * 128);
  EXPECT_EQ(memory.dkv_bytes(stage_place(split, 1, 0), 5), 2 * 3 * 5 * 128);
}

// A split that does not fit the job's layout (the tuner moves pp and keeps the job's split)
// is bad input for the cost and memory models; a plan split otherwise than its job is refused.
TEST(UnevenStages, MismatchedSplitIsBadInput) {
  Job job = tiny_job(1, 2, 1, "layers_per_stage: [1, 3]", "{kind: chunkflow, chunk_size: 8, k: 1}",
                     "17, 3", "analytical");
  const Plan uneven_plan = plan_of(job);
  Job other = job;
  other.parallel.pp = 1;
  other.cluster.gpus = 1;
  EXPECT_EQ(make_cost_model(other).status().code(), StatusCode::kInvalidInput);
  EXPECT_NE(make_cost_model(other).status().message().find("parallel.layers_per_stage"),
            std::string::npos);
  EXPECT_EQ(make_memory_source(other).status().code(), StatusCode::kInvalidInput);
  Job even = job;
  even.parallel.layers_per_stage.clear();
  const UnitCostModel unit;
  StatusOr<SimResult> result = simulate(even, uneven_plan, unit);
  ASSERT_FALSE(result.ok());
  EXPECT_NE(result.status().message().find("layers per stage [1, 3]"), std::string::npos)
      << result.status().message();
}

// The example job (docs/BENCHMARKS.md, "Uneven pipeline stages"): Qwen2.5-7B, tp 4 · pp 4, its
// last stage also running the 152K-vocabulary head and loss. Its split [7, 8, 7, 6] beats the
// even split under the analytical model, and the even split's last stage is its busiest.
TEST(UnevenStages, ExampleSplitBeatsTheEvenOne) {
  StatusOr<Job> uneven = load_job("examples/qwen2.5-7b-8k-uneven.yaml");
  ASSERT_TRUE(uneven.ok()) << uneven.status().message();
  ASSERT_EQ(uneven->parallel.layers_per_stage, (std::vector<int64_t>{7, 8, 7, 6}));
  Job even = *uneven;
  even.parallel.layers_per_stage.clear();
  StatusOr<SimResult> a = simulate_job(*uneven), b = simulate_job(even);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_TRUE(a->metrics.feasible);
  EXPECT_LT(a->metrics.step_time_s, 0.95 * b->metrics.step_time_s);
  const std::vector<StageMetrics>& st = b->metrics.stages;
  for (int s = 0; s < 3; ++s) EXPECT_GT(st[3].busy_s, 1.2 * st[static_cast<size_t>(s)].busy_s);
}

}  // namespace
}  // namespace cf

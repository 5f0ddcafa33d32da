// The memory model against hand-computed values: Korthikanti et al. 2022 Table 2 for a
// GPT-style 7B layer at TP = 4 (Megatron's activation formula), the tiny model's layer,
// model states, and the replay of a state-aware group and of 1F1B's in-flight count.
#include "sim/memory_model.h"

#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include "models/model.h"
#include "sim/cost_unit.h"
#include "sim/memory_source.h"
#include "sim/memory_timeline.h"
#include "tests/sim/simulator_test_util.h"
#include "tests/support/presets.h"

namespace cf {
namespace {

using test::plan_of;
using test::tiny_job;

// GPT-3-style 7B layer (Korthikanti et al. 2022 Table 3 sizes: h = 4096, a = 32, f = 4h), GeLU
// MLP, dropout, softmax materialised; s = 2048, b = 1, t = 4.
ActivationShape gpt_7b_layer() {
  ActivationShape shape;
  shape.hidden = 4096;
  shape.heads = 32;
  shape.kv_heads = 32;
  shape.head_dim = 128;
  shape.ffn_hidden = 4 * 4096;
  shape.mlp_saved_tensors = 2;
  shape.dropout = true;
  shape.flash_attention = false;
  return shape;
}

constexpr double kS = 2048, kH = 4096, kA = 32, kT = 4;

TEST(MegatronActivationFormula, SequenceParallelSelective) {
  // Table 2, TP + SP + selective recompute: 34·s·b·h / t.
  EXPECT_EQ(layer_activation_bytes(gpt_7b_layer(), 2048, 4, true, Recompute::kSelective),
            34 * kS * kH / kT);
  EXPECT_EQ(34 * kS * kH / kT, 71303168.0);
}

TEST(MegatronActivationFormula, SequenceParallelNoRecompute) {
  // Table 2, TP + SP: (s·b·h / t)(34 + 5·a·s / h).
  EXPECT_EQ(layer_activation_bytes(gpt_7b_layer(), 2048, 4, true, Recompute::kNone),
            kS * kH / kT * (34 + 5 * kA * kS / kH));
}

TEST(MegatronActivationFormula, TensorParallelOnly) {
  // Table 2, TP: s·b·h(10 + 24/t + 5·a·s/(h·t)); TP + selective: s·b·h(10 + 24/t).
  EXPECT_EQ(layer_activation_bytes(gpt_7b_layer(), 2048, 4, false, Recompute::kNone),
            kS * kH * (10 + 24 / kT + 5 * kA * kS / (kH * kT)));
  EXPECT_EQ(layer_activation_bytes(gpt_7b_layer(), 2048, 4, false, Recompute::kSelective),
            kS * kH * (10 + 24 / kT));
}

TEST(MegatronActivationFormula, FullRecomputeKeepsTheLayerInput) {
  EXPECT_EQ(layer_activation_bytes(gpt_7b_layer(), 2048, 4, false, Recompute::kFull), 2 * kS * kH);
  EXPECT_EQ(layer_activation_bytes(gpt_7b_layer(), 2048, 4, true, Recompute::kFull),
            2 * kS * kH / kT);
}

// Tiny (h 64, a 4, g 2, d_h 16, f 160), t = 1, FlashAttention, per token per layer:
// replicated 8h = 512; Q 2·64, K,V 4·32, O 2·64, SwiGLU 6·160 = 1344; LSE 4·4 = 16.
TEST(TinyLayerActivations, HandComputed) {
  const ActivationShape shape = ActivationShape::of(test::shipped_model("tiny"));
  EXPECT_EQ(layer_activation_bytes(shape, 17, 1, false, Recompute::kNone), 17 * 1872.0);
  EXPECT_EQ(layer_activation_bytes(shape, 17, 1, false, Recompute::kSelective), 17 * 1856.0);
  // K and V held by the store: 4·32 less.
  EXPECT_EQ(layer_activation_bytes(shape, 17, 1, false, Recompute::kSelective, true), 17 * 1728.0);
  // t = 2 with SP: everything halves (a, g, f divide by 2).
  EXPECT_EQ(layer_activation_bytes(shape, 17, 2, true, Recompute::kSelective), 17 * 928.0);
  // t = 2 without SP: 512 replicated + 1344 / 2.
  EXPECT_EQ(layer_activation_bytes(shape, 17, 2, false, Recompute::kSelective), 17 * 1184.0);
}

// Tiny has 43,264 parameters per layer (2·64 of them RMSNorm weights), 205,888 in all.
TEST(ModelStates, TinyStagesByHand) {
  const ModelConfig model = test::shipped_model("tiny");
  EXPECT_EQ(stage_local_parameters(model, 1, LayerSplit{1, 1, 4}, 0), 205888);
  // tp 2, pp 2: stage 0 = 2·((43264 − 128)/2 + 128) + 256·64/2 = 51584;
  // stage 1 = 43392 + final norm 64 + LM head 8192 = 51648.
  EXPECT_EQ(stage_local_parameters(model, 2, LayerSplit{2, 1, 4}, 0), 51584);
  EXPECT_EQ(stage_local_parameters(model, 2, LayerSplit{2, 1, 4}, 1), 51648);
  ParallelConfig parallel;
  parallel.tp = 2;
  parallel.pp = 2;
  parallel.dp = 3;
  parallel.distributed_optimizer = true;
  const MemoryModel memory(model, parallel);
  const MemoryBreakdown states = memory.model_states(1);
  EXPECT_EQ(states.weights, 2 * 51648);
  EXPECT_EQ(states.gradients, 4 * 51648);
  EXPECT_EQ(states.optimizer, 12 * 51648 / 3);  // 6 + 12/d bytes per parameter
  parallel.distributed_optimizer = false;
  EXPECT_EQ(MemoryModel(model, parallel).model_states(1).optimizer, 12 * 51648);
}

// One sequence of 5 tokens, ChunkSize 1, K = 2, one stage (pp = 1, 4 layers), unit costs:
// F*0 F*1 F*2 F3 F4 B4 B3 R2 B2 R1 B1 R0 B0. Peak at B4's start: activations of chunks
// 3 and 4 + stage inputs of 0..2; store: K/V of 5 chunks + dK/dV of the 4-token prefix.
TEST(MemoryReplay, StateAwareGroupPeakByHand) {
  const Job job = tiny_job(1, 1, 1, "", "{kind: chunkflow, chunk_size: 1, k: 2}", "5");
  const Plan plan = plan_of(job);
  const MemoryModel memory(job.model, job.parallel);
  const StagePlace whole = stage_place(plan.split(), 0, 0);  // 4 layers, embedding and head
  const StatusOr<PlanIndex> index = PlanIndex::build(plan, WireFormat{job.model.hidden, 2, 1});
  ASSERT_TRUE(index.ok()) << index.status().message();
  ASSERT_EQ(index->size(), 13);
  std::vector<int64_t> start(13), end(13);
  for (size_t i = 0; i < start.size(); ++i) start[i] = 10 * i, end[i] = 10 * i + 5;
  std::vector<MemorySample> samples;
  const StageMemoryReplay replay =
      replay_stage_memory(MegatronMemory(memory), *index, 0, 0, start, end, &samples);
  // Per token: layer activations without K/V, 4 layers: 4·(1872 − 128) = 6976; + token id 8;
  // + output side 4·64 + 4·256 = 1280 → 8264 per kept chunk. Stage input 2·64 = 128.
  // K/V: 4 layers · 2 · 32 · 2 B = 512 per token; dK/dV 1024 per token.
  EXPECT_EQ(memory.activation_bytes(whole, 1, true), 8264);
  EXPECT_EQ(memory.kv_bytes(whole, 1), 512);
  EXPECT_EQ(memory.dkv_bytes(whole, 1), 1024);
  EXPECT_EQ(replay.peak.activations, 2 * 8264 + 3 * 128);
  EXPECT_EQ(replay.peak.state_store, 5 * 512 + 4 * 1024);
  EXPECT_EQ(replay.peak_time_ns, start[5]);  // B4 starts
  // B's transient: one layer's gradients (1872) + the bf16 logits 2·256.
  EXPECT_EQ(replay.peak.transient, 1872 + 512);
  EXPECT_EQ(replay.end_dynamic_bytes, 0);
  EXPECT_EQ(replay.min_category_bytes, 0);
  for (const MemorySample& s : samples) EXPECT_GE(s.bytes, 0) << " @" << s.time_ns;
}

// 1F1B with 8 equal micro-batches on 4 stages holds min(pp − s, m) micro-batches on stage s
// (Megatron-LM theoretical_memory_usage.py; docs/COSTS-REFERENCE.md §1.2): exactly that many
// activations at the peak of a middle stage.
TEST(MemoryReplay, OneFOneBInFlightCount) {
  const Job job =
      tiny_job(1, 4, 1, "recompute: selective", "{kind: baseline, micro_batching: per_sequence}",
               "3, 3, 3, 3, 3, 3, 3, 3");
  const UnitCostModel unit;
  StatusOr<SimResult> result = simulate(job, plan_of(job), unit);
  ASSERT_TRUE(result.ok()) << result.status().message();
  const MemoryModel memory(job.model, job.parallel);
  const LayerSplit split = layer_split(job.model.layers, job.parallel);  // 1 layer per stage
  for (int s = 1; s < 3; ++s) {
    EXPECT_EQ(result->metrics.stages[s].peak_breakdown.activations,
              (4 - s) * memory.activation_bytes(stage_place(split, s, 0), 3, false))
        << "stage " << s;
  }
  EXPECT_EQ(result->metrics.stages[0].peak_breakdown.activations,
            4 * memory.activation_bytes(stage_place(split, 0, 0), 3, false));
}

// The job's memory_model picks the source: Megatron-LM's by default, the executor's with the
// calibrated cost model (which prices that executor) unless the job says otherwise; the
// executor's is the program's to install, and without it the key is named.
TEST(MemorySource, ChosenByTheJob) {
  const std::string table = ::testing::TempDir() + "/memory_source_table.json";
  std::ofstream(table) << "{}";  // the job reader only checks that the file exists
  const std::string base =
      "model: tiny\ncluster: {gpu: h100-sxm-80g, gpus: 1, gpus_per_node: 8}\n"
      "dataset: {lengths: [4, 2], max_length: 8}\ntraining: {global_batch: 2}\n";
  auto parsed = [&](const std::string& extra) {
    StatusOr<Job> job = parse_job(base + extra, "job.yaml");
    EXPECT_TRUE(job.ok()) << job.status().message();
    return job.ok() ? job->memory_model : MemoryModelKind::kMegatron;
  };
  EXPECT_EQ(parsed(""), MemoryModelKind::kMegatron);
  const std::string calibrated = "cost_model: {kind: calibrated, table: " + table + "}\n";
  EXPECT_EQ(parsed(calibrated), MemoryModelKind::kExecutor);
  EXPECT_EQ(parsed(calibrated + "memory_model: megatron\n"), MemoryModelKind::kMegatron);
  EXPECT_EQ(parsed("memory_model: executor\n"), MemoryModelKind::kExecutor);

  StatusOr<Job> job = parse_job(base + "memory_model: executor\n", "job.yaml");
  ASSERT_TRUE(job.ok());
  StatusOr<std::unique_ptr<OpMemorySource>> source = make_memory_source(*job);
  ASSERT_FALSE(source.ok());  // this test program does not install the executor's
  EXPECT_EQ(source.status().code(), StatusCode::kInvalidInput);
  EXPECT_NE(source.status().message().find("job.yaml: memory_model: executor"), std::string::npos)
      << source.status().message();
  job->memory_model = MemoryModelKind::kMegatron;
  EXPECT_TRUE(make_memory_source(*job).ok());
}

// A plan over the GPU's memory is a result with the reason, not an error.
TEST(MemoryFeasibility, OverCapacityIsInfeasibleWithReason) {
  Job job = tiny_job(1, 1, 1, "", "{kind: baseline, micro_batching: pack}", "5000, 3000");
  job.cluster.gpu.hbm_bytes = 8 << 20;  // 8 MiB
  job.cluster.gpu.reserved_bytes = 1 << 20;
  const UnitCostModel unit;
  StatusOr<SimResult> result = simulate(job, plan_of(job), unit);
  ASSERT_TRUE(result.ok()) << result.status().message();
  EXPECT_FALSE(result->metrics.feasible);
  EXPECT_NE(result->metrics.infeasible_reason.find("out of memory: stage 0 peaks at"),
            std::string::npos)
      << result->metrics.infeasible_reason;
  job.cluster.gpu.hbm_bytes = int64_t{80} << 30;
  StatusOr<SimResult> fits = simulate(job, plan_of(job), unit);
  ASSERT_TRUE(fits.ok());
  EXPECT_TRUE(fits->metrics.feasible);
  EXPECT_TRUE(fits->metrics.infeasible_reason.empty());
}

}  // namespace
}  // namespace cf

namespace cf {
namespace {

// The shipped GPT 22B through ActivationShape::of: Korthikanti et al. 2022's sh(34 + 5as/h)
// per layer at t = 1 (unfused attention, dropout, GeLU), and sh(10/t + 24/t + 5as/(ht)) at t = 8.
TEST(GptActivations, KorthikantiFormulaFromTheModelYaml) {
  StatusOr<ModelConfig> model = load_model("gpt-22b");
  ASSERT_TRUE(model.ok());
  const ActivationShape shape = ActivationShape::of(*model);
  const double s = 2048, h = 6144, a = 64;
  EXPECT_DOUBLE_EQ(layer_activation_bytes(shape, 2048, 1, false, Recompute::kNone),
                   s * h * (34 + 5 * a * s / h));
  EXPECT_DOUBLE_EQ(layer_activation_bytes(shape, 2048, 8, false, Recompute::kNone),
                   s * h * (10 + 24.0 / 8 + 5 * a * s / (h * 8)));
}

// Precision knobs and context parallelism on one odd job: bf16 gradients take 2 B per
// parameter, the fused cross-entropy keeps the logits' softmax in 2 B instead of 4, the
// optimizer is sharded over dp·cp, and a GPU holds ceil(tokens / cp) tokens' activations,
// stage input and K/V.
TEST(ModelStates, PrecisionKnobsAndContextParallelism) {
  const ModelConfig model = test::shipped_model("tiny");
  ParallelConfig parallel;
  parallel.tp = 1, parallel.pp = 1, parallel.dp = 3;
  parallel.distributed_optimizer = true;
  const int64_t params = stage_local_parameters(model, 1, LayerSplit{1, 1, 4}, 0);
  TrainingConfig fp32;
  TrainingConfig bf16;
  bf16.grad_accumulation_dtype = GradDtype::kBf16;
  bf16.cross_entropy = CrossEntropy::kFused;
  const MemoryModel a(model, parallel, fp32), b(model, parallel, bf16);
  StagePlace last = stage_place(LayerSplit{1, 1, 4}, 0, 0), first = last;
  last.first = false;  // the loss's side alone
  first.last = false;  // the embedding's side alone
  EXPECT_EQ(a.model_states(0).gradients, 4 * params);
  EXPECT_EQ(b.model_states(0).gradients, 2 * params);
  // Only the last stage's softmax differs: 4 − 2 bytes per (token, vocab) element.
  EXPECT_EQ(a.activation_bytes(last, 37, false) - b.activation_bytes(last, 37, false),
            2 * 37 * model.vocab);
  EXPECT_EQ(a.activation_bytes(first, 37, false), b.activation_bytes(first, 37, false));

  ParallelConfig cp = parallel;
  cp.cp = 2;
  const MemoryModel c(model, cp, fp32);
  const StagePlace both = stage_place(LayerSplit{1, 1, 4}, 0, 0);
  EXPECT_EQ(c.model_states(0).optimizer, ceil_div(12 * params, 6));
  EXPECT_EQ(c.activation_bytes(both, 75, true), a.activation_bytes(both, 38, true));
  EXPECT_EQ(c.kv_bytes(both, 75), a.kv_bytes(both, 38));
  EXPECT_EQ(c.dkv_bytes(both, 75), a.dkv_bytes(both, 38));
  EXPECT_EQ(c.stage_input_bytes(75), a.stage_input_bytes(38));
  EXPECT_EQ(c.transient_bytes(Pass::kBackward, 75, true),
            a.transient_bytes(Pass::kBackward, 38, true));
}

}  // namespace
}  // namespace cf

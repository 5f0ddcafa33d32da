// The executor's contract (DESIGN.md §4.7, STYLE.md §8): a chunked, pipelined, context-parallel
// step — any ChunkSize, K ∈ {1, 2, N}, pp ∈ {1, 2, 3, 4} with even and uneven layer splits,
// cp ∈ {1, 2} (all-gather CP), both packers, the baseline, DP, interleaving (pp 2-4, vpp 2-3,
// any chunk count), tied embeddings — produces the gradients of whole-sequence training on one
// stage, relative error ≤ 1e-5 in fp32, on long-tailed batches drawn from the shipped
// distributions.
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <tuple>
#include <vector>

#include "executor/executor.h"
#include "executor/stage.h"
#include "sim/plan/plan_builder.h"
#include "tests/support/executor_fixture.h"

namespace cf {
namespace {

// fp32 gradients summed in a different order (chunked attention, pipelined accumulation) stay
// within a few hundred ulp of the tensor's largest gradient; 1e-5 is the bound.
constexpr double kMaxRelError = 1e-5;

struct Case {
  std::string name;
  test::TinyJob job;
  uint64_t seed = 11;  // weights and tokens
  // Chunks fed to each DP rank (m), checked against the plan when given: the interleaved cases
  // name the chunk counts they are there for.
  std::vector<int> chunks_per_rank = {};
};

// The tensors of a tiny model (tiny, tiny-tied, tiny-6): embedding, 12 per layer (with QKV
// bias), final norm, and an LM head unless tied.
int tiny_tensors(const ModelConfig& model) {
  return 1 + static_cast<int>(model.layers) * 12 + 1 + (model.tied_embeddings ? 0 : 1);
}

// The same jobs at cp = 1 and cp = 2 (all-gather CP; ChunkSize even, as the job file requires):
// packed and split sequences of odd lengths, pp ∈ {1, 2}, K ∈ {1, N}, a seed per case; then the
// baseline, DP × CP, interleaving and tied embeddings with cp = 2, and a batch whose chunks are
// shorter than 2·cp (CP ranks with no token of a chunk).
std::vector<Case> context_parallel_cases() {
  const char* const datasets[] = {"longbench", "lmsys-chat-1m", "chatqa2-long-sft"};
  std::vector<Case> cases;
  int n = 0;
  for (int pp : {1, 2}) {
    for (int64_t chunk_size : {30, 48}) {
      for (const char* k : {"1", "64"}) {
        const std::string dataset = datasets[n % 3];
        const char* packer = n % 2 == 0 ? "balanced" : "ffd";
        const uint64_t seed = 1000 + 37 * static_cast<uint64_t>(n);
        test::TinyJob job;
        job.lengths = test::odd_lengths(test::scaled_batch(dataset, 9, 151 + 10 * (n % 3), seed));
        job.pp = pp;
        job.strategy = fmt::format("{{kind: chunkflow, chunk_size: {}, k: {}, packer: {}}}",
                                   chunk_size, k, packer);
        for (int cp : {1, 2}) {
          job.cp = cp;
          cases.push_back(
              {fmt::format("cp{}_pp{}_c{}_k{}_{}_{}", cp, pp, chunk_size, k, packer, dataset), job,
               seed});
        }
        ++n;
      }
    }
  }
  test::TinyJob baseline;
  baseline.lengths = test::odd_lengths(test::scaled_batch("lmsys-chat-1m", 7, 141, 77));
  baseline.pp = 2;
  baseline.cp = 2;
  baseline.max_length = 160;
  baseline.strategy = "{kind: baseline, micro_batching: pack}";
  cases.push_back({"cp2_pp2_baseline_pack", baseline, 77});
  test::TinyJob dp2;
  dp2.lengths = test::odd_lengths(test::scaled_batch("longbench", 10, 151, 5));
  dp2.dp = 2;
  dp2.cp = 2;
  dp2.strategy = "{kind: chunkflow, chunk_size: 40, k: 1}";
  cases.push_back({"cp2_dp2_pp1_c40_k1", dp2, 5});
  test::TinyJob interleaved = dp2;
  interleaved.dp = 1;
  interleaved.pp = 2;
  interleaved.vpp = 2;
  interleaved.schedule = "interleaved";
  interleaved.strategy = "{kind: chunkflow, chunk_size: 32, k: 2}";  // m = 15: last group of 1
  cases.push_back({"cp2_pp2_vpp2_interleaved_c32_k2", interleaved, 6, {15}});
  test::TinyJob tied;
  tied.model = "tests/executor/data/tiny-tied.yaml";
  tied.lengths = {97, 5, 33, 1, 13};
  tied.pp = 2;
  tied.cp = 2;
  tied.strategy = "{kind: chunkflow, chunk_size: 30, k: 1}";
  cases.push_back({"cp2_tied_pp2_c30_k1", tied, 8});
  test::TinyJob tiny_chunks;  // 61 = 30 + 30 + 1, and 3 + 1 packed: chunks of 1 and 4 tokens
  tiny_chunks.lengths = {61, 3, 1};
  tiny_chunks.pp = 2;
  tiny_chunks.cp = 2;
  tiny_chunks.strategy = "{kind: chunkflow, chunk_size: 30, k: 1}";
  cases.push_back({"cp2_pp2_chunks_below_2cp_tokens", tiny_chunks, 9});
  return cases;
}

// Uneven pipeline splits (parallel.layers_per_stage): pp 2 as [1, 3] and [3, 1] on tiny, pp 3 as
// [2, 1, 3] and pp 4 as [1, 2, 2, 1] on the 6-layer tiny-6; K ∈ {1, 2, N}, both packers, the
// baseline, DP, CP (all-gather), GPipe and the tied embedding pair; odd lengths, a seed per case.
std::vector<Case> uneven_cases() {
  struct Split {
    const char* model;
    std::vector<int64_t> layers;
  };
  const Split splits[] = {{"tiny", {1, 3}},
                          {"tiny", {3, 1}},
                          {"tests/executor/data/tiny-6.yaml", {2, 1, 3}},
                          {"tests/executor/data/tiny-6.yaml", {1, 2, 2, 1}}};
  const char* const datasets[] = {"lmsys-chat-1m", "longbench", "chatqa2-long-sft"};
  std::vector<Case> cases;
  int n = 0;
  for (const Split& split : splits) {
    for (const auto& [chunk_size, k] :
         {std::pair{29, "1"}, std::pair{47, "2"}, std::pair{33, "64"}}) {
      const std::string dataset = datasets[n % 3];
      const char* packer = n % 2 == 0 ? "balanced" : "ffd";
      const uint64_t seed = 2000 + 31 * static_cast<uint64_t>(n);
      test::TinyJob job;
      job.model = split.model;
      job.layers_per_stage = split.layers;
      job.pp = static_cast<int>(split.layers.size());
      job.lengths = test::odd_lengths(test::scaled_batch(dataset, 9, 151 + 10 * (n % 3), seed));
      job.strategy = fmt::format("{{kind: chunkflow, chunk_size: {}, k: {}, packer: {}}}",
                                 chunk_size, k, packer);
      cases.push_back({fmt::format("uneven_{}_c{}_k{}_{}_{}", fmt::join(split.layers, "_"),
                                   chunk_size, k, packer, dataset),
                       job, seed});
      ++n;
    }
  }
  test::TinyJob baseline;
  baseline.layers_per_stage = {3, 1};
  baseline.pp = 2;
  baseline.lengths = test::odd_lengths(test::scaled_batch("lmsys-chat-1m", 7, 141, 4242));
  baseline.max_length = 160;
  baseline.strategy = "{kind: baseline, micro_batching: pack}";
  cases.push_back({"uneven_3_1_baseline_pack", baseline, 4242});
  test::TinyJob dp2 = baseline;
  dp2.layers_per_stage = {1, 3};
  dp2.dp = 2;
  dp2.lengths = test::odd_lengths(test::scaled_batch("longbench", 10, 151, 77));
  dp2.strategy = "{kind: chunkflow, chunk_size: 41, k: 1}";
  cases.push_back({"uneven_1_3_dp2_c41_k1", dp2, 77});
  test::TinyJob cp2 = dp2;
  cp2.dp = 1;
  cp2.cp = 2;
  cp2.strategy = "{kind: chunkflow, chunk_size: 30, k: 2}";
  cases.push_back({"uneven_1_3_cp2_c30_k2", cp2, 78});
  test::TinyJob gpipe = dp2;
  gpipe.model = "tests/executor/data/tiny-6.yaml";
  gpipe.dp = 1;
  gpipe.pp = 3;
  gpipe.layers_per_stage = {2, 1, 3};
  gpipe.schedule = "gpipe";
  cases.push_back({"uneven_2_1_3_gpipe_c41_k1", gpipe, 79});
  test::TinyJob tied;
  tied.model = "tests/executor/data/tiny-tied.yaml";
  tied.lengths = {97, 5, 33, 1, 13};
  tied.pp = 2;
  tied.layers_per_stage = {3, 1};
  tied.strategy = "{kind: chunkflow, chunk_size: 31, k: 1}";
  cases.push_back({"uneven_3_1_tied_c31_k1", tied, 80});
  return cases;
}

// Interleaved 1F1B at chunk counts m that Megatron refuses (m < pp, m mod pp in 1..pp−1),
// pp 2, 3 and 4, vpp 2 and 3, ChunkSize 30: split sequences (dependent groups, K = 1 with F*
// and R, or K = 2) beside packed ones. The 9- and 12-layer tiny models split over pp·vpp.
// pp4_vpp3_m5 has five standalone chunks: the plan whose stage 3 runs F4.1 ahead of B0.1 so
// that no stage waits on another in a cycle (schedule_pipeline_test.cc,
// ForwardMovesAheadWhereStagesWouldWaitOnEachOther).
std::vector<Case> interleaved_cases() {
  struct Spec {
    const char* name;
    int pp, vpp, k;
    std::vector<int64_t> lengths;
    std::vector<int> m;
    int dp = 1;
  };
  const Spec specs[] = {
      {"pp2_vpp2_m3_k1", 2, 2, 1, {45, 20}, {3}},  // 45 = 30 + 15: a group of 2
      {"pp2_vpp2_m1", 2, 2, 1, {23}, {1}},
      {"pp2_vpp2_dp2_m3_m4_k1", 2, 2, 1, {45, 20, 33, 7, 60}, {3, 4}, 2},
      {"pp2_vpp3_m5_k2", 2, 3, 2, {100, 9, 14}, {5}},
      {"pp3_vpp2_m2_k1", 3, 2, 1, {50}, {2}},
      {"pp3_vpp2_m4_k1", 3, 2, 1, {61, 12, 15}, {4}},
      {"pp3_vpp2_m5_k2", 3, 2, 2, {75, 8, 20, 17}, {5}},
      {"pp3_vpp3_m7_k1", 3, 3, 1, {121, 5, 19, 26}, {7}},
      {"pp4_vpp3_m3_k1", 4, 3, 1, {70}, {3}},
      {"pp4_vpp3_m5_k1", 4, 3, 1, {97, 11}, {5}},
      {"pp4_vpp3_m6_k2", 4, 3, 2, {80, 21, 9, 13, 25}, {6}},
      {"pp4_vpp3_m5", 4, 3, 1, {29, 27, 30, 25, 28}, {5}},
  };
  std::vector<Case> cases;
  uint64_t seed = 300;
  for (const Spec& spec : specs) {
    test::TinyJob job;
    job.model = spec.pp * spec.vpp == 4   ? "tiny"
                : spec.pp * spec.vpp == 9 ? "tests/executor/data/tiny-9-layers.yaml"
                                          : "tests/executor/data/tiny-12-layers.yaml";
    job.lengths = spec.lengths;
    job.pp = spec.pp;
    job.vpp = spec.vpp;
    job.dp = spec.dp;
    job.schedule = "interleaved";
    job.strategy = fmt::format("{{kind: chunkflow, chunk_size: 30, k: {}}}", spec.k);
    cases.push_back({std::string("interleaved_") + spec.name, job, seed++, spec.m});
  }
  return cases;
}

std::vector<Case> contract_cases() {
  const char* const datasets[] = {"lmsys-chat-1m", "longbench", "chatqa2-long-sft",
                                  "llama3-sft-mix"};
  std::vector<Case> cases;
  int n = 0;
  for (int pp : {1, 2, 4}) {
    for (int64_t chunk_size : {29, 48, 80}) {
      for (const char* k : {"1", "2", "64"}) {  // 64 ≥ every group's N: "K = N"
        const std::string dataset = datasets[n % 4];
        const char* packer = n % 2 == 0 ? "balanced" : "ffd";
        test::TinyJob job;
        job.lengths = test::scaled_batch(dataset, 9, 150 + 10 * (n % 5), 100 + n);
        job.pp = pp;
        job.strategy = fmt::format("{{kind: chunkflow, chunk_size: {}, k: {}, packer: {}}}",
                                   chunk_size, k, packer);
        cases.push_back(
            {fmt::format("pp{}_c{}_k{}_{}_{}", pp, chunk_size, k, packer, dataset), job});
        ++n;
      }
    }
    for (const char* batching : {"pack", "per_sequence"}) {
      test::TinyJob job;
      job.lengths = test::scaled_batch("lmsys-chat-1m", 7, 140, 7 + pp);
      job.pp = pp;
      job.max_length = 160;
      job.strategy = fmt::format("{{kind: baseline, micro_batching: {}}}", batching);
      cases.push_back({fmt::format("pp{}_baseline_{}", pp, batching), job});
    }
  }
  test::TinyJob dp2;
  dp2.lengths = test::scaled_batch("longbench", 10, 150, 3);
  dp2.pp = 2;
  dp2.dp = 2;
  dp2.strategy = "{kind: chunkflow, chunk_size: 40, k: 1}";
  cases.push_back({"pp2_dp2_c40_k1", dp2});
  test::TinyJob interleaved = dp2;
  interleaved.dp = 1;
  interleaved.vpp = 2;
  interleaved.schedule = "interleaved";
  interleaved.strategy = "{kind: chunkflow, chunk_size: 32, k: 2}";
  cases.push_back({"pp2_vpp2_interleaved_c32_k2", interleaved});
  test::TinyJob gpipe = dp2;
  gpipe.dp = 1;
  gpipe.pp = 4;
  gpipe.schedule = "gpipe";
  cases.push_back({"pp4_gpipe_c40_k1", gpipe});
  for (Case& c : interleaved_cases()) cases.push_back(std::move(c));
  for (int pp : {1, 2, 4}) {
    test::TinyJob tied;
    tied.model = "tests/executor/data/tiny-tied.yaml";
    tied.lengths = {97, 5, 33, 1, 12};
    tied.pp = pp;
    tied.strategy = "{kind: chunkflow, chunk_size: 31, k: 1}";
    cases.push_back({fmt::format("tied_pp{}_c31_k1", pp), tied});
  }
  for (Case& c : context_parallel_cases()) cases.push_back(std::move(c));
  for (Case& c : uneven_cases()) cases.push_back(std::move(c));
  // K/V offload (state_store.h): the store's pieces in the host pool, odd sizes, K below and at N.
  for (const auto& [pp, chunk_size, k] : {std::tuple{1, 29, 1}, {2, 37, 2}, {4, 31, 64}}) {
    test::TinyJob offload;
    offload.lengths = test::odd_lengths(test::scaled_batch("longbench", 8, 170, 40 + pp));
    offload.pp = pp;
    offload.strategy =
        fmt::format("{{kind: chunkflow, chunk_size: {}, k: {}, kv_offload: all}}", chunk_size, k);
    cases.push_back({fmt::format("offload_pp{}_c{}_k{}", pp, chunk_size, k), offload});
  }
  // ... only the sequences of at least 97 tokens: 151 and 97 in the host pool, 64 on the stage.
  test::TinyJob line;
  line.lengths = {64, 151, 23, 97, 5};
  line.pp = 2;
  line.strategy =
      "{kind: chunkflow, chunk_size: 29, k: 1, kv_offload: all, kv_offload_min_tokens: 97}";
  cases.push_back({"offload_line_pp2_c29_k1", line});
  // Cost-aware chunks (chunking.h): pieces of unequal length, packed by predicted time.
  for (const auto& [pp, chunk_size, k] : {std::tuple{2, 43, 1}, {4, 36, 2}}) {
    test::TinyJob cost;
    cost.lengths = test::odd_lengths(test::scaled_batch("llama3-sft-mix", 9, 180, 60 + pp));
    cost.pp = pp;
    cost.strategy = fmt::format(
        "{{kind: chunkflow, chunk_size: {}, k: {}, packer: cost, split: cost}}", chunk_size, k);
    cases.push_back({fmt::format("cost_pp{}_c{}_k{}", pp, chunk_size, k), cost});
  }
  return cases;
}

class ContractTest : public ::testing::TestWithParam<Case> {};

TEST_P(ContractTest, GradientsEqualWholeSequenceTraining) {
  const Job job = test::tiny_job(GetParam().job);
  ExecutorOptions options;
  options.seed = GetParam().seed;
  options.init_std = 0.2f;  // large enough that attention is far from uniform
  options.check_reference = true;
  options.record_trace = false;
  if (!GetParam().chunks_per_rank.empty()) {
    StatusOr<Plan> plan = build_plan(job, 0);
    ASSERT_TRUE(plan.ok()) << plan.status().message();
    std::vector<int> m;
    for (const RankPlan& rank : plan->ranks) m.push_back(static_cast<int>(rank.chunks.size()));
    ASSERT_EQ(m, GetParam().chunks_per_rank);
  }
  StatusOr<RunReport> report = run_in_process(job, options);
  ASSERT_TRUE(report.ok()) << report.status().message() << "\n"
                           << test::tiny_job_yaml(GetParam().job);
  ASSERT_EQ(report->steps.size(), 1u);
  const StepReport& step = report->steps[0];
  ASSERT_TRUE(step.check.has_value());
  // Every tensor of every stage compared once; a tied copy on the last stage adds one.
  EXPECT_EQ(step.check->tensors,
            tiny_tensors(job.model) + (job.model.tied_embeddings && job.parallel.pp > 1 ? 1 : 0));
  EXPECT_LE(step.check->rel_error, kMaxRelError) << "worst tensor " << step.check->worst_tensor;
  RecordProperty("grad_rel_error", fmt::format("{:.3g}", step.check->rel_error));
  // The loss of random tokens under a small-weight model is near ln(256) = 5.55.
  EXPECT_GT(step.loss, 4.0);
  EXPECT_LT(step.loss, 8.0);
}

INSTANTIATE_TEST_SUITE_P(Executor, ContractTest, ::testing::ValuesIn(contract_cases()),
                         [](const ::testing::TestParamInfo<Case>& info) {
                           std::string name = info.param.name;
                           for (char& c : name) {
                             if (!isalnum(static_cast<unsigned char>(c))) c = '_';
                           }
                           return name;
                         });

// The check is not blind: a gradient perturbed by 1e-4 of its tensor's scale is caught.
TEST(ContractCheck, DetectsAPerturbedGradient) {
  test::TinyJob spec;
  spec.lengths = {37, 5, 20};
  spec.strategy = "{kind: chunkflow, chunk_size: 16, k: 1}";
  const Job job = test::tiny_job(spec);
  StageWorker worker(job.model, LayerSplit{1, 1, job.model.layers}, 0, 0);
  worker.params().initialise(5, 0.2f);
  const TokenBatch batch = synthetic_tokens(spec.lengths, job.model.vocab, 5, 0);
  StatusOr<Plan> plan = build_plan(job, 0);
  ASSERT_TRUE(plan.ok());
  worker.run_step(*plan, batch, nullptr, StepClock::now(), false);
  EXPECT_LE(check_against_reference(job.model, {&worker.params()}, batch).rel_error, kMaxRelError);

  const ParamTensor* wk = worker.params().layout().find("layers.2.wk");
  ASSERT_NE(wk, nullptr);
  float* g = worker.params().gradients() + wk->offset;
  float scale = 0;
  for (int64_t i = 0; i < wk->size; ++i) scale = std::max(scale, std::abs(g[i]));
  ASSERT_GT(scale, 0.0f);
  g[wk->size / 3] += 1e-4f * scale;
  const GradientCheck check = check_against_reference(job.model, {&worker.params()}, batch);
  EXPECT_EQ(check.worst_tensor, "layers.2.wk");
  EXPECT_NEAR(check.rel_error, 1e-4, 2e-5);
}

// Offloading changes where the K/V live, not the arithmetic: the same loss and gradients to the
// bit as the same job with the store on the stage, no state store on the stage at any moment,
// and the pieces counted in the host pool with every move into and out of it.
TEST(ContractOffload, SameStepWithTheStoreInTheHostPool) {
  test::OffloadPair pair = test::offload_pair();
  test::TinyJob& spec = pair.spec;
  const Job& on_stage = pair.kept;
  const Job& offloaded = pair.offloaded;
  ExecutorOptions options;
  options.seed = 9;
  options.init_std = 0.2f;
  options.check_reference = true;
  options.record_trace = false;
  StatusOr<RunReport> a = run_in_process(on_stage, options);
  StatusOr<RunReport> b = run_in_process(offloaded, options);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->steps[0].loss, b->steps[0].loss);
  ASSERT_TRUE(a->steps[0].check && b->steps[0].check);
  EXPECT_EQ(a->steps[0].check->rel_error, b->steps[0].check->rel_error);
  int64_t host = 0;
  for (size_t s = 0; s < b->stages.size(); ++s) {
    const StageMemoryReport& kept = a->stages[s];
    const StageMemoryReport& moved = b->stages[s];
    EXPECT_EQ(kept.host_peak_bytes, 0);
    EXPECT_EQ(moved.category_peaks.state_store, 0) << "stage " << s;
    EXPECT_EQ(moved.host_peak_bytes, kept.category_peaks.state_store) << "stage " << s;
    EXPECT_LE(moved.peak_bytes, kept.peak_bytes);
    // Every byte the pool ever held went out once and came back at least once.
    EXPECT_GE(moved.host_copy_bytes, 2 * moved.host_peak_bytes) << "stage " << s;
    host += moved.host_copy_bytes;
  }
  EXPECT_GT(host, 0);
  // A line between the batch's split sequences: the longer ones' pieces in the host pool, the
  // rest on the stage — the same step again, each place holding less than it would alone.
  std::vector<int64_t> split;
  for (const int64_t length : spec.lengths) {
    if (length > 41) split.push_back(length);
  }
  std::sort(split.begin(), split.end());
  ASSERT_GE(split.size(), 2u);
  spec.strategy = fmt::format(
      "{{kind: chunkflow, chunk_size: 41, k: 2, kv_offload: all, kv_offload_min_tokens: {}}}",
      split.back());
  StatusOr<RunReport> c = run_in_process(test::tiny_job(spec), options);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(a->steps[0].loss, c->steps[0].loss);
  ASSERT_TRUE(c->steps[0].check);
  EXPECT_EQ(a->steps[0].check->rel_error, c->steps[0].check->rel_error);
  int64_t stage_store = 0, in_pool = 0;
  for (size_t s = 0; s < c->stages.size(); ++s) {
    EXPECT_LE(c->stages[s].host_peak_bytes, b->stages[s].host_peak_bytes) << "stage " << s;
    EXPECT_LE(c->stages[s].category_peaks.state_store, a->stages[s].category_peaks.state_store)
        << "stage " << s;
    stage_store += c->stages[s].category_peaks.state_store;
    in_pool += c->stages[s].host_peak_bytes;
  }
  EXPECT_GT(stage_store, 0);
  EXPECT_GT(in_pool, 0);
}

}  // namespace
}  // namespace cf

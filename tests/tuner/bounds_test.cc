// The tuner's lower bounds against the simulator: over random jobs, layouts, schedules,
// ChunkSizes, K values, even and uneven layer splits, overlapped DP reductions and both cost
// models, the step-time bound never exceeds the simulated mean step time, the tokens/s bound
// is never below the simulated tokens/s, and the memory bound never exceeds the simulated
// peak of its stage; and a smaller K never simulates faster.
#include "tuner/bounds.h"

#include <gtest/gtest.h>

#include <random>

#include "sim/cost_model.h"
#include "sim/memory_source.h"
#include "sim/plan/chunking.h"
#include "sim/plan/plan_builder.h"
#include "sim/simulator.h"
#include "tests/tuner/tuner_test_util.h"

namespace cf {
namespace {

StepChunks chunks_of(const Job& job) {
  StepChunks out;
  for (int s = 0; s < job.training.steps; ++s) {
    const std::vector<int64_t> lengths = job_global_batch(job, s);
    if (job.strategy.kind == StrategyKind::kChunkFlow) {
      out.steps.push_back(
          build_chunkflow_chunks(lengths, job.strategy.chunk_size, job.strategy.packer));
    } else {
      out.steps.push_back(*build_baseline_micro_batches(lengths, job.dataset.max_length,
                                                        job.strategy.micro_batching));
    }
    for (const Chunk& c : out.steps.back()) {
      if (c.kind == ChunkKind::kDependent)
        out.max_group_size = std::max(out.max_group_size, c.group_size);
    }
  }
  return out;
}

// A random uneven split of `layers` over `pp` stages, each at least one layer.
std::vector<int64_t> random_split(int64_t layers, int pp, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<int64_t> split(static_cast<size_t>(pp), 1);
  for (int64_t l = pp; l < layers; ++l) ++split[rng() % static_cast<uint64_t>(pp)];
  return split;
}

class BoundsTest : public ::testing::TestWithParam<uint64_t> {};

TEST_P(BoundsTest, NeverAboveTheSimulation) {
  const uint64_t seed = GetParam();
  std::mt19937_64 rng(seed);
  int checked = 0, tight_memory = 0, uneven = 0, monotone = 0;
  for (int trial = 0; trial < 40; ++trial) {
    Job base = test::random_job(seed * 1000 + trial);
    const SearchSpace space = test::random_space(base, seed * 1000 + trial);
    std::vector<ParallelLayout> layouts = resolve_layouts(space, base);
    ParallelLayout layout = layouts[rng() % layouts.size()];
    if (rng() % 4 == 0 && layout.pp > 1 && base.model.layers % (layout.pp * 2) == 0) {
      layout.schedule = ScheduleKind::kInterleaved;
      layout.vpp = 2;
    }
    StrategyConfig strategy;
    strategy.kind = rng() % 5 == 0 ? StrategyKind::kBaseline : StrategyKind::kChunkFlow;
    const std::vector<int64_t> sizes = resolve_chunk_sizes(space, base);
    strategy.chunk_size = sizes[rng() % sizes.size()];
    strategy.packer = rng() % 2 ? Packer::kBalanced : Packer::kFirstFitDecreasing;
    Job job = job_with(base, layout, strategy);
    job.training.steps = 1 + static_cast<int>(rng() % 3);
    if (rng() % 3 == 0) job.cost_model.kind = CostModelKind::kUnit;
    // Every third trial overlaps the DP reduction with the last backward (no draw of its own).
    job.overlap.grad_reduce = trial % 3 == 1;
    // Every other trial of a pipeline without virtual stages splits the layers unevenly (a
    // generator of its own, so the other draws stay those of the even trials).
    const bool split_unevenly = layout.pp > 1 && layout.vpp == 1 && trial % 2 == 0;
    if (split_unevenly) {
      job.parallel.layers_per_stage =
          random_split(job.model.layers, layout.pp, seed * 131 + static_cast<uint64_t>(trial));
    }
    const StepChunks chunks = chunks_of(job);
    const std::vector<int> ks = {1, 2, 3, 5};
    StatusOr<std::unique_ptr<CostModel>> cost = make_cost_model(job);
    ASSERT_TRUE(cost.ok());
    const std::vector<CandidateBounds> bounds = candidate_bounds(job, **cost, chunks, ks);
    std::vector<double> step_s(ks.size(), -1);
    for (size_t i = 0; i < ks.size(); ++i) {
      job.strategy.k = ks[i];
      StatusOr<SimResult> sim = simulate_job(job);
      if (!sim.ok()) continue;  // e.g. interleaved with too few chunks: nothing to bound
      const SimMetrics& m = sim->metrics;
      step_s[i] = m.step_time_s;
      // The premise of the search's pruning by a larger K (bounds.h): a smaller K of the
      // same layout and chunking never simulates faster.
      EXPECT_TRUE(bounds[i].slower_with_smaller_k);
      if (i > 0 && step_s[i - 1] >= 0) {
        EXPECT_GE(step_s[i - 1], m.step_time_s) << "K " << ks[i - 1] << " faster than K " << ks[i];
        ++monotone;
      }
      SCOPED_TRACE(fmt::format("seed {} trial {} K {}: {} {}", seed, trial, ks[i], describe(layout),
                               job.strategy.chunk_size));
      EXPECT_LE(bounds[i].step_time_s, m.step_time_s);
      EXPECT_GE(bounds[i].tokens_per_s, m.tokens_per_s);
      EXPECT_GT(bounds[i].step_time_s, 0.0);
      const StageMetrics& stage = m.stages[bounds[i].memory_stage];
      EXPECT_LE(bounds[i].memory_bytes, stage.peak_memory_bytes);
      EXPECT_GT(bounds[i].memory_bytes, bounds[i].model_state_bytes);
      if (bounds[i].memory_bytes * 10 >= stage.peak_memory_bytes * 9) ++tight_memory;
      ++checked;
      uneven += split_unevenly ? 1 : 0;
    }
  }
  EXPECT_GT(checked, 100);
  EXPECT_GT(tight_memory, 0);  // the bound is not vacuous
  EXPECT_GT(uneven, 10);       // uneven splits among the checked candidates
  EXPECT_GT(monotone, 60);     // pairs of K compared
}

INSTANTIATE_TEST_SUITE_P(Seeds, BoundsTest, ::testing::Values(1, 17, 81, 987));

// The unit cost model with one chunk per stage: busy time is exactly the bound's, so a
// one-stage pipeline's bound equals the simulated step time.
TEST(BoundsTest, ExactForOneStageUnitCosts) {
  StatusOr<Job> job = parse_job(
      "model: tiny\ncluster: {gpu: h100-sxm-80g, gpus: 1}\n"
      "dataset: {lengths: [5, 3, 9], max_length: 9}\nparallel: {tp: 1, pp: 1, dp: 1}\n"
      "strategy: {kind: chunkflow, chunk_size: 4, k: 1}\ncost_model: {kind: unit}\n",
      "<unit job>");
  ASSERT_TRUE(job.ok()) << job.status().message();
  const StepChunks chunks = chunks_of(*job);
  auto cost = make_cost_model(*job);
  const std::vector<CandidateBounds> b = candidate_bounds(*job, **cost, chunks, {1, 3});
  for (int k : {1, 3}) {
    Job j = *job;
    j.strategy.k = k;
    StatusOr<SimResult> sim = simulate_job(j);
    ASSERT_TRUE(sim.ok());
    EXPECT_DOUBLE_EQ(b[k == 1 ? 0 : 1].step_time_s, sim->metrics.step_time_s) << "K " << k;
  }
  // Tokens 17; K = 3 keeps every chunk: F + B = 3 units per token, 1000 ns per unit.
  EXPECT_DOUBLE_EQ(b[1].step_time_s, 17 * 3 * 1000 * 1e-9);
}

// A layout whose model states alone exceed the budget is ruled out before any chunk is
// priced: its memory bound is its largest stage's model states, its step bounds 0.
TEST(BoundsTest, ModelStatesOverTheBudgetPriceNoChunk) {
  Job job = test::random_job(5);
  job.training.steps = 2;
  const StepChunks chunks = chunks_of(job);
  auto cost = make_cost_model(job);
  ASSERT_TRUE(cost.ok());
  const std::vector<int> ks = {1, 2};
  const std::vector<CandidateBounds> full = candidate_bounds(job, **cost, chunks, ks);
  int64_t states = 0;
  for (const CandidateBounds& b : full) states = std::max(states, b.model_state_bytes);
  ASSERT_GT(states, 0);
  // The budget one byte below the model states of the worst stage.
  StatusOr<std::unique_ptr<OpMemorySource>> source = make_memory_source(job);
  ASSERT_TRUE(source.ok());
  int64_t worst = 0;
  for (int s = 0; s < job.parallel.pp; ++s) {
    worst = std::max(worst, (*source)->model_states(s).total());
  }
  const std::vector<CandidateBounds> cut = candidate_bounds(job, **cost, chunks, ks, worst - 1);
  for (size_t i = 0; i < ks.size(); ++i) {
    EXPECT_EQ(cut[i].memory_bytes, worst);
    EXPECT_EQ(cut[i].model_state_bytes, worst);
    EXPECT_EQ(cut[i].step_time_s, 0.0);
    EXPECT_TRUE(cut[i].step_s.empty());
    EXPECT_FALSE(cut[i].slower_with_smaller_k);
    EXPECT_LE(cut[i].memory_bytes, full[i].memory_bytes);
  }
  // At its model states the layout is priced for memory, which puts every K over the budget:
  // the memory bounds in full, no step bound.
  const std::vector<CandidateBounds> at = candidate_bounds(job, **cost, chunks, ks, worst);
  for (size_t i = 0; i < ks.size(); ++i) {
    EXPECT_EQ(at[i].memory_bytes, full[i].memory_bytes);
    EXPECT_GT(at[i].memory_bytes, worst);
    EXPECT_EQ(at[i].step_time_s, 0.0);
    EXPECT_TRUE(at[i].step_s.empty());
  }
  // With a budget some K fits, it is priced in full.
  int64_t fits = 0;
  for (const CandidateBounds& b : full) fits = std::max(fits, b.memory_bytes);
  const std::vector<CandidateBounds> priced = candidate_bounds(job, **cost, chunks, ks, fits);
  for (size_t i = 0; i < ks.size(); ++i) {
    EXPECT_EQ(priced[i].step_time_s, full[i].step_time_s);
    EXPECT_EQ(priced[i].memory_bytes, full[i].memory_bytes);
  }
}

}  // namespace
}  // namespace cf

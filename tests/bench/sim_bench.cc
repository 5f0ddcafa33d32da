// Simulator speed (Google Benchmark): the discrete-event engine in events/s on a synthetic
// 1F1B-shaped graph, and one full step of Qwen2.5-72B at 256K context (global batch 256,
// pp = 8) replayed by the simulator — with and without building its plan.
#include <benchmark/benchmark.h>

#include "core/check.h"
#include "sim/cost_model.h"
#include "sim/engine.h"
#include "sim/plan/plan_builder.h"
#include "sim/simulator.h"

namespace cf {
namespace {

// pp streams, m micro-batches: per stream F0..F(m-1), B0..B(m-1) (GPipe order, so every
// stream's queue stays busy), F from the previous stream and B from the next, over channels.
void build_pipeline_graph(int pp, int m, EngineGraph* g) {
  g->clear();
  g->reserve(2 * pp * m, 2 * pp * m);
  std::vector<int> fwd(pp * m), bwd(pp * m);
  for (int s = 0; s < pp; ++s) {
    const int stream = g->add_stream();
    for (int i = 0; i < m; ++i) fwd[s * m + i] = g->add_task(stream, 100 + (i * 7919) % 50);
    for (int i = 0; i < m; ++i) bwd[s * m + i] = g->add_task(stream, 200 + (i * 104729) % 90);
  }
  for (int s = 0; s < 2 * pp; ++s) g->add_channel();
  for (int s = 0; s < pp; ++s) {
    for (int i = 0; i < m; ++i) {
      if (s > 0) g->add_input(fwd[s * m + i], fwd[(s - 1) * m + i], 2 * (s - 1), 13);
      if (s < pp - 1)
        g->add_input(bwd[s * m + i], bwd[(s + 1) * m + i], 2 * (s + 1) + 1, 13);
      else
        g->add_input(bwd[s * m + i], fwd[s * m + i], -1, 0);
    }
  }
}

void BM_EngineEvents(benchmark::State& state) {
  EngineGraph graph;
  build_pipeline_graph(8, static_cast<int>(state.range(0)), &graph);
  Engine engine;
  EngineResult result;
  int64_t events = 0;
  for (auto _ : state) {
    engine.run(graph, &result);
    CF_CHECK(!result.deadlocked()) << "benchmark graph deadlocked";
    events += result.events;
  }
  state.counters["events_per_s"] =
      benchmark::Counter(static_cast<double>(events), benchmark::Counter::kIsRate);
  state.counters["events_per_run"] = static_cast<double>(result.events);
}
BENCHMARK(BM_EngineEvents)->Arg(1000)->Arg(20000)->Unit(benchmark::kMillisecond);

Job example_job(const char* path) {
  StatusOr<Job> job = load_job(path);
  CF_CHECK(job.ok()) << job.status().message();
  return *job;
}

// The step the tuner evaluates: the plan prebuilt, the simulator replaying it (no trace).
void BM_SimulateStep72B256K(benchmark::State& state) {
  const Job job = example_job("examples/qwen2.5-72b-256k.yaml");
  StatusOr<Plan> plan = build_plan(job, 0);
  CF_CHECK(plan.ok()) << plan.status().message();
  StatusOr<std::unique_ptr<CostModel>> cost = make_cost_model(job);
  CF_CHECK(cost.ok()) << cost.status().message();
  Simulator simulator;
  int64_t events = 0;
  for (auto _ : state) {
    StatusOr<SimResult> result = simulator.run(job, *plan, **cost);
    CF_CHECK(result.ok()) << result.status().message();
    events += result->metrics.events;
    benchmark::DoNotOptimize(result->metrics.step_time_s);
  }
  state.counters["ops"] = plan->op_count();
  state.counters["events_per_s"] =
      benchmark::Counter(static_cast<double>(events), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_SimulateStep72B256K)->Unit(benchmark::kMillisecond);

// The same step from the job: plan construction included.
void BM_PlanAndSimulateStep72B256K(benchmark::State& state) {
  const Job job = example_job("examples/qwen2.5-72b-256k.yaml");
  StatusOr<std::unique_ptr<CostModel>> cost = make_cost_model(job);
  CF_CHECK(cost.ok()) << cost.status().message();
  Simulator simulator;
  for (auto _ : state) {
    StatusOr<Plan> plan = build_plan(job, 0);
    CF_CHECK(plan.ok()) << plan.status().message();
    StatusOr<SimResult> result = simulator.run(job, *plan, **cost);
    CF_CHECK(result.ok()) << result.status().message();
    benchmark::DoNotOptimize(result->metrics.step_time_s);
  }
}
BENCHMARK(BM_PlanAndSimulateStep72B256K)->Unit(benchmark::kMillisecond);

// Million-token contexts (docs/BEYOND.md): Qwen2.5-72B on 64 H100s (tp 8, pp 8, ChunkSize 16K,
// K 2, K/V offloaded): one step from the job, plan included — range 0: one 1M-token sequence;
// range 1: a long-tailed batch of 256 (bytescale-byted) clamped at 1M tokens.
void BM_PlanAndSimulateStep72B1M(benchmark::State& state) {
  const std::string dataset = state.range(0) == 0
                                  ? "{lengths: [1048576], max_length: 1048576}"
                                  : "{distribution: bytescale-byted, max_length: 1048576, seed: 7}";
  const int batch = state.range(0) == 0 ? 1 : 256;
  StatusOr<Job> job = parse_job(
      "model: qwen2.5-72b\ncluster: {gpu: h100-sxm-80g, gpus: 64, gpus_per_node: 8}\n"
      "dataset: " +
          dataset + "\ntraining: {global_batch: " + std::to_string(batch) +
          ", steps: 1}\nparallel: {tp: 8, pp: 8, dp: 1, sp: true, recompute: full}\n"
          "strategy: {kind: chunkflow, chunk_size: 16384, k: 2, kv_offload: all}\n",
      "<bench>");
  CF_CHECK(job.ok()) << job.status().message();
  StatusOr<std::unique_ptr<CostModel>> cost = make_cost_model(*job);
  CF_CHECK(cost.ok()) << cost.status().message();
  Simulator simulator;
  int ops = 0;
  for (auto _ : state) {
    StatusOr<Plan> plan = build_plan(*job, 0);
    CF_CHECK(plan.ok()) << plan.status().message();
    StatusOr<SimResult> result = simulator.run(*job, *plan, **cost);
    CF_CHECK(result.ok() && result->metrics.feasible) << result.status().message();
    ops = plan->op_count();
    benchmark::DoNotOptimize(result->metrics.step_time_s);
  }
  state.counters["ops"] = ops;
}
BENCHMARK(BM_PlanAndSimulateStep72B1M)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace cf

BENCHMARK_MAIN();

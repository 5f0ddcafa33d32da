// Properties of the simulator over 600 random jobs (tiny model; random parallel sizes,
// schedules, recompute policies, strategies, batches, cost models), several fixed seeds:
// makespan ≥ every stage's busy time and every chunk's dependency chain, bubble ratio in
// [0, 1), memory never negative and all freed by the step's end, peak ≤ analytical bounds,
// the peaks replayed before the engine equal the timed replay's, DP ranks run one at a time
// give the whole graph's metrics (and stop with a true lower bound when told), one rank
// scheduled alone has that rank's streams and peaks and a step no longer, repeat runs
// identical; and
// interleaved 1F1B running to the end for every chunk count.
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <limits>
#include <map>
#include <random>
#include <set>

#include "sim/cost_analytical.h"
#include "sim/cost_unit.h"
#include "sim/memory_model.h"
#include "sim/memory_timeline.h"
#include "tests/sim/simulator_test_util.h"

namespace cf {
namespace {

struct Case {
  Job job;
  Plan plan;
  std::string label;
};

template <typename T>
T pick(std::mt19937_64& rng, std::initializer_list<T> values) {
  std::uniform_int_distribution<size_t> index(0, values.size() - 1);
  return *(values.begin() + index(rng));
}

// A random valid case, or nothing when the plan builder rejects the combination.
std::optional<Case> random_case(std::mt19937_64& rng, const Job& base) {
  Job job = base;
  ParallelConfig& p = job.parallel;
  p.tp = pick(rng, {1, 2});
  p.pp = pick(rng, {1, 2, 4});
  p.dp = pick(rng, {1, 2, 3});
  p.sp = p.tp > 1 && pick(rng, {false, true});
  p.recompute = pick(rng, {Recompute::kNone, Recompute::kSelective, Recompute::kFull});
  p.distributed_optimizer = pick(rng, {false, true});
  p.schedule =
      pick(rng, {ScheduleKind::kOneFOneB, ScheduleKind::kGPipe, ScheduleKind::kInterleaved});
  p.vpp = 1;
  if (p.schedule == ScheduleKind::kInterleaved) {
    if (p.pp == 4)
      p.schedule = ScheduleKind::kOneFOneB;
    else
      p.vpp = 2;
  }
  job.cluster.gpus = p.tp * p.pp * p.dp;
  job.cluster.gpus_per_node = pick(rng, {2, 4, 8});
  const int sequences = std::uniform_int_distribution<int>(1, 14)(rng);
  const int64_t longest = pick<int64_t>(rng, {7, 40, 333});
  job.dataset.lengths.clear();
  for (int i = 0; i < sequences; ++i) {
    job.dataset.lengths.push_back(std::uniform_int_distribution<int64_t>(1, longest)(rng));
  }
  job.dataset.max_length =
      *std::max_element(job.dataset.lengths.begin(), job.dataset.lengths.end());
  job.training.global_batch = sequences;
  StrategyConfig& st = job.strategy;
  st.kind = pick(rng, {StrategyKind::kChunkFlow, StrategyKind::kBaseline});
  st.chunk_size = std::uniform_int_distribution<int64_t>(1, longest)(rng);
  st.k = pick(rng, {1, 2, 3});
  st.packer = pick(rng, {Packer::kBalanced, Packer::kFirstFitDecreasing});
  st.micro_batching = pick(rng, {MicroBatching::kPack, MicroBatching::kPerSequence});
  job.cost_model.kind = pick(rng, {CostModelKind::kUnit, CostModelKind::kAnalytical});
  StatusOr<Plan> plan = build_plan(job, 0);
  if (!plan.ok()) return std::nullopt;
  const std::string label = fmt::format(
      "tp {} pp {} dp {} vpp {} sp {} recompute {} schedule {} strategy {} C {} K {} cost {} "
      "lengths {}",
      p.tp, p.pp, p.dp, p.vpp, p.sp, to_string(p.recompute), to_string(p.schedule),
      to_string(st.kind), st.chunk_size, st.k, to_string(job.cost_model.kind),
      fmt::join(job.dataset.lengths, ","));
  return Case{job, *plan, label};
}

void check_case(const Case& c, Simulator& simulator) {
  StatusOr<std::unique_ptr<CostModel>> cost = make_cost_model(c.job);
  ASSERT_TRUE(cost.ok());
  StatusOr<SimResult> result = simulator.run(c.job, c.plan, **cost, SimOptions{true, true});
  ASSERT_TRUE(result.ok()) << result.status().message();
  const SimMetrics& m = result->metrics;
  const Trace& trace = *result->trace;
  const int64_t makespan = std::llround(m.pipeline_time_s * 1e9);
  EXPECT_GE(m.step_time_s, m.pipeline_time_s);

  // Busy time per (rank, stage) and the dependency chain of each chunk.
  std::map<std::pair<int, int>, int64_t> busy;
  std::map<int, int64_t> chain;
  const int last_virtual = c.plan.pp * c.plan.vpp - 1;
  for (const TraceOp& op : trace.ops) {
    if (op.kind != OpKind::kCompute) continue;
    busy[{op.dp_rank, op.stage}] += op.duration_ns();
    const bool on_chain =
        op.pass != Pass::kRecompute || op.model_chunk * c.plan.pp + op.stage == last_virtual;
    if (on_chain) chain[op.chunk] += op.duration_ns();
  }
  for (const auto& [where, ns] : busy) EXPECT_GE(makespan, ns) << "rank/stage " << where.first;
  for (const auto& [chunk, ns] : chain) EXPECT_GE(makespan, ns) << "chunk " << chunk;

  EXPECT_GE(m.bubble_ratio, 0.0);
  EXPECT_LT(m.bubble_ratio, 1.0);
  for (const StageMetrics& st : m.stages) {
    EXPECT_GE(st.bubble_ratio, 0.0);
    EXPECT_LT(st.bubble_ratio, 1.0);
  }

  // Memory: never negative, all freed, peak under the bounds.
  for (const MemorySample& s : trace.memory) {
    ASSERT_GE(s.bytes, 0) << (s.category ? memory_category_name(*s.category) : "total");
  }
  EXPECT_EQ(m.memory_min_category_bytes, 0);
  EXPECT_EQ(m.memory_left_bytes, 0);
  const MemoryModel memory(c.job.model, c.job.parallel);
  for (int r = 0; r < c.plan.dp; ++r) {
    for (int s = 0; s < c.plan.pp; ++s) {
      // Everything of every chunk of the rank held at once, plus the largest transient.
      int64_t everything = 0, transient = 0;
      std::vector<int64_t> activations;
      for (int chunk_id : c.plan.ranks[r].chunks) {
        const Chunk& chunk = c.plan.chunks[chunk_id];
        for (int v = 0; v < c.plan.vpp; ++v) {
          const StagePlace place = stage_place(c.plan.split(), s, v);
          const bool last = place.last;
          const int64_t act = memory.activation_bytes(place, chunk.tokens, false);
          activations.push_back(act);
          everything += act + memory.stage_input_bytes(chunk.tokens) +
                        memory.kv_bytes(place, chunk.tokens) +
                        memory.dkv_bytes(place, chunk.tokens);
          for (Pass pass : {Pass::kForward, Pass::kForwardKeepKV, Pass::kBackward}) {
            transient = std::max(transient, memory.transient_bytes(pass, chunk.tokens, last));
          }
        }
      }
      const int64_t states = memory.model_states(s).total();
      const auto& peak = trace.peak_memory.at({r, s});
      EXPECT_LE(peak.total(), states + everything + transient) << "rank " << r << " stage " << s;
      // 1F1B baseline: at most min(pp − s, m) micro-batches in flight (Megatron-LM's count),
      // so activations ≤ the pp − s largest.
      if (c.plan.strategy == StrategyKind::kBaseline &&
          c.plan.schedule == ScheduleKind::kOneFOneB) {
        std::sort(activations.rbegin(), activations.rend());
        int64_t bound = 0;
        for (int i = 0; i < std::min<int>(c.plan.pp - s, activations.size()); ++i)
          bound += activations[i];
        EXPECT_LE(peak.activations, bound) << "rank " << r << " stage " << s;
      }
    }
  }

  // Memory before time: the peaks replayed without times are the timed replay's. Memory only,
  // or a budget below the worst peak, stops there (timed = false); a budget at the peak runs
  // the whole step with the same numbers.
  int64_t worst_peak = 0;
  for (const StageMetrics& st : m.stages) worst_peak = std::max(worst_peak, st.peak_memory_bytes);
  SimOptions memory_only;
  memory_only.memory_only = true;
  SimOptions below, at;
  below.memory_budget_bytes = worst_peak - 1;
  at.memory_budget_bytes = worst_peak;
  for (const SimOptions& options : {memory_only, below, at}) {
    StatusOr<SimResult> r = simulator.run(c.job, c.plan, **cost, options);
    ASSERT_TRUE(r.ok()) << r.status().message();
    EXPECT_EQ(r->metrics.timed, options.memory_budget_bytes == worst_peak);
    EXPECT_EQ(r->metrics.step_time_s, r->metrics.timed ? m.step_time_s : 0.0);
    EXPECT_EQ(r->metrics.feasible, m.feasible);
    ASSERT_EQ(r->metrics.stages.size(), m.stages.size());
    for (size_t s = 0; s < m.stages.size(); ++s) {
      EXPECT_EQ(r->metrics.stages[s].peak_memory_bytes, m.stages[s].peak_memory_bytes) << s;
      EXPECT_EQ(r->metrics.stages[s].peak_breakdown, m.stages[s].peak_breakdown) << s;
    }
  }

  // DP ranks one at a time (the tuner's give-up mode): with a limit never reached, the same
  // metrics as the whole graph; with a limit under the step time it stops (timed = false)
  // with a lower bound of the step time above the limit.
  SimOptions by_rank;
  by_rank.give_up_above_ns = std::numeric_limits<int64_t>::max();
  StatusOr<SimResult> ranked = simulator.run(c.job, c.plan, **cost, by_rank);
  ASSERT_TRUE(ranked.ok()) << ranked.status().message();
  EXPECT_TRUE(ranked->metrics.timed);
  SimOptions plain;
  StatusOr<SimResult> whole = simulator.run(c.job, c.plan, **cost, plain);
  ASSERT_TRUE(whole.ok()) << whole.status().message();
  EXPECT_EQ(metrics_to_json(ranked->metrics).dump(), metrics_to_json(whole->metrics).dump());
  const int64_t step_ns = std::llround(m.step_time_s * 1e9);
  if (step_ns > 2) {
    SimOptions tight;
    tight.give_up_above_ns = step_ns / 2;
    StatusOr<SimResult> stopped = simulator.run(c.job, c.plan, **cost, tight);
    ASSERT_TRUE(stopped.ok()) << stopped.status().message();
    EXPECT_FALSE(stopped->metrics.timed);
    EXPECT_GT(std::llround(stopped->metrics.step_time_s * 1e9), step_ns / 2);
    EXPECT_LE(stopped->metrics.step_time_s, m.step_time_s);
  }

  // One rank alone (PlanInputs::only_rank, the tuner's first look): its streams, memory peaks
  // and pipeline are those of the whole plan, and its step is no longer than the whole step.
  if (c.plan.dp > 1) {
    for (int r = 0; r < c.plan.dp; ++r) {
      PlanInputs in = plan_inputs_from_job(c.job, 0);
      in.only_rank = r;
      StatusOr<Plan> one = build_plan(in);
      ASSERT_TRUE(one.ok()) << one.status().message();
      for (int s = 0; s < c.plan.pp; ++s) {
        const std::vector<Op>& mine = one->ranks[r].stages[s].ops;
        const std::vector<Op>& whole_ops = c.plan.ranks[r].stages[s].ops;
        ASSERT_EQ(mine.size(), whole_ops.size()) << "rank " << r << " stage " << s;
        for (size_t i = 0; i < mine.size(); ++i) {
          EXPECT_EQ(mine[i].pass, whole_ops[i].pass);
          EXPECT_EQ(mine[i].chunk, whole_ops[i].chunk);
        }
      }
      StatusOr<SimResult> alone = simulator.run(c.job, *one, **cost, SimOptions{true, false});
      ASSERT_TRUE(alone.ok()) << alone.status().message();
      for (int s = 0; s < c.plan.pp; ++s) {
        EXPECT_EQ(alone->trace->peak_memory.at({r, s}), trace.peak_memory.at({r, s}));
      }
      EXPECT_LE(alone->metrics.step_time_s, m.step_time_s);
    }
  }

  // Same inputs, same simulator: identical metrics and trace.
  StatusOr<SimResult> again = simulator.run(c.job, c.plan, **cost, SimOptions{true, false});
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->metrics.step_time_s, m.step_time_s);
  ASSERT_EQ(again->trace->ops.size(), trace.ops.size());
  for (size_t i = 0; i < trace.ops.size(); ++i) {
    EXPECT_EQ(again->trace->ops[i].start_ns, trace.ops[i].start_ns);
  }
}

class SimulatorProperties : public ::testing::TestWithParam<uint64_t> {};

TEST_P(SimulatorProperties, HoldOnRandomJobs) {
  const Job base = test::tiny_job(1, 1, 1, "", "{kind: chunkflow, chunk_size: 8, k: 1}", "5");
  std::mt19937_64 rng(GetParam());
  Simulator simulator;
  int checked = 0, attempts = 0;
  while (checked < 150 && attempts < 2000) {
    ++attempts;
    std::optional<Case> c = random_case(rng, base);
    if (!c) continue;
    SCOPED_TRACE(c->label);
    check_case(*c, simulator);
    if (HasFatalFailure()) return;
    ++checked;
  }
  EXPECT_EQ(checked, 150);  // 4 seeds × 150 = 600 random jobs
}

// Interleaved 1F1B in the engine for every chunk count: random m per DP rank (every remainder
// mod pp, and m < pp), pp 2..5, vpp 2..4, ChunkFlow with split sequences or the baseline, both
// cost models. Every plan simulates to the end (the engine reports a deadlock as an error),
// every op of the plan runs once, and the step is no shorter than any stage's busy time.
TEST(InterleavedInTheEngine, EveryChunkCountRunsToTheEnd) {
  const Job base = test::tiny_job(1, 1, 1, "", "{kind: chunkflow, chunk_size: 8, k: 1}", "5");
  std::mt19937_64 rng(77);
  Simulator simulator;
  std::set<int> remainders;
  for (int trial = 0; trial < 240; ++trial) {
    Job job = base;
    ParallelConfig& p = job.parallel;
    p.pp = std::uniform_int_distribution<int>(2, 5)(rng);
    p.vpp = std::uniform_int_distribution<int>(2, 4)(rng);
    p.dp = pick(rng, {1, 2});
    p.schedule = ScheduleKind::kInterleaved;
    job.model.layers = static_cast<int64_t>(p.pp) * p.vpp;
    job.cluster.gpus = p.pp * p.dp;
    job.cluster.gpus_per_node = 8;
    const int sequences = std::uniform_int_distribution<int>(1, 6 * p.pp)(rng);
    job.dataset.lengths.clear();
    for (int i = 0; i < sequences; ++i) {
      job.dataset.lengths.push_back(std::uniform_int_distribution<int64_t>(1, 30)(rng));
    }
    job.dataset.max_length = 64;
    job.training.global_batch = sequences;
    job.strategy.kind = pick(rng, {StrategyKind::kChunkFlow, StrategyKind::kBaseline});
    job.strategy.chunk_size = std::uniform_int_distribution<int64_t>(4, 16)(rng);
    job.strategy.k = pick(rng, {1, 2});
    job.strategy.micro_batching = MicroBatching::kPerSequence;
    job.cost_model.kind = pick(rng, {CostModelKind::kUnit, CostModelKind::kAnalytical});
    StatusOr<Plan> plan = build_plan(job, 0);
    ASSERT_TRUE(plan.ok()) << plan.status().message();
    for (const RankPlan& rank : plan->ranks) {
      const int m = static_cast<int>(rank.chunks.size());
      remainders.insert(m < p.pp ? -1 : m % p.pp);
    }
    StatusOr<std::unique_ptr<CostModel>> cost = make_cost_model(job);
    ASSERT_TRUE(cost.ok());
    StatusOr<SimResult> result = simulator.run(job, *plan, **cost, SimOptions{true, false});
    ASSERT_TRUE(result.ok()) << "trial " << trial << " pp " << p.pp << " vpp " << p.vpp << ": "
                             << result.status().message();
    int compute_ops = 0;
    std::map<std::pair<int, int>, int64_t> busy;
    for (const TraceOp& op : result->trace->ops) {
      if (op.kind != OpKind::kCompute) continue;
      ++compute_ops;
      busy[{op.dp_rank, op.stage}] += op.duration_ns();
    }
    EXPECT_EQ(compute_ops, plan->op_count()) << "trial " << trial;
    const int64_t makespan = std::llround(result->metrics.pipeline_time_s * 1e9);
    for (const auto& [where, ns] : busy) EXPECT_GE(makespan, ns) << "trial " << trial;
  }
  for (int r : {-1, 0, 1, 2, 3}) EXPECT_TRUE(remainders.count(r)) << "remainder " << r;
}

INSTANTIATE_TEST_SUITE_P(Seeds, SimulatorProperties, ::testing::Values(1, 7, 4242, 987654321));

}  // namespace
}  // namespace cf

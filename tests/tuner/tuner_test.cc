// The search: pruned and exhaustive searches agree (best and the whole top N) on random jobs;
// no recommended configuration is over the memory budget; a search where nothing fits says
// why; results do not depend on the thread count; K values beyond the longest group fold;
// the winner's job YAML reproduces the predicted step time through `simulate`.
#include "tuner/tuner.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <optional>

#include "sim/simulator.h"
#include "tests/tuner/tuner_test_util.h"
#include "tuner/layer_balance.h"
#include "tuner/report.h"

namespace cf {
namespace {

TuneResult run(const Job& job, const SearchSpace& space, bool exhaustive, int threads = 2) {
  TuneOptions options;
  options.exhaustive = exhaustive;
  options.threads = threads;
  StatusOr<TuneResult> result = tune(job, space, options);
  EXPECT_TRUE(result.ok()) << result.status().message();
  return *std::move(result);
}

int64_t peak_of(const SimMetrics& m) {
  int64_t peak = 0;
  for (const StageMetrics& st : m.stages) peak = std::max(peak, st.peak_memory_bytes);
  return peak;
}

TEST(TunerTest, PrunedAndExhaustiveAgreeOnRandomJobs) {
  int pruned_somewhere = 0, infeasible_somewhere = 0;
  // Seeds 1-24 on 4 GPUs; 25-32 on 16 GPUs with K up to 12, where DP ranks are many enough
  // for one-rank screens and families long enough for pruning by a larger K.
  for (uint64_t seed = 1; seed <= 32; ++seed) {
    const Job job = test::random_job(seed, "", seed <= 24 ? 4 : 16);
    SearchSpace space = test::random_space(job, seed);
    if (seed > 24) {
      space.ks.clear();
      for (int k = 1; k <= 12; ++k) space.ks.push_back(k);
    }
    const TuneResult pruned = run(job, space, false);
    const TuneResult exhaustive = run(job, space, true);
    SCOPED_TRACE(fmt::format("seed {}", seed));
    EXPECT_EQ(exhaustive.chunkflow.evaluated, exhaustive.chunkflow.candidates);
    EXPECT_EQ(pruned.chunkflow.candidates, exhaustive.chunkflow.candidates);
    EXPECT_EQ(
        pruned.chunkflow.evaluated + pruned.chunkflow.pruned_time + pruned.chunkflow.pruned_memory,
        pruned.chunkflow.candidates);
    ASSERT_EQ(pruned.chunkflow.ranked.empty(), exhaustive.chunkflow.ranked.empty());
    const size_t top = std::min<size_t>(exhaustive.chunkflow.ranked.size(), space.top);
    ASSERT_GE(pruned.chunkflow.ranked.size(), top);
    for (size_t i = 0; i < top; ++i) {
      EXPECT_EQ(pruned.chunkflow.ranked[i].candidate.index,
                exhaustive.chunkflow.ranked[i].candidate.index)
          << "rank " << i + 1;
      EXPECT_EQ(pruned.chunkflow.ranked[i].metrics.step_time_s,
                exhaustive.chunkflow.ranked[i].metrics.step_time_s);
    }
    // The baseline's best agrees too.
    ASSERT_EQ(pruned.best_baseline() == nullptr, exhaustive.best_baseline() == nullptr);
    if (pruned.best_baseline()) {
      EXPECT_EQ(pruned.best_baseline()->candidate.index,
                exhaustive.best_baseline()->candidate.index);
    }
    pruned_somewhere += pruned.chunkflow.pruned_time + pruned.chunkflow.pruned_memory > 0;
    infeasible_somewhere += exhaustive.chunkflow.infeasible > 0;
  }
  EXPECT_GT(pruned_somewhere, 16);  // pruning is exercised, not vacuous
  EXPECT_GT(infeasible_somewhere, 2);
}

TEST(TunerTest, NeverRecommendsAnInfeasibleConfiguration) {
  int with_best = 0, with_infeasible = 0;
  for (uint64_t seed : {3u, 5u, 11u, 13u, 21u, 33u}) {
    const Job job = test::random_job(seed, "qwen2.5-7b", 8);
    const SearchSpace space = test::random_space(job, seed);
    const TuneResult result = run(job, space, false);
    SCOPED_TRACE(fmt::format("seed {}", seed));
    for (const RankedCandidate& r : result.chunkflow.ranked) {
      EXPECT_TRUE(r.metrics.feasible);
      EXPECT_LE(peak_of(r.metrics), result.memory_budget_bytes);
    }
    with_infeasible += result.chunkflow.infeasible > 0;
    if (result.best() == nullptr) continue;
    ++with_best;
    // Re-simulated from its job file: same prediction, within the budget.
    StatusOr<Job> reloaded = parse_job(best_job_yaml(result), "<best>");
    ASSERT_TRUE(reloaded.ok()) << reloaded.status().message();
    StatusOr<SimResult> sim = simulate_job(*reloaded);
    ASSERT_TRUE(sim.ok());
    EXPECT_EQ(sim->metrics.step_time_s, result.best()->metrics.step_time_s);
    EXPECT_EQ(peak_of(sim->metrics), peak_of(result.best()->metrics));
    EXPECT_LE(peak_of(sim->metrics), result.memory_budget_bytes);
  }
  EXPECT_GE(with_best, 3);
  EXPECT_GE(with_infeasible, 2);  // the budget binds: some candidates were rejected
}

TEST(TunerTest, NothingFitsIsAResultWithReasons) {
  // Qwen2.5-72B on 2 GPUs: the model states alone exceed 80 GB for every layout.
  StatusOr<Job> job = parse_job(
      "model: qwen2.5-72b\ncluster: {gpu: h100-sxm-80g, gpus: 2}\n"
      "dataset: {lengths: [3000, 17000, 900], max_length: 32768}\n"
      "parallel: {tp: 2, pp: 1, dp: 1}\nstrategy: {kind: chunkflow, chunk_size: 4096, k: 1}\n"
      "tune: {tp: all, pp: all, recompute: all, k_max: 3}\n",
      "<72b on 2 GPUs>");
  ASSERT_TRUE(job.ok()) << job.status().message();
  StatusOr<SearchSpace> space = read_search_space(*job, {});
  ASSERT_TRUE(space.ok()) << space.status().message();
  for (bool exhaustive : {false, true}) {
    const TuneResult result = run(*job, *space, exhaustive);
    EXPECT_EQ(result.best(), nullptr);
    EXPECT_EQ(result.chunkflow.infeasible, result.chunkflow.candidates);
    EXPECT_GT(result.chunkflow.candidates, 0);
    EXPECT_FALSE(result.chunkflow.closest_miss.empty());
    if (!exhaustive) {
      EXPECT_EQ(
          result.chunkflow.infeasible_reasons.at("model states alone exceed the memory budget"),
          result.chunkflow.candidates);
    }
    const std::string text = tune_report_text(result);
    EXPECT_NE(text.find("VERDICT: nothing fits"), std::string::npos) << text;
    EXPECT_NE(text.find("model states"), std::string::npos) << text;
    const nlohmann::json json = tune_report_json(result);
    EXPECT_TRUE(json["best"].is_null());
    EXPECT_FALSE(json["feasible"].get<bool>());
  }
}

TEST(TunerTest, SameResultForEveryThreadCount) {
  for (uint64_t seed : {2u, 7u, 19u}) {
    const Job job = test::random_job(seed);
    const SearchSpace space = test::random_space(job, seed);
    const TuneResult single = run(job, space, false, 1);
    const std::string one = tune_report_json(single).dump();
    for (int threads : {2, 3, 8}) {
      const TuneResult result = run(job, space, false, threads);
      EXPECT_EQ(tune_report_json(result).dump(), one) << "seed " << seed << " threads " << threads;
      if (result.best()) {
        EXPECT_EQ(best_job_yaml(result), best_job_yaml(single));
      }
    }
  }
}

TEST(TunerTest, FoldsKBeyondTheLongestGroup) {
  // ChunkSize 1024: the 2900-token sequence splits into 3 chunks, the others into at most 2.
  StatusOr<Job> job = parse_job(
      "model: tiny\ncluster: {gpu: h100-sxm-80g, gpus: 2}\n"
      "dataset: {lengths: [2900, 1500, 300, 77], max_length: 4096}\n"
      "parallel: {tp: 1, pp: 2, dp: 1}\nstrategy: {kind: chunkflow, chunk_size: 1024, k: 1}\n"
      "tune: {chunk_sizes: [1024, 4096], k_max: 64}\n",
      "<fold>");
  ASSERT_TRUE(job.ok()) << job.status().message();
  StatusOr<SearchSpace> space = read_search_space(*job, {});
  ASSERT_TRUE(space.ok()) << space.status().message();
  const TuneResult result = run(*job, *space, true);
  // 1024: K = 1, 2, 3 (3 stands for 3..64); 4096: nothing splits, one candidate for all K.
  EXPECT_EQ(result.chunkflow.candidates, 4);
  EXPECT_EQ(result.chunkflow.folded, 61 + 63);
  EXPECT_EQ(result.max_group_size, 3);
  for (const RankedCandidate& r : result.chunkflow.ranked) {
    if (r.candidate.strategy.chunk_size == 1024 && r.candidate.strategy.k == 3) {
      EXPECT_EQ(r.candidate.k_covers, 64);
      EXPECT_EQ(k_label(r.candidate), "3+");
    }
    if (r.candidate.strategy.chunk_size == 4096) {
      EXPECT_EQ(k_label(r.candidate), "any");
    }
  }
}

TEST(TunerTest, ExplainsTheWinnerAgainstRunnerUpAndBaseline) {
  const Job job = test::random_job(4, "qwen2.5-0.5b", 8);
  SearchSpace space = test::random_space(job, 4);
  const TuneResult result = run(job, space, false);
  ASSERT_NE(result.best(), nullptr);
  const std::vector<std::string> lines = explanation(result);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_NE(lines[0].find("runner-up"), std::string::npos);
  EXPECT_NE(lines[1].find("baseline"), std::string::npos);
  const nlohmann::json json = tune_report_json(result);
  for (const char* key :
       {"chunk_size", "k", "step_time_s", "peak_memory_bytes", "tp", "pp", "dp"}) {
    EXPECT_TRUE(json["best"].contains(key)) << key;
  }
  for (const char* key : {"evaluated", "pruned", "infeasible"})
    EXPECT_TRUE(json.contains(key)) << key;
  if (result.best_baseline()) {
    EXPECT_DOUBLE_EQ(
        json["baseline"]["speedup"].get<double>(),
        result.best_baseline()->metrics.step_time_s / result.best()->metrics.step_time_s);
    // The baseline's winner says how it builds micro-batches and its CP size.
    EXPECT_TRUE(json["baseline"]["best"].contains("micro_batching"));
    EXPECT_TRUE(json["baseline"]["best"].contains("cp"));
  }
  // The baseline searched both micro-batchings over every layout, cp and layer splits included.
  EXPECT_EQ(result.baseline.candidates,
            2 * static_cast<int>(with_layer_splits(all_layouts(job), space.splits, job).size()));
}

// The paper's baseline (one sequence per micro-batch) and the packed one are both searched,
// and the better is reported: on random jobs the reported best baseline is no slower than the
// best of either micro-batching searched alone by simulating every layout.
TEST(TunerTest, BaselineIsTheBestOfBothMicroBatchings) {
  int compared = 0;
  for (uint64_t seed : {11u, 12u}) {
    SCOPED_TRACE(seed);
    const Job job = test::random_job(seed, "qwen2.5-0.5b", 8);
    SearchSpace space = test::random_space(job, seed);
    const TuneResult result = run(job, space, true);
    const RankedCandidate* base = result.best_baseline();
    if (base == nullptr) continue;
    for (MicroBatching mb : {MicroBatching::kPack, MicroBatching::kPerSequence}) {
      for (const ParallelLayout& layout : all_layouts(job)) {
        StrategyConfig strategy;
        strategy.kind = StrategyKind::kBaseline;
        strategy.micro_batching = mb;
        StatusOr<SimResult> sim = simulate_job(job_with(job, layout, strategy), SimOptions{});
        if (!sim.ok() || !sim->metrics.feasible) continue;
        int64_t peak = sim->metrics.worst_case_peak_bytes;
        for (const StageMetrics& st : sim->metrics.stages)
          peak = std::max(peak, st.peak_memory_bytes);
        if (peak > result.memory_budget_bytes) continue;
        EXPECT_LE(base->metrics.step_time_s, sim->metrics.step_time_s + 1e-12)
            << describe(layout) << " " << to_string(mb);
        ++compared;
      }
    }
  }
  EXPECT_GT(compared, 0);
}

}  // namespace
}  // namespace cf

namespace cf {
namespace {

// The comparison reads the right way round: faster, tied, or — when the other configuration
// (a tuned baseline) is the faster — slower, never "tied" across a 6% gap.
TEST(TunerReport, ExplainDifferenceSaysWhichIsFaster) {
  SimMetrics a, b;
  a.stages.resize(1);
  b.stages.resize(1);
  a.step_time_s = 34.1;
  b.step_time_s = 32.1;
  EXPECT_NE(explain_difference(a, b).find("SLOWER (34.1000 vs 32.1000 s, 6.23% more time)"),
            std::string::npos)
      << explain_difference(a, b);
  EXPECT_NE(explain_difference(b, a).find("2.0000 s per step faster"), std::string::npos);
  b.step_time_s = 34.1001;
  EXPECT_NE(explain_difference(a, b).find("practically tied"), std::string::npos);
}

// K/V offload in the search: with the state on the GPU no layout holds one 4M-token sequence of
// Qwen2.5-7B on 8 H100s; offloaded, the search (no candidate pruned by the memory bound, which
// counts the K/V on the GPU) finds ones that fit, each candidate offloading as the job says and
// its metrics those `simulate` gives the winner's job; with `auto` the same winner, offloaded.
// The offload tests' search: ChunkSize 32K and 64K, K 1 and 2, cp 1 and 2, recompute none and
// full, tp 4 and `pp` (the job's when empty); two threads, no baseline.
StatusOr<SearchSpace> offload_space(const Job& job, const std::string& pp) {
  SpaceFlags flags;
  flags.tp = "4";
  if (!pp.empty()) flags.pp = pp;
  flags.cp = "1,2";
  flags.recompute = "none,full";
  flags.chunk_sizes = "32768,65536";
  flags.k = "1,2";
  return read_search_space(job, flags);
}

TuneOptions offload_options() {
  TuneOptions options;
  options.baseline = false;
  options.threads = 2;
  return options;
}

TEST(TunerTest, OffloadMakesAFourMillionTokenSequenceFit) {
  StatusOr<Job> job = load_job("examples/qwen2.5-7b-4m-offload.yaml");
  ASSERT_TRUE(job.ok()) << job.status().message();
  StatusOr<SearchSpace> space = offload_space(*job, "");
  ASSERT_TRUE(space.ok()) << space.status().message();
  const TuneOptions options = offload_options();
  Job on_device = *job;
  on_device.strategy.kv_offload = KvOffload::kNone;
  StatusOr<TuneResult> none = tune(on_device, *space, options);
  ASSERT_TRUE(none.ok()) << none.status().message();
  EXPECT_EQ(none->best(), nullptr);
  StatusOr<TuneResult> all = tune(*job, *space, options);
  ASSERT_TRUE(all.ok()) << all.status().message();
  ASSERT_NE(all->best(), nullptr) << all->chunkflow.closest_miss;
  EXPECT_EQ(all->chunkflow.pruned_memory, 0);
  EXPECT_EQ(all->best()->candidate.strategy.kv_offload, KvOffload::kAll);
  EXPECT_GT(all->best()->metrics.host_bytes_per_node, 0);
  StatusOr<SimResult> again = simulate_job(best_job(*all));
  ASSERT_TRUE(again.ok()) << again.status().message();
  EXPECT_EQ(again->metrics.step_time_s, all->best()->metrics.step_time_s);
  EXPECT_TRUE(again->metrics.feasible);
  // auto: nothing fits with the K/V on the GPU, so every candidate that fits is offloaded, and
  // the ranking is the all-offloaded one.
  Job automatic = *job;
  automatic.strategy.kv_offload = KvOffload::kAuto;
  StatusOr<TuneResult> chosen = tune(automatic, *space, options);
  ASSERT_TRUE(chosen.ok()) << chosen.status().message();
  ASSERT_NE(chosen->best(), nullptr);
  EXPECT_TRUE(chosen->best()->candidate.auto_offload);
  EXPECT_EQ(chosen->best()->candidate.strategy.kv_offload, KvOffload::kAll);
  EXPECT_EQ(chosen->best()->metrics.kv_offload, "auto: all");
  EXPECT_EQ(chosen->best()->metrics.step_time_s, all->best()->metrics.step_time_s);
  EXPECT_EQ(candidate_label(chosen->best()->candidate), candidate_label(all->best()->candidate));
}

// kv_offload: auto in the tuner decides per candidate: a configuration keeps its K/V on the GPU
// when it fits the budget so, and offloads them only when it does not. On one 1M-token
// sequence (Qwen2.5-7B, 8 × H100) some configurations fit on the GPU and some only offloaded;
// every ranked one is checked against its own simulation both ways, and the best of auto is at
// least as good as the best on the GPU alone and as the best with everything offloaded.
// The best of `auto` against the best of the same search with the K/V on the GPU and with all
// of it offloaded: at least as good as either.
void expect_no_worse_than_fixed(const Job& job, const SearchSpace& space,
                                const TuneOptions& options, const TuneResult& automatic) {
  ASSERT_NE(automatic.best(), nullptr);
  for (const KvOffload fixed : {KvOffload::kNone, KvOffload::kAll}) {
    Job placed = job;
    placed.strategy.kv_offload = fixed;
    StatusOr<TuneResult> other = tune(placed, space, options);
    ASSERT_TRUE(other.ok()) << other.status().message();
    ASSERT_NE(other->best(), nullptr);
    EXPECT_LE(automatic.best()->metrics.step_time_s, other->best()->metrics.step_time_s)
        << to_string(fixed);
  }
}

// Qwen2.5-7B on 8 × H100 (tp 4, pp 2, sp, full recompute, C 32K, K 2) with kv_offload: auto,
// one step of `lengths`, tuned over offload_space with pp 1–2, the top 100 kept.
struct AutoSearch {
  Job job;
  SearchSpace space;
  TuneOptions options = offload_options();
  std::optional<TuneResult> result;
};
void tune_auto(const std::vector<int64_t>& lengths, AutoSearch* out) {
  const std::string text = fmt::format(
      "model: qwen2.5-7b\ncluster: {{gpu: h100-sxm-80g, gpus: 8, gpus_per_node: 8}}\n"
      "dataset: {{lengths: [{}], max_length: {}}}\n"
      "training: {{global_batch: {}, steps: 1}}\n"
      "parallel: {{tp: 4, pp: 2, dp: 1, sp: true, recompute: full, schedule: 1f1b}}\n"
      "strategy: {{kind: chunkflow, chunk_size: 32768, k: 2, kv_offload: auto}}\n"
      "cost_model: {{kind: analytical}}\n",
      fmt::join(lengths, ", "), *std::max_element(lengths.begin(), lengths.end()), lengths.size());
  StatusOr<Job> job = parse_job(text, "auto.yaml");
  ASSERT_TRUE(job.ok()) << job.status().message();
  out->job = *job;
  StatusOr<SearchSpace> space = offload_space(out->job, "1,2");
  ASSERT_TRUE(space.ok()) << space.status().message();
  out->space = *space;
  out->space.top = 100;
  StatusOr<TuneResult> result = tune(out->job, out->space, out->options);
  ASSERT_TRUE(result.ok()) << result.status().message();
  out->result = *std::move(result);
}

TEST(TunerTest, AutoOffloadsOnlyTheCandidatesThatDoNotFit) {
  AutoSearch search;
  ASSERT_NO_FATAL_FAILURE(tune_auto({1048576}, &search));
  const Job* job = &search.job;
  const TuneResult* chosen = &*search.result;
  int on_gpu = 0, offloaded = 0;
  for (const RankedCandidate& r : chosen->chunkflow.ranked) {
    SCOPED_TRACE(candidate_label(r.candidate));
    ASSERT_TRUE(r.candidate.auto_offload);
    Job kept = job_with(*job, r.candidate.layout, r.candidate.strategy);
    kept.strategy.kv_offload = KvOffload::kNone;
    StatusOr<SimResult> on_device = simulate_job(kept);
    ASSERT_TRUE(on_device.ok()) << on_device.status().message();
    const int64_t peak = std::max(worst_stage_peak_bytes(on_device->metrics),
                                  on_device->metrics.worst_case_peak_bytes);
    if (r.candidate.strategy.kv_offload == KvOffload::kNone) {
      ++on_gpu;
      EXPECT_EQ(r.metrics.kv_offload, "auto: none");
      EXPECT_LE(peak, chosen->memory_budget_bytes);
      EXPECT_EQ(r.metrics.step_time_s, on_device->metrics.step_time_s);
    } else {
      ++offloaded;
      EXPECT_EQ(r.metrics.kv_offload, "auto: all");
      EXPECT_GT(peak, chosen->memory_budget_bytes);  // it had to go
      EXPECT_GT(r.metrics.host_bytes_per_node, 0);
    }
  }
  EXPECT_GT(on_gpu, 0);
  EXPECT_GT(offloaded, 0);
  expect_no_worse_than_fixed(search.job, search.space, search.options, *chosen);
}

// With several long sequences, kv_offload: auto offloads per candidate only the longest ones
// that must leave the GPU: on a batch of 2M down to 32K tokens (Qwen2.5-7B, 8 × H100), every
// ranked candidate that offloads is checked against its own simulation — with its line it
// fits the budget at the same step time, with the next longer line (or none) it does not —
// some keep the shorter sequences on the GPU, and the best of auto is at least as good as
// the best on the GPU alone and as the best with everything offloaded.
TEST(TunerTest, AutoOffloadsPerCandidateOnlyTheLongestSequencesThatMustGo) {
  const std::vector<int64_t> lengths{2097152, 1048576, 786432, 524288,
                                     262144,  131072,  65536,  32768};
  AutoSearch search;
  ASSERT_NO_FATAL_FAILURE(tune_auto(lengths, &search));
  const Job* job = &search.job;
  const TuneResult* chosen = &*search.result;
  auto peak_with = [&](const Candidate& c, KvOffload where, int64_t line, double* step_s) {
    Job placed = job_with(*job, c.layout, c.strategy);
    placed.strategy.kv_offload = where;
    placed.strategy.kv_offload_min_tokens = line;
    StatusOr<SimResult> sim = simulate_job(placed);
    EXPECT_TRUE(sim.ok()) << sim.status().message();
    if (!sim.ok()) return int64_t{0};
    if (step_s != nullptr) *step_s = sim->metrics.step_time_s;
    return std::max(worst_stage_peak_bytes(sim->metrics), sim->metrics.worst_case_peak_bytes);
  };
  const int64_t budget = chosen->memory_budget_bytes;
  int lines = 0, everything = 0;
  for (const RankedCandidate& r : chosen->chunkflow.ranked) {
    const Candidate& c = r.candidate;
    if (c.strategy.kv_offload == KvOffload::kNone) continue;
    SCOPED_TRACE(candidate_label(c));
    std::vector<int64_t> split;  // the candidate's split sequences, longest first
    for (const int64_t length : lengths) {
      if (length > c.strategy.chunk_size) split.push_back(length);
    }
    const int64_t line = c.strategy.kv_offload_min_tokens;
    double step_s = 0;
    EXPECT_LE(peak_with(c, KvOffload::kAll, line, &step_s), budget);
    EXPECT_EQ(r.metrics.step_time_s, step_s);
    // The next longer line: the one before `line` in `split`; for all, the second shortest.
    const auto at = std::find(split.begin(), split.end(), line > 0 ? line : split.back());
    ASSERT_NE(at, split.end());
    if (at == split.begin()) {
      EXPECT_GT(peak_with(c, KvOffload::kNone, 0, nullptr), budget);
    } else {
      EXPECT_GT(peak_with(c, KvOffload::kAll, *(at - 1), nullptr), budget) << *(at - 1);
    }
    if (line > 0) {
      ++lines;
      EXPECT_EQ(r.metrics.kv_offload, fmt::format("auto: all ≥ {} tokens", line));
    } else {
      ++everything;
      EXPECT_EQ(r.metrics.kv_offload, "auto: all");
    }
  }
  EXPECT_GT(lines, 0);
  expect_no_worse_than_fixed(search.job, search.space, search.options, *chosen);
  RecordProperty("offloaded_all", everything);
}

}  // namespace
}  // namespace cf

// The executor's memory as the simulator's source (executor/calibrate/executor_memory.h) against
// the executor's measuring allocator in a real run: for ChunkFlow (K = 1, 2, N; odd
// ChunkSizes), the baseline, pp 1/2/3/4 (even and uneven splits), DP, interleaving, GPipe and
// tied embeddings, the peak the simulator predicts for every stage equals the measured peak to
// the byte; model states match the executor's parameter buffers; records map to the replay's
// op bytes as stated.
#include "executor/calibrate/executor_memory.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <vector>

#include "executor/calibrate/run_memory.h"
#include "executor/executor.h"
#include "executor/params.h"
#include "sim/memory_model.h"
#include "sim/simulator.h"
#include "tests/support/executor_fixture.h"

namespace cf {
namespace {

// Peak bytes of each stage the simulator predicts with the executor's memory (the job's
// default with the calibrated cost model; the unit cost model times it here: memory does not
// depend on the times, only on the order of ops), worst over DP ranks and steps.
// The same for the host pool of offloaded K/V (strategy.kv_offload: all; 0 without).
struct PredictedPeaks {
  std::vector<int64_t> device, host;
};

PredictedPeaks predicted(Job job) {
  install_executor_memory();
  job.memory_model = MemoryModelKind::kExecutor;
  job.cost_model.kind = CostModelKind::kUnit;
  StatusOr<SimResult> result = simulate_job(job);
  EXPECT_TRUE(result.ok()) << result.status().message();
  const size_t pp = static_cast<size_t>(job.parallel.pp);
  PredictedPeaks peaks{std::vector<int64_t>(pp, 0), std::vector<int64_t>(pp, 0)};
  if (!result.ok()) return peaks;
  EXPECT_EQ(result->metrics.memory_left_bytes, 0);
  EXPECT_GE(result->metrics.memory_min_category_bytes, 0);
  for (const StageMetrics& st : result->metrics.stages) {
    peaks.device[static_cast<size_t>(st.stage)] = st.peak_memory_bytes;
    peaks.host[static_cast<size_t>(st.stage)] = st.host_peak_bytes;
  }
  return peaks;
}

std::vector<int64_t> predicted_peaks(const Job& job) { return predicted(job).device; }

void expect_exact(const test::TinyJob& spec) {
  const Job job = test::tiny_job(spec);
  ExecutorOptions options;
  options.record_trace = false;
  StatusOr<RunReport> run = run_in_process(job, options);
  ASSERT_TRUE(run.ok()) << run.status().message() << "\n" << test::tiny_job_yaml(spec);
  const PredictedPeaks peaks = predicted(job);
  for (const StageMemoryReport& st : run->stages) {
    EXPECT_GT(st.peak_bytes, 0);
    EXPECT_EQ(peaks.device[static_cast<size_t>(st.stage)], st.peak_bytes)
        << "stage " << st.stage << " of\n"
        << test::tiny_job_yaml(spec);
    EXPECT_EQ(peaks.host[static_cast<size_t>(st.stage)], st.host_peak_bytes)
        << "stage " << st.stage << "'s host pool of\n"
        << test::tiny_job_yaml(spec);
  }
}

struct Case {
  std::string strategy;
  int pp = 1, dp = 1, vpp = 1;
  std::string schedule = "1f1b";
};

class ExecutorMemoryTest : public ::testing::TestWithParam<Case> {};

TEST_P(ExecutorMemoryTest, ReplayedPeakEqualsMeasuredPeak) {
  const Case& c = GetParam();
  for (const uint64_t seed : {3u, 11u}) {
    test::TinyJob spec;
    spec.lengths = test::scaled_batch("chatqa2-long-sft", 6, 181, seed);
    spec.lengths.push_back(1);
    spec.strategy = c.strategy;
    spec.pp = c.pp;
    spec.dp = c.dp;
    spec.vpp = c.vpp;
    spec.schedule = c.schedule;
    spec.steps = 2;
    expect_exact(spec);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Plans, ExecutorMemoryTest,
    ::testing::Values(Case{"{kind: chunkflow, chunk_size: 29, k: 1}", 1},
                      Case{"{kind: chunkflow, chunk_size: 48, k: 2}", 2},
                      Case{"{kind: chunkflow, chunk_size: 80, k: 8}", 4},
                      Case{"{kind: chunkflow, chunk_size: 37, k: 1, packer: ffd}", 2, 2},
                      Case{"{kind: chunkflow, chunk_size: 64, k: 2}", 2, 1, 1, "gpipe"},
                      Case{"{kind: baseline, micro_batching: pack}", 2},
                      Case{"{kind: baseline, micro_batching: per_sequence}", 1, 2}));

// K/V offload: the executor's accounting, run with the store in the host pool, predicts each
// stage's device peak and its host pool's peak to the byte (pp 1, 2 and 4; K 1 and 2; CP 2);
// and no stage's device peak is above the same job's without offload, some below.
TEST(ExecutorMemory, OffloadedStoreOnDeviceAndHost) {
  struct OffloadCase {
    int pp, cp;
    const char* strategy;
  };
  for (const OffloadCase& c : {OffloadCase{1, 1, "{kind: chunkflow, chunk_size: 29, k: 1"},
                               OffloadCase{2, 1, "{kind: chunkflow, chunk_size: 41, k: 2"},
                               OffloadCase{4, 1, "{kind: chunkflow, chunk_size: 33, k: 1"},
                               OffloadCase{2, 2, "{kind: chunkflow, chunk_size: 32, k: 1"}}) {
    SCOPED_TRACE(::testing::Message() << "pp " << c.pp << " cp " << c.cp << " " << c.strategy);
    test::TinyJob spec;
    spec.lengths = c.cp > 1 ? std::vector<int64_t>{192, 8, 40, 4, 24}
                            : test::scaled_batch("chatqa2-long-sft", 7, 211, 5 + c.pp);
    spec.pp = c.pp;
    spec.cp = c.cp;
    if (c.cp > 1) spec.cp_comm = "all_gather";
    spec.strategy = std::string(c.strategy) + "}";
    const PredictedPeaks kept = predicted(test::tiny_job(spec));
    spec.strategy = std::string(c.strategy) + ", kv_offload: all}";
    expect_exact(spec);
    const PredictedPeaks moved = predicted(test::tiny_job(spec));
    int lower = 0;  // stages whose peak offload lowers (not one whose peak is the LM head's)
    for (size_t s = 0; s < kept.device.size(); ++s) {
      EXPECT_EQ(kept.host[s], 0);
      EXPECT_GT(moved.host[s], 0) << "stage " << s;
      EXPECT_LE(moved.device[s], kept.device[s]) << "stage " << s;
      lower += moved.device[s] < kept.device[s];
    }
    EXPECT_GT(lower, 0);
  }
}

// kv_offload: auto in a run: a device budget at the need with the K/V on the device keeps it
// there; under it, the highest line over the split sequences' lengths whose need fits (the
// bisection against every line tried in turn), all when only the shortest's or none does
// (check_device_memory refuses the run then); a real run of the chosen job fits its budget,
// measured. A host backend keeps the K/V where it is. In process and under mpirun (the
// largest stage's need).
TEST(RunOffload, AutoOffloadsTheLongestSequencesThatMustLeaveTheDevice) {
  install_executor_memory();
  for (const unsigned seed : {3u, 17u}) {
    test::TinyJob spec;
    spec.lengths = test::scaled_batch("chatqa2-long-sft", 9, 301, seed);
    spec.lengths.push_back(173);  // a second split sequence, shorter than the longest
    spec.pp = 2;
    spec.strategy = "{kind: chunkflow, chunk_size: 40, k: 1, kv_offload: auto}";
    const Job job = test::tiny_job(spec);
    std::set<int64_t, std::greater<>> lines;  // the split sequences' lengths, longest first
    for (const int64_t length : spec.lengths) {
      if (length > 40) lines.insert(length);
    }
    ASSERT_GE(lines.size(), 2u);
    for (const bool in_process : {true, false}) {
      SCOPED_TRACE(::testing::Message()
                   << "seed " << seed << (in_process ? " in process" : " mpi"));
      auto need = [&](KvOffload where, int64_t line) {
        Job placed = job;
        placed.strategy.kv_offload = where;
        placed.strategy.kv_offload_min_tokens = line;
        StatusOr<RunMemoryNeed> n = run_memory_need(placed, in_process, 1);
        EXPECT_TRUE(n.ok()) << n.status().message();
        return n.ok() ? (in_process ? n->bytes : n->largest_stage_bytes) : 0;
      };
      auto resolved = [&](std::optional<int64_t> budget, std::string* label) {
        StatusOr<Job> placed = resolve_run_offload(job, budget, in_process, label);
        EXPECT_TRUE(placed.ok()) << placed.status().message();
        return placed.ok() ? kv_offload_policy(*placed) : KvOffloadPolicy{};
      };
      // What the resolver must choose under `budget`, every line tried from the longest.
      auto expected = [&](int64_t budget) {
        if (need(KvOffload::kNone, 0) <= budget) return KvOffloadPolicy{};
        for (const int64_t line : lines) {
          if (line == *lines.rbegin()) break;  // the shortest's line: all
          if (need(KvOffload::kAll, line) <= budget) return KvOffloadPolicy{true, line};
        }
        return KvOffloadPolicy{true, 0};
      };
      const int64_t none = need(KvOffload::kNone, 0);
      const int64_t longest = need(KvOffload::kAll, *lines.begin());
      const int64_t all = need(KvOffload::kAll, 0);
      ASSERT_LT(longest, none);
      ASSERT_LT(all, longest);
      std::string label;
      EXPECT_EQ(resolved(std::nullopt, &label), KvOffloadPolicy{});
      EXPECT_EQ(label, "auto: none");
      std::vector<int64_t> budgets{none, none - 1, all, all - 1, 1};
      for (const int64_t line : lines) {
        budgets.push_back(need(KvOffload::kAll, line));
        budgets.push_back(need(KvOffload::kAll, line) - 1);
      }
      for (const int64_t budget : budgets) {
        const KvOffloadPolicy want = expected(budget);
        EXPECT_EQ(resolved(budget, &label), want) << "budget " << budget;
        EXPECT_EQ(label, !want.enabled ? "auto: none"
                         : want.min_tokens > 0
                             ? fmt::format("auto: all ≥ {} tokens", want.min_tokens)
                             : "auto: all");
      }
      EXPECT_EQ(resolved(none - 1, &label), (KvOffloadPolicy{true, *lines.begin()}));
      if (!in_process) continue;
      // The job the resolver chose at the longest line's budget, run: its stages' measured
      // peaks add up to that budget (the accounting is exact).
      StatusOr<Job> chosen = resolve_run_offload(job, longest, true);
      ASSERT_TRUE(chosen.ok());
      ExecutorOptions options;
      options.record_trace = false;
      StatusOr<RunReport> run = run_in_process(*chosen, options);
      ASSERT_TRUE(run.ok()) << run.status().message();
      int64_t measured = 0;
      for (const StageMemoryReport& st : run->stages) measured += st.peak_bytes;
      EXPECT_EQ(measured, longest);
    }
  }
  // A job that names its placement comes back as it is.
  test::TinyJob spec;
  spec.lengths = {301, 7};
  spec.strategy = "{kind: chunkflow, chunk_size: 40, k: 1, kv_offload: all}";
  StatusOr<Job> as_given = resolve_run_offload(test::tiny_job(spec), 1, true);
  ASSERT_TRUE(as_given.ok());
  EXPECT_EQ(kv_offload_policy(*as_given), (KvOffloadPolicy{true, 0}));
}

// Interleaved 1F1B needs a chunk count Megatron's rule admits: the contract test's batch.
TEST(ExecutorMemory, InterleavedVirtualStages) {
  test::TinyJob spec;
  spec.lengths = test::scaled_batch("longbench", 10, 150, 3);
  spec.pp = 2;
  spec.vpp = 2;
  spec.schedule = "interleaved";
  spec.strategy = "{kind: chunkflow, chunk_size: 32, k: 2}";
  expect_exact(spec);
}

TEST(ExecutorMemory, TiedEmbeddingsAcrossStages) {
  for (const int pp : {1, 2}) {
    test::TinyJob spec;
    spec.model = "tests/executor/data/tiny-tied.yaml";
    spec.lengths = {97, 5, 33, 1, 12};
    spec.pp = pp;
    spec.strategy = "{kind: chunkflow, chunk_size: 29, k: 1}";
    expect_exact(spec);
  }
}

// Context parallelism (all_gather): each CP rank's buffers are counted on its own rows; with
// chunks that split evenly into 2·cp pieces the replayed peak is the measured one exactly, and
// it is below the cp = 1 peak of the same job.
TEST(ExecutorMemory, ContextParallelRanks) {
  for (const int pp : {1, 2}) {
    test::TinyJob spec;
    spec.lengths = {96, 8, 40, 4, 24};
    spec.pp = pp;
    spec.strategy = "{kind: chunkflow, chunk_size: 32, k: 1}";
    const std::vector<int64_t> whole = predicted_peaks(test::tiny_job(spec));
    spec.cp = 2;
    spec.cp_comm = "all_gather";
    expect_exact(spec);
    const std::vector<int64_t> split = predicted_peaks(test::tiny_job(spec));
    for (int s = 0; s < pp; ++s)
      EXPECT_LT(split[static_cast<size_t>(s)], whole[static_cast<size_t>(s)]);
  }
}

// Uneven splits: each stage's replayed peak is its measured one, and its parameters are its
// own layers' — by hand on tiny ([1, 3]: 43,264 per layer, embedding and LM head 16,384 each,
// final norm 64): stage 0 holds 43,264 + 16,384 = 59,648, stage 1 3 · 43,264 + 64 + 16,384 =
// 146,240, each in fp32 weights, gradients, AdamW m and v.
TEST(ExecutorMemory, UnevenStages) {
  for (const std::vector<int64_t>& split : {std::vector<int64_t>{1, 3}, {3, 1}, {1, 1, 2}}) {
    test::TinyJob spec;
    spec.lengths = {97, 5, 33, 1, 13, 61};
    spec.pp = static_cast<int>(split.size());
    spec.layers_per_stage = split;
    spec.strategy = "{kind: chunkflow, chunk_size: 29, k: 2}";
    expect_exact(spec);
  }
  test::TinyJob spec;
  spec.lengths = {5};
  spec.pp = 2;
  spec.layers_per_stage = {1, 3};
  StatusOr<std::unique_ptr<ExecutorMemory>> memory = ExecutorMemory::create(test::tiny_job(spec));
  ASSERT_TRUE(memory.ok()) << memory.status().message();
  const int64_t params[] = {59648, 146240};
  for (int stage = 0; stage < 2; ++stage) {
    const MemoryBreakdown b = (*memory)->model_states(stage);
    EXPECT_EQ(b.weights, 4 * params[stage]) << "stage " << stage;
    EXPECT_EQ(b.gradients, 4 * params[stage]);
    EXPECT_EQ(b.optimizer, 8 * params[stage]);
  }
}

TEST(ExecutorMemory, ModelStatesAreTheExecutorsFp32Buffers) {
  const Job job = test::tiny_job(test::TinyJob{{5}, 4});
  StatusOr<std::unique_ptr<ExecutorMemory>> memory = ExecutorMemory::create(job);
  ASSERT_TRUE(memory.ok()) << memory.status().message();
  for (int stage = 0; stage < 4; ++stage) {
    const ParamLayout layout(job.model, LayerSplit{4, 1, job.model.layers}, stage);
    const MemoryBreakdown b = (*memory)->model_states(stage);
    EXPECT_EQ(b.weights, 4 * layout.total());
    EXPECT_EQ(b.gradients, 4 * layout.total());
    EXPECT_EQ(b.optimizer, 8 * layout.total());  // AdamW m and v
    EXPECT_EQ(b.dynamic(), 0);
  }
}

// The Megatron accounting is untouched by the executor's: same job, different bytes (fp32
// against bf16 weights); the executor's refuses what the executor cannot run.
TEST(ExecutorMemory, AccountingsDiffer) {
  Job job = test::tiny_job(test::TinyJob{{97, 5, 33}, 2});
  StatusOr<std::unique_ptr<OpMemorySource>> megatron = make_memory_source(job);
  ASSERT_TRUE(megatron.ok());
  StatusOr<std::unique_ptr<ExecutorMemory>> executor = ExecutorMemory::create(job);
  ASSERT_TRUE(executor.ok());
  EXPECT_EQ((*megatron)->model_states(0).weights,
            2 * stage_local_parameters(job.model, 1, LayerSplit{2, 1, job.model.layers}, 0));
  EXPECT_EQ((*executor)->model_states(0).weights,
            4 * stage_local_parameters(job.model, 1, LayerSplit{2, 1, job.model.layers}, 0));
  job.parallel.recompute = Recompute::kSelective;
  EXPECT_EQ(ExecutorMemory::create(job).status().code(), StatusCode::kInvalidInput);
}

// A record as the replay applies it: a forward's kept bytes at its start and the rest of its
// peak as transient; a backward's peak as transient, its frees at its end.
TEST(ExecutorMemory, RecordsMapToOpBytes) {
  OpMemoryRecord forward;
  forward.pass = Pass::kForwardKeepKV;
  forward.live_at_start = {.weights = 100, .activations = 40};
  forward.live_at_end = {.weights = 100, .activations = 57, .state_store = 8};
  forward.peak_bytes = 100 + 40 + 90;
  const OpMemory f = op_memory_of(forward);
  EXPECT_EQ(f.activations_at_start, 17);
  EXPECT_EQ(f.store_at_start, 8);
  EXPECT_EQ(f.transient, 90 - 17 - 8);
  EXPECT_EQ(f.activations_at_end, 0);
  OpMemoryRecord backward;
  backward.pass = Pass::kBackward;
  backward.live_at_start = {.weights = 100, .activations = 57, .state_store = 8};
  backward.live_at_end = {.weights = 100, .activations = 40, .state_store = 12};
  backward.peak_bytes = 100 + 57 + 8 + 33;
  const OpMemory b = op_memory_of(backward);
  EXPECT_EQ(b.transient, 33);
  EXPECT_EQ(b.activations_at_end, -17);
  EXPECT_EQ(b.store_at_end, 4);  // a group's first backward leaves the prefix's dK/dV
  EXPECT_EQ(b.activations_at_start + b.store_at_start, 0);
  EXPECT_EQ(b.host_at_start + b.host_at_end, 0);
  // Offloaded: a forward's K/V go to the host pool; a group's first backward adds the prefix's
  // dK/dV there (the host's peak within the op) before it frees its own K/V.
  forward.host_at_start = 500;
  forward.host_peak = forward.host_at_end = 524;
  const OpMemory fo = op_memory_of(forward);
  EXPECT_EQ(fo.host_at_start, 24);
  EXPECT_EQ(fo.host_at_end, 0);
  backward.host_at_start = 524;
  backward.host_peak = 524 + 30;
  backward.host_at_end = 524 + 30 - 24 - 6;
  const OpMemory bo = op_memory_of(backward);
  EXPECT_EQ(bo.host_at_start, 30);
  EXPECT_EQ(bo.host_at_end, -30);
}

}  // namespace
}  // namespace cf

// The backend seam: a stage's op stream on the counting backend (no storage, no arithmetic, no
// peers) allocates exactly what it allocates on the CPU backend in a real run — every op's
// memory record equal, in every category — over plans with standalone chunks only, dependent
// groups with K < N (F*, R), pp 2, interleaved vpp 2, tied and untied embeddings, DP 2 and odd
// token counts; and the CPU records chain op to op and reach the tracker's own step peak.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <numeric>
#include <string>
#include <vector>

#include "executor/counting_backend.h"
#include "executor/cpu_backend.h"
#include "executor/executor.h"
#include "executor/stage.h"
#include "sim/plan/plan_builder.h"
#include "tests/support/executor_fixture.h"

namespace cf {
namespace {

struct SeamCase {
  std::string name;
  test::TinyJob job;
  bool keeps_kv_only = false;  // the plan has F* and R passes (a group with N > K)
};

std::vector<SeamCase> seam_cases() {
  std::vector<SeamCase> cases;
  test::TinyJob standalone;  // 81 tokens packed into chunks of ≤ 48: no group
  standalone.lengths = {23, 7, 31, 1, 19};
  standalone.strategy = "{kind: chunkflow, chunk_size: 48, k: 1}";
  cases.push_back({"standalone_pp1", standalone});
  test::TinyJob group = standalone;  // 151 tokens → 6 pieces of ≤ 29 with K = 2
  group.lengths = {151, 9, 23};
  group.strategy = "{kind: chunkflow, chunk_size: 29, k: 2}";
  cases.push_back({"group_k2_pp1", group, true});
  test::TinyJob pp2 = group;
  pp2.lengths = {97, 13, 41, 5};
  pp2.pp = 2;
  pp2.strategy = "{kind: chunkflow, chunk_size: 31, k: 1}";
  cases.push_back({"group_k1_pp2", pp2, true});
  test::TinyJob interleaved = pp2;
  interleaved.lengths = {87, 19, 9, 45};  // 8 chunks: Megatron needs m % pp = 0
  interleaved.vpp = 2;
  interleaved.schedule = "interleaved";
  interleaved.strategy = "{kind: chunkflow, chunk_size: 25, k: 2}";
  cases.push_back({"interleaved_pp2_vpp2_k2", interleaved, true});
  for (int pp : {1, 2}) {
    test::TinyJob tied = pp2;
    tied.model = "tests/executor/data/tiny-tied.yaml";
    tied.lengths = {97, 5, 33, 1, 13};
    tied.pp = pp;
    cases.push_back({"tied_pp" + std::to_string(pp), tied, true});
  }
  test::TinyJob dp2 = pp2;
  dp2.lengths = {71, 9, 45, 3, 27, 15};
  dp2.dp = 2;
  cases.push_back({"group_k1_pp2_dp2", dp2, true});
  test::TinyJob baseline = pp2;
  baseline.strategy = "{kind: baseline, micro_batching: per_sequence}";
  cases.push_back({"baseline_pp2", baseline});
  // K/V offload: the store in the host pool, rows fetched into transient buffers.
  test::TinyJob offload = group;
  offload.strategy = "{kind: chunkflow, chunk_size: 29, k: 2, kv_offload: all}";
  cases.push_back({"group_k2_pp1_offload", offload, true});
  offload = pp2;
  offload.strategy = "{kind: chunkflow, chunk_size: 31, k: 1, kv_offload: all}";
  cases.push_back({"group_k1_pp2_offload", offload, true});
  offload.strategy =
      "{kind: chunkflow, chunk_size: 31, k: 1, kv_offload: all, kv_offload_min_tokens: 97}";
  cases.push_back({"group_k1_pp2_offload_line", offload, true});
  return cases;
}

bool has_pass(const Plan& plan, Pass pass) {
  for (const RankPlan& rank : plan.ranks) {
    for (const auto& stage : rank.stages) {
      for (const Op& op : stage.ops) {
        if (op.pass == pass) return true;
      }
    }
  }
  return false;
}

int64_t total(const MemoryBreakdown& bytes) { return bytes.total(); }

void expect_same_bytes(const MemoryBreakdown& got, const MemoryBreakdown& want, const char* what) {
  for (MemoryCategory c : kAllMemoryCategories) {
    EXPECT_EQ(got[c], want[c]) << what << " " << memory_category_name(c);
  }
}

class BackendSeamTest : public ::testing::TestWithParam<SeamCase> {
 protected:
  // One real step on the CPU backend (threads, in-process transport), and its plan.
  void SetUp() override {
    job_ = test::tiny_job(GetParam().job);
    options_.record_trace = false;
    StatusOr<RunReport> report = run_in_process(job_, options_);
    ASSERT_TRUE(report.ok()) << report.status().message();
    report_ = *std::move(report);
    StatusOr<TokenSource> source = TokenSource::open(job_, options_);
    ASSERT_TRUE(source.ok());
    StatusOr<Plan> plan = source->plan(0, source->batch(0));  // what run_in_process ran
    ASSERT_TRUE(plan.ok()) << plan.status().message();
    plan_ = *std::move(plan);
    ASSERT_EQ(report_.op_memory.size(), static_cast<size_t>(plan_.dp * plan_.pp));
  }
  const std::vector<OpMemoryRecord>& cpu_records(int dp_rank, int stage) const {
    return report_.op_memory[static_cast<size_t>(dp_rank * plan_.pp + stage)];
  }
  size_t op_count(int dp_rank, int stage) const {
    return plan_.ranks[static_cast<size_t>(dp_rank)].stages[static_cast<size_t>(stage)].ops.size();
  }

  Job job_;
  ExecutorOptions options_;
  RunReport report_;
  Plan plan_;
};

TEST_P(BackendSeamTest, CountingBackendRecordsEqualTheCpuRun) {
  EXPECT_EQ(has_pass(plan_, Pass::kForwardKeepKV), GetParam().keeps_kv_only);
  EXPECT_EQ(has_pass(plan_, Pass::kRecompute), GetParam().keeps_kv_only);
  for (int r = 0; r < plan_.dp; ++r) {
    for (int s = 0; s < plan_.pp; ++s) {
      SCOPED_TRACE(::testing::Message() << "dp rank " << r << " stage " << s);
      const std::vector<OpMemoryRecord>& cpu = cpu_records(r, s);
      const std::vector<OpMemoryRecord> counted =
          count_op_memory(job_.model, plan_, r, s, CpRank{}, kv_offload_policy(job_));
      ASSERT_GT(op_count(r, s), 0u);
      ASSERT_EQ(cpu.size(), op_count(r, s));
      ASSERT_EQ(counted.size(), cpu.size());
      for (size_t i = 0; i < cpu.size(); ++i) {
        SCOPED_TRACE(::testing::Message() << "op " << i << " (id " << cpu[i].op_id << ", "
                                          << pass_name(cpu[i].pass) << cpu[i].chunk << ")");
        EXPECT_EQ(counted[i].op_id, cpu[i].op_id);
        EXPECT_EQ(counted[i].pass, cpu[i].pass);
        EXPECT_EQ(counted[i].chunk, cpu[i].chunk);
        EXPECT_EQ(counted[i].model_chunk, cpu[i].model_chunk);
        expect_same_bytes(counted[i].live_at_start, cpu[i].live_at_start, "at start");
        EXPECT_EQ(counted[i].peak_bytes, cpu[i].peak_bytes);
        expect_same_bytes(counted[i].at_peak, cpu[i].at_peak, "at peak");
        expect_same_bytes(counted[i].live_at_end, cpu[i].live_at_end, "at end");
        EXPECT_EQ(counted[i].host_at_start, cpu[i].host_at_start);
        EXPECT_EQ(counted[i].host_at_end, cpu[i].host_at_end);
        EXPECT_EQ(counted[i].host_peak, cpu[i].host_peak);
      }
    }
  }
}

TEST_P(BackendSeamTest, CpuRecordsChainAndReachTheTrackersStepPeak) {
  for (const StageMemoryReport& stage : report_.stages) {
    SCOPED_TRACE(::testing::Message() << "dp rank " << stage.dp_rank << " stage " << stage.stage);
    const std::vector<OpMemoryRecord>& records = cpu_records(stage.dp_rank, stage.stage);
    ASSERT_FALSE(records.empty());
    // The step starts and ends with the model states alone.
    const MemoryBreakdown& start = records.front().live_at_start;
    EXPECT_EQ(start.dynamic(), 0);
    EXPECT_GT(total(start), 0);
    expect_same_bytes(records.back().live_at_end, start, "after the last op");
    EXPECT_EQ(records.front().host_at_start, 0);
    EXPECT_EQ(records.back().host_at_end, 0);
    int64_t host_peak = 0;
    const OpMemoryRecord* highest = &records.front();
    for (size_t i = 0; i < records.size(); ++i) {
      SCOPED_TRACE(::testing::Message() << "op " << i);
      const OpMemoryRecord& op = records[i];
      if (i > 0) expect_same_bytes(op.live_at_start, records[i - 1].live_at_end, "chain");
      if (i > 0) {
        EXPECT_EQ(op.host_at_start, records[i - 1].host_at_end) << "host chain";
      }
      // Every sequence offloaded, nothing of the store stays on the stage.
      if (kv_offload_policy(job_).enabled && kv_offload_policy(job_).min_tokens == 0) {
        EXPECT_EQ(op.at_peak.state_store, 0);
      }
      EXPECT_GE(op.host_peak, std::max(op.host_at_start, op.host_at_end));
      host_peak = std::max(host_peak, op.host_peak);
      EXPECT_GT(op.peak_bytes, total(op.live_at_start));  // every op allocates
      EXPECT_GE(op.peak_bytes, total(op.live_at_end));
      EXPECT_EQ(total(op.at_peak), op.peak_bytes);  // the breakdown is of the peak itself
      if (op.peak_bytes > highest->peak_bytes) highest = &op;
    }
    EXPECT_EQ(highest->peak_bytes, stage.peak_bytes);
    expect_same_bytes(highest->at_peak, stage.at_peak, "the step's peak");
    EXPECT_EQ(host_peak, stage.host_peak_bytes);
    EXPECT_EQ(host_peak > 0, kv_offload_policy(job_).enabled && GetParam().keeps_kv_only);
  }
}

INSTANTIATE_TEST_SUITE_P(Executor, BackendSeamTest, ::testing::ValuesIn(seam_cases()),
                         [](const ::testing::TestParamInfo<SeamCase>& info) {
                           return info.param.name;
                         });

TEST(CountingBackend, ChargesEveryBufferYetHoldsNoStorageAndComputesNothing) {
  CountingBackend backend;
  std::unique_ptr<Stream> stream = backend.create_stream();
  MemoryTracker tracker;
  {
    FloatBuffer b(stream->allocator(), &tracker, MemoryCategory::kTransient, 17);  // 68 B
    EXPECT_EQ(b.data(), nullptr);
    EXPECT_EQ(storage_at(b.data(), 5), nullptr);
    EXPECT_EQ(tracker.live(MemoryCategory::kTransient), 68);
  }
  EXPECT_EQ(tracker.live_total(), 0);

  const Job job = test::tiny_job(test::TinyJob{.lengths = {37, 5}});
  StageWorker worker(job.model, LayerSplit{1, 1, job.model.layers}, 0, 0, &backend);
  EXPECT_EQ(worker.params().weights(), nullptr);
  EXPECT_EQ(worker.tracker().live(MemoryCategory::kWeights), worker.params().count() * 4);
  worker.params().initialise(3, 0.02f);
  StatusOr<Plan> plan = build_plan(job, 0);
  ASSERT_TRUE(plan.ok());
  NullTransport transport;
  worker.run_step(*plan, synthetic_tokens({37, 5}, job.model.vocab, 3, 0), &transport,
                  StepClock::now(), /*record=*/false);
  EXPECT_EQ(worker.loss_sum(), 0.0);  // no loss computed, none copied back
  EXPECT_EQ(worker.op_memory().size(), static_cast<size_t>(plan->op_count()));
  EXPECT_GT(worker.tracker().peak_total(), worker.tracker().live_total());
}

// The CPU backend's K/V offload pool: host memory poisoned with NaN (so a fetch of an element
// no offload wrote shows in the results), copies in and out of it as written and timed, the
// time taken once.
TEST(HostPool, CpuPoolIsPoisonedAndItsCopiesTimed) {
  std::unique_ptr<Stream> stream = cpu_backend().create_stream();
  MemoryTracker device, host;
  for (const int64_t n : {int64_t{1}, int64_t{37}, int64_t{4099}}) {
    SCOPED_TRACE(n);
    FloatBuffer pooled(stream->host_pool(), &host, MemoryCategory::kStateStore, n);
    EXPECT_EQ(host.live(MemoryCategory::kStateStore), n * 4);
    for (int64_t i = 0; i < n; ++i) ASSERT_TRUE(std::isnan(pooled[i])) << i;
    {
      FloatBuffer src(stream->allocator(), &device, MemoryCategory::kTransient, n);
      for (int64_t i = 0; i < n; ++i) src[i] = static_cast<float>(i) * 0.5f - 3.0f;
      stream->offload(pooled.data(), src.data(), n);
    }  // freed at once: the copy is done
    FloatBuffer back(stream->allocator(), &device, MemoryCategory::kTransient, n);
    stream->fetch(back.data(), pooled.data(), n);
    stream->wait_copies();
    for (int64_t i = 0; i < n; ++i) {
      ASSERT_EQ(pooled[i], static_cast<float>(i) * 0.5f - 3.0f) << i;
      ASSERT_EQ(back[i], pooled[i]) << i;
    }
    EXPECT_GE(stream->take_copy_seconds(), 0.0);
    EXPECT_EQ(stream->take_copy_seconds(), 0.0);  // taken
  }
  EXPECT_EQ(host.live_total(), 0);
  EXPECT_EQ(device.live_total(), 0);
}

// The tracker's interval peak (one op's) restarts at each start and leaves the step's alone.
TEST(MemoryTracker, IntervalPeakRestartsWithoutTouchingTheStepPeak) {
  MemoryTracker t;
  FloatBuffer w(&t, MemoryCategory::kWeights, 10);  // 40 B
  {
    FloatBuffer a(&t, MemoryCategory::kActivations, 25);  // 140 B: the step's peak
  }
  t.start_interval();
  EXPECT_EQ(t.interval_peak(), 40);
  {
    FloatBuffer s(&t, MemoryCategory::kStateStore, 5);  // 60 B
    FloatBuffer x(&t, MemoryCategory::kTransient, 3);   // 72 B: the interval's peak
  }
  EXPECT_EQ(t.interval_peak(), 72);
  EXPECT_EQ(t.breakdown_at_interval_peak()[MemoryCategory::kStateStore], 20);
  EXPECT_EQ(t.breakdown_at_interval_peak()[MemoryCategory::kTransient], 12);
  EXPECT_EQ(t.peak_total(), 140);
  EXPECT_EQ(t.breakdown_at_peak()[MemoryCategory::kActivations], 100);
}

}  // namespace
}  // namespace cf
